"""Parsing does not import the training data's modules (2.7k lines of phrasing tables)."""

import subprocess
import sys

TRAINING_ONLY = ("phrasings", "generator", "negatives", "templates", "vocabulary", "dataset", "train")


def test_the_runtime_does_not_import_the_training_phrasings():
    code = (
        "import sys\n"
        "import intent_llm.backends, intent_llm.decode, intent_llm.featurize, intent_llm.loading\n"
        "import intent_llm.model, intent_llm.parser\n"
        f"print(sorted(m for m in {['intent_llm.' + name for name in TRAINING_ONLY]!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout
