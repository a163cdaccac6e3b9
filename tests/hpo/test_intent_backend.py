"""The LLM proposer on the intent parser's generative backends: an OpenAI-compatible endpoint
(a local stand-in server) and a tiny randomly initialised causal LM. Whatever they answer,
only specs that pass JobSpec validation inside the search space come out."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from intent_llm.backends import OpenAICompatibleBackend
from intent_llm.configuration import BackendSettings, ConfigurationError
from jobspec import JobSpec
from orchestrator.hpo import intent_backend
from orchestrator.hpo.llm import LLMProposer
from orchestrator.hpo.space import search_space

from ..tiny_lm import save_tiny_lm

BASE = JobSpec.model_validate(
    {"dataset": "digits", "model": "mlp", "rounds": 5, "learning_rate": 0.0005, "hpo": {"fixed": ["rounds"]}}
)


class ChatServer(BaseHTTPRequestHandler):
    replies: list[str] = []
    bodies: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        type(self).bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        content = type(self).replies.pop(0)
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def chat_url() -> Iterator[str]:
    ChatServer.replies, ChatServer.bodies = [], []
    server = HTTPServer(("127.0.0.1", 0), ChatServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    thread.join()


def test_an_openai_compatible_endpoint_gets_the_history_and_the_schema(chat_url: str) -> None:
    good = {"proposals": [{"changes": {"learning_rate": 0.004, "batch_size": 64}, "reason": "slow start"}]}
    bad = {"proposals": [{"changes": {"num_clients": 50}, "reason": "more clients"}]}
    ChatServer.replies = [json.dumps(good), json.dumps(bad)]
    completer = intent_backend.openai_completer(chat_url, "served-model", api_key=None, timeout=10)
    proposer = LLMProposer(completer, search_space(BASE))

    [proposal] = proposer.propose(BASE, [], 1)
    assert proposal.diff(BASE) == {"learning_rate": (0.0005, 0.004), "batch_size": (32, 64)}
    body = ChatServer.bodies[0]
    assert body["model"] == "served-model" and body["temperature"] == 0
    schema = body["response_format"]["json_schema"]["schema"]
    assert (
        "learning_rate" in schema["properties"]["proposals"]["items"]["properties"]["changes"]["properties"]
    )
    assert "Trials" in body["messages"][1]["content"] or "No trials yet" in body["messages"][1]["content"]
    assert body["messages"][0] == {"role": "system", "content": intent_backend.SYSTEM_PROMPT}
    assert body["response_format"]["json_schema"]["name"] == "hpo_proposals"

    assert proposer.propose(BASE, [], 1) == []
    assert "num_clients, outside the search space" in proposer.warnings[-1]


def test_the_configured_backend_decides_the_llm_proposer(settings) -> None:
    settings.FLOTILLA_INTENT_BACKEND = BackendSettings(name="encoder")
    assert intent_backend.configured_completer() is None
    settings.FLOTILLA_INTENT_BACKEND = BackendSettings.from_environment(
        {
            "INTENT_BACKEND": "openai",
            "INTENT_OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
            "INTENT_OPENAI_MODEL": "m",
        }
    )
    completer = intent_backend.configured_completer()
    assert completer is not None and isinstance(completer.backend, OpenAICompatibleBackend)
    with pytest.raises(ConfigurationError, match="INTENT_OPENAI_BASE_URL"):
        BackendSettings.from_environment({"INTENT_BACKEND": "openai"})


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    corpus = ['{"proposals": [{"changes": {"batch_size": 64}, "reason": "x"}]}']
    return save_tiny_lm(tmp_path_factory.mktemp("tiny_lm"), corpus)


@pytest.mark.slow
def test_a_random_causal_lm_yields_only_valid_specs_or_warnings(tiny_lm: Path) -> None:
    completer = intent_backend.transformers_completer(str(tiny_lm), max_new_tokens=60)
    proposer = LLMProposer(completer, search_space(BASE))
    for _ in range(2):
        proposals = proposer.propose(BASE, [], 1)
        for proposal in proposals:
            assert JobSpec.model_validate(proposal.spec.model_dump()) == proposal.spec
            assert proposal.spec.rounds == BASE.rounds
        assert proposals or proposer.warnings
