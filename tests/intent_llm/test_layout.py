"""Parsing does not import the training side (intent_llm/training/: 2.7k lines of phrasing tables,
the generator, fine-tuning and scoring)."""

import subprocess
import sys
from pathlib import Path

import intent_llm

PACKAGE = Path(intent_llm.__file__).parent
RUNTIME = (
    "backends",
    "configuration",
    "decode",
    "featurize",
    "fields",
    "loading",
    "memory",
    "model",
    "normalize",
    "numbers",
    "parser",
    "values",
)
TRAINING = (
    "bench",
    "dataset",
    "evaluate",
    "generator",
    "generator_assignment",
    "generator_numbers",
    "negatives",
    "phrasings",
    "templates",
    "train",
    "vocabulary",
)


def test_the_runtime_does_not_import_the_training_side():
    code = (
        "import sys\n"
        + "".join(f"import intent_llm.{name}\n" for name in RUNTIME)
        + "print(sorted(m for m in sys.modules if m == 'intent_llm.training' or m.startswith('intent_llm.training.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout


def test_the_runtime_and_the_training_side_are_where_the_contract_says():
    top = {path.stem for path in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    training = {path.stem for path in (PACKAGE / "training").glob("*.py")} - {"__init__"}
    assert top == set(RUNTIME), (
        f"intent_llm/ holds {sorted(top ^ set(RUNTIME))} unlike RUNTIME here: runtime modules stay at the "
        "top (and in the pyproject.toml contract's source_modules), training modules go to intent_llm/training/"
    )
    assert training == set(TRAINING), (
        f"intent_llm/training/ differs from TRAINING by {sorted(training ^ set(TRAINING))}"
    )
