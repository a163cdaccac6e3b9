import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def shipped_parser():
    """The committed model in intent_llm/model/, loaded once for the whole session."""
    from intent_llm.loading import load_parser

    return load_parser()
