# Shortcuts; ./run and ./test are the real entry points.
.PHONY: run test lint format docs

run:
	./run

test:
	./test

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy .

format:
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

docs:
	.venv/bin/python -m jobspec.reference > docs/jobspec.md
