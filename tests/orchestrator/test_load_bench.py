"""The load benchmark: bounded, local only, and measuring a live server for real."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from orchestrator import load_bench
from orchestrator.services import accounts, jobs


@pytest.mark.parametrize(
    "url", ["https://127.0.0.1:8000", "http://example.org", "http://10.0.0.5:8000", "ftp://localhost"]
)
def test_only_this_machine_over_http_is_a_target(url: str) -> None:
    with pytest.raises(ValueError, match="--url"):
        load_bench.local_target(url)
    assert load_bench.local_target("http://localhost:8123") == ("localhost", 8123)


@pytest.mark.parametrize("argv", [["--clients", "201"], ["--seconds", "121"], ["--prepare", "21"]])
def test_the_load_is_bounded(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        load_bench.main(["--url", "http://127.0.0.1:1", "--token", "t", *argv])
    assert "must be between" in capsys.readouterr().err


def test_percentiles_are_nearest_rank() -> None:
    ordered = [float(n) for n in range(1, 101)]
    assert [load_bench.percentile(ordered, q) for q in (0.5, 0.95, 0.99)] == [50.0, 95.0, 99.0]
    assert load_bench.percentile([], 0.5) == 0.0


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_it_measures_a_live_server(
    broker, live_server_url: str, user: User, capsys: pytest.CaptureFixture[str]
) -> None:
    job = jobs.job_create(owner=user, spec={"rounds": 2})
    _, token = accounts.api_token_create(user=user)
    argv = ["--url", live_server_url, "--token", token, "--clients", "3", "--seconds", "2", "--settle", "0"]
    assert load_bench.main(argv) == 0
    out = capsys.readouterr().out
    assert f"/api/jobs/{job.pk}/rounds/" in out and "Errors: none" in out, out
    requests = int(out.split("Requests: ")[1].split()[0])
    assert requests > 10, out
