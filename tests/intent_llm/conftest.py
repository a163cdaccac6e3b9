import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def shipped_parser():
    """The committed model in intent_llm/model/, loaded once for the whole session."""
    import torch

    from intent_llm.configuration import intent_threads
    from intent_llm.loading import load_parser

    torch.set_num_threads(intent_threads(os.environ))  # as `python -m intent_llm` runs it
    return load_parser()
