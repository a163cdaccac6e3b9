# Shortcuts; ./run and ./test are the real entry points.
.PHONY: run test fast lint format docs

run:
	./run

test:
	./test

# The edit-test loop: lint, types, import contracts and every test that needs no browser,
# no Celery worker process and no long training (about a minute once .venv exists).
fast:
	./test -m "not slow and not browser and not integration"

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy .
	.venv/bin/lint-imports

format:
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

docs:
	.venv/bin/python -m jobspec.reference > docs/jobspec.md
