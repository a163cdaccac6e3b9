"""`train` end to end on a few steps: members saved, averaged, loaded and scored."""

import json

from safetensors.torch import load_file

from intent_llm.fields import head_labels
from intent_llm.loading import load_parser
from intent_llm.training.evaluate import WRITTEN_SETS
from intent_llm.training.train import TrainConfig, train
from jobspec import JobSpec


def test_train_writes_a_loadable_two_member_model_and_scores_it(tmp_path):
    config = TrainConfig(seed=3, members=2, train_examples=40, max_steps=2, heldout_examples=10, threads=1)
    summaries = train(config, tmp_path)

    saved = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))
    assert list(saved["members"]) == ["seed-3", "seed-4"]
    assert saved["training"]["members"] == 2 and saved["training"]["seed"] == 3
    assert saved["labels"] == head_labels()
    first, second = (load_file(str(tmp_path / name / "adapter.safetensors")) for name in saved["members"])
    assert first.keys() == second.keys() and any((first[k] != second[k]).any() for k in first)

    assert [summary["set"] for summary in summaries] == ["heldout", *WRITTEN_SETS]
    scores = json.loads((tmp_path / "scores.json").read_text(encoding="utf-8"))
    assert scores["heldout"]["job_prompts"] + scores["heldout"]["non_job_prompts"] == 10
    # Two steps teach nothing yet; whatever the untrained members say must still decode to a
    # valid spec or a refusal.
    answer = load_parser(tmp_path).parse_json("train a cnn on mnist with 20 clients")
    if "error" not in answer:
        JobSpec.model_validate({k: v for k, v in answer.items() if k not in ("mentioned", "warnings")})
