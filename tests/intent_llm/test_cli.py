"""The command line contract of jobspec.md, through real subprocesses."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobspec import JobSpec

REPO = Path(__file__).resolve().parents[2]


def run(*args, **kwargs):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "INTENT_BACKEND": "encoder"}
    return subprocess.run(
        [sys.executable, "-m", "intent_llm", *args],
        cwd=kwargs.get("cwd", REPO),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def assert_job_answer(answer):
    assert "error" not in answer
    spec = {k: v for k, v in answer.items() if k not in ("mentioned", "warnings")}
    assert JobSpec.model_validate(spec).model_dump(mode="json") == spec
    assert isinstance(answer["mentioned"], list) and isinstance(answer["warnings"], list)


@pytest.mark.slow
def test_single_prompt_prints_one_json_object():
    result = run("parse", "train a cnn on mnist with 20 clients for 50 rounds")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    answer = json.loads(lines[0])
    assert_job_answer(answer)
    assert answer["dataset"] == "mnist" and answer["num_clients"] == 20 and answer["rounds"] == 50
    assert {"dataset", "model", "num_clients", "rounds"} <= set(answer["mentioned"])


@pytest.mark.slow
def test_single_non_job_prompt_exits_2_with_an_error():
    result = run("parse", "tell me a joke about servers")
    assert result.returncode == 2
    assert list(json.loads(result.stdout)) == ["error"]


@pytest.mark.slow
def test_jsonl_answers_every_line_in_order(tmp_path):
    lines = [
        json.dumps("fmnist mlp 40 clients"),
        json.dumps({"prompt": "cifar10 resnet18, 100 rounds", "id": 7}),
        json.dumps("write me a poem"),
        "not json at all",
        "",
        json.dumps({"prompt": ""}),
    ]
    source = tmp_path / "prompts.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run("parse", "--jsonl", str(source))
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert len(answers) == 5
    assert_job_answer(answers[0])
    assert answers[0]["dataset"] == "fashion_mnist" and answers[0]["num_clients"] == 40
    assert answers[1]["dataset"] == "cifar10" and answers[1]["rounds"] == 100
    assert list(answers[2]) == ["error"]
    assert "line 4" in answers[3]["error"]
    assert list(answers[4]) == ["error"]


def test_missing_jsonl_file_exits_2(tmp_path):
    result = run("parse", "--jsonl", str(tmp_path / "nope.jsonl"))
    assert result.returncode == 2 and "cannot read" in result.stderr
