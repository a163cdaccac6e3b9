"""Generative backends: constrained decoding plumbing and the shared validation.

A tiny randomly initialised GPT-2 (built here from a config, with a byte-level BPE
tokenizer trained on a few strings) stands in for a real model: whatever it writes,
the parser must answer a valid spec or a clear error.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from intent_llm.backends import (
    GenerativeParser,
    OpenAICompatibleBackend,
    TransformersBackend,
    output_schema,
    result_from_json,
)
from jobspec import JobSpec

from ..tiny_lm import save_tiny_lm


def check_answer(answer):
    """A valid resolved spec with mentioned/warnings, or exactly {"error": "..."}."""
    if "error" in answer:
        assert set(answer) == {"error"} and answer["error"]
        return False
    spec = {k: v for k, v in answer.items() if k not in ("mentioned", "warnings")}
    assert JobSpec.model_validate(spec).model_dump(mode="json") == spec
    assert isinstance(answer["mentioned"], list) and isinstance(answer["warnings"], list)
    return True


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    """Three differently seeded tiny models: <dir>/0, <dir>/1, <dir>/2."""
    directory = tmp_path_factory.mktemp("tiny_lm")
    for seed in range(3):
        save_tiny_lm(
            directory / str(seed), ['{"dataset": "mnist", "rounds": 10}', '{"error": "not a job"}'], seed
        )
    return directory


@pytest.mark.slow
def test_random_causal_lm_gives_a_valid_spec_or_a_clear_error(tiny_lm):
    for seed in range(2):
        backend = TransformersBackend(tiny_lm / str(seed), max_new_tokens=40)
        parser = GenerativeParser(backend)
        for prompt in ("train a cnn on mnist with 20 clients", "hello there"):
            raw = backend.complete(prompt)
            assert raw.lstrip().startswith("{"), raw  # decoding was constrained to a JSON object
            check_answer(parser.parse_json(prompt))
    assert parser.parse_json("   ") == {
        "error": "The prompt is empty: describe the federated training job you want."
    }


def test_model_output_goes_through_spec_validation():
    answer = result_from_json(
        '{"dataset": "mnist", "rounds": -3, "num_clients": 4, "clients_per_round": 9, "colour": "red"}'
    ).to_json()
    assert check_answer(answer)
    assert answer["dataset"] == "mnist" and answer["rounds"] == 20 and answer["clients_per_round"] == 4
    assert any(w.startswith("rounds:") for w in answer["warnings"])
    assert any(w.startswith("colour:") for w in answer["warnings"])
    assert sorted(answer["mentioned"]) == ["dataset", "num_clients"]


@pytest.mark.parametrize("text", ['{"rounds": 10', "sure! here is your job", "[1, 2]", ""])
def test_malformed_model_output_is_a_clear_error(text):
    answer = result_from_json(text).to_json()
    assert list(answer) == ["error"] and "language model" in answer["error"]


def test_model_refusal_is_an_error():
    assert "not a federated training job" in result_from_json('{"error": "chit-chat"}').to_json()["error"]


def test_schema_is_the_job_spec_or_an_error():
    schema = output_schema()
    assert schema["anyOf"][0]["title"] == "JobSpec"
    assert schema["anyOf"][1]["required"] == ["error"]


class _ChatServer(BaseHTTPRequestHandler):
    replies: list = []
    requests: list = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append((self.path, dict(self.headers), body))
        status, content = type(self).replies.pop(0)
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def chat_server():
    _ChatServer.replies = []
    _ChatServer.requests = []
    server = HTTPServer(("127.0.0.1", 0), _ChatServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, _ChatServer
    server.shutdown()


def test_openai_compatible_endpoint(chat_server):
    server, handler = chat_server
    handler.replies = [
        (
            200,
            '{"dataset": "fashion_mnist", "num_clients": 40, "partition": {"scheme": "dirichlet", "alpha": 0.3}}',
        ),
        (200, '{"error": "not a job"}'),
        (500, ""),
    ]
    backend = OpenAICompatibleBackend(
        f"http://127.0.0.1:{server.server_port}/v1", "qwen2.5:0.5b", api_key="k", timeout=5
    )
    parser = GenerativeParser(backend)

    answer = parser.parse_json("fmnist 40 clients label skew alpha .3")
    assert check_answer(answer)
    assert answer["dataset"] == "fashion_mnist" and answer["partition"]["alpha"] == 0.3
    assert "partition.alpha" in answer["mentioned"]

    path, headers, body = handler.requests[0]
    assert path == "/v1/chat/completions" and headers["Authorization"] == "Bearer k"
    assert body["model"] == "qwen2.5:0.5b" and body["temperature"] == 0
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == output_schema()
    assert body["messages"][-1] == {"role": "user", "content": "fmnist 40 clients label skew alpha .3"}

    assert "not a federated training job" in parser.parse_json("hi")["error"]
    assert "HTTP 500" in parser.parse_json("mnist")["error"]


def test_unreachable_endpoint_is_a_clear_error():
    parser = GenerativeParser(OpenAICompatibleBackend("http://127.0.0.1:9/v1", "m", timeout=2))
    assert "unreachable" in parser.parse_json("mnist 10 clients")["error"]


def test_backend_is_chosen_by_configuration():
    from intent_llm.configuration import BackendSettings, ConfigurationError
    from intent_llm.loading import load_configured_parser

    environ = {
        "INTENT_BACKEND": "openai",
        "INTENT_OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "INTENT_OPENAI_MODEL": "llama3",
    }
    parser = load_configured_parser(BackendSettings.from_environment(environ))
    assert isinstance(parser, GenerativeParser) and isinstance(parser.backend, OpenAICompatibleBackend)
    assert parser.backend.model == "llama3"
    with pytest.raises(ConfigurationError):
        BackendSettings.from_environment({"INTENT_BACKEND": "transformers"})
    with pytest.raises(ConfigurationError):
        BackendSettings.from_environment({"INTENT_BACKEND": "gpt-9"})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("INTENT_LM_MAX_NEW_TOKENS", "lots"),
        ("INTENT_LM_MAX_NEW_TOKENS", "0"),
        ("INTENT_LM_MAX_NEW_TOKENS", "1.5"),
        ("INTENT_OPENAI_TIMEOUT", "soon"),
        ("INTENT_OPENAI_TIMEOUT", "-1"),
        ("INTENT_OPENAI_TIMEOUT", "nan"),
    ],
)
def test_a_setting_that_does_not_parse_names_its_variable(name, value):
    from intent_llm.configuration import BackendSettings, ConfigurationError

    with pytest.raises(ConfigurationError, match=name):
        BackendSettings.from_environment({name: value})


def test_intent_threads_parse_strictly_and_default_to_one():
    from intent_llm.configuration import ConfigurationError, intent_threads

    assert intent_threads({}) == 1
    assert intent_threads({"INTENT_THREADS": "3"}) == 3
    for bad in ("two", "0", "-1", ""):
        with pytest.raises(ConfigurationError, match="INTENT_THREADS"):
            intent_threads({"INTENT_THREADS": bad})


def test_loading_reads_no_environment_and_sets_no_threads():
    import inspect

    from intent_llm import loading

    source = inspect.getsource(loading)
    assert "set_num_threads" not in source and "import torch" not in source
    assert "os.environ" not in source.replace("environ: Mapping[str, str] = os.environ", "")
