"""`python -m orchestrator.bench load`: concurrent API clients against a running Flotilla.

    python -m orchestrator.bench load --url http://127.0.0.1:8000 --token TOKEN [--clients 50 --seconds 30]
        [--prepare 10]

Each client (a thread with its own keep-alive HTTP/1.1 connection, the standard library's
http.client) alternates GET /api/jobs/ and GET /api/jobs/<id>/rounds/ for the token's first
job (found from the list; without one, only the list is asked for). Printed: requests per
second, p50/p95/p99 latency overall and per endpoint, the answers that were not 200 by status
(and failures to connect by kind), and the PostgreSQL connections open to the server's
database, sampled every second during the run and for --settle seconds after it (from
pg_stat_activity through --database-url, DATABASE_URL by default; skipped for SQLite).

Only a server on this machine is accepted (127.0.0.1 or localhost), and the load is bounded:
at most 200 clients for at most 120 seconds.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

LOCAL_HOSTS = {"127.0.0.1", "localhost"}
MAX_CLIENTS = 200
MAX_SECONDS = 120
REQUEST_TIMEOUT_S = 30.0
# --prepare: the jobs whose list and rounds are read (a dashboard's worth of real rounds).
PREPARED_JOB = {
    "name": "load benchmark",
    "dataset": "digits",
    "model": "mlp",
    "num_clients": 10,
    "rounds": 20,
    "local_epochs": 1,
    "seed": 0,
}
MAX_PREPARED_JOBS = 20
PREPARE_TIMEOUT_S = 1800


@dataclass
class Tally:
    """What the clients saw; each client appends under the lock."""

    latencies: dict[str, list[float]] = field(default_factory=dict)  # endpoint -> seconds, 200s only
    errors: Counter[str] = field(default_factory=Counter)  # "500", "ConnectionResetError", ...
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, endpoint: str, seconds: float, outcome: str) -> None:
        with self.lock:
            if outcome == "200":
                self.latencies.setdefault(endpoint, []).append(seconds)
            else:
                self.errors[outcome] += 1


@dataclass
class ConnectionSamples:
    during: list[int] = field(default_factory=list)
    after: list[int] = field(default_factory=list)
    note: str = ""


def bounded(name: str, low: int, high: int) -> Any:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}: expected a whole number, got {raw!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{name}: must be between {low} and {high}, got {value}")
        return value

    return parse


def local_target(url: str) -> tuple[str, int]:
    """(host, port) of an http:// URL on this machine; ValueError for anything else."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise ValueError(f"--url {url!r}: only http:// is supported")
    if parts.hostname not in LOCAL_HOSTS:
        raise ValueError(f"--url {url!r}: the load benchmark only targets 127.0.0.1 or localhost")
    return parts.hostname, parts.port or 80


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


class Client:
    """One keep-alive connection; reconnects after a failure."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port = host, port
        self.headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
        self.conn: http.client.HTTPConnection | None = None

    def get(self, path: str) -> tuple[str, bytes]:
        """(outcome, body): outcome is the status as text, or the exception's name."""
        return self.request("GET", path)

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[str, bytes]:
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT_S)
            headers = {**self.headers, "Content-Type": "application/json"} if body else self.headers
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            body = response.read()
            if response.will_close:
                self.close()
            return str(response.status), body
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return type(exc).__name__, b""

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def first_job_id(host: str, port: int, token: str) -> int | None:
    client = Client(host, port, token)
    try:
        outcome, body = client.get("/api/jobs/?limit=1")
    finally:
        client.close()
    if outcome != "200":
        raise RuntimeError(f"GET /api/jobs/ answered {outcome}: check --url and --token")
    results = json.loads(body).get("results", [])
    return int(results[0]["id"]) if results else None


def jobs_prepare(host: str, port: int, token: str, count: int) -> list[int]:
    """Submit PREPARED_JOB until the user has `count` succeeded jobs of it, and wait for them
    (real jobs through the workers, so the endpoints read what a user's dashboard reads)."""
    client = Client(host, port, token)
    try:
        outcome, body = client.get(f"/api/jobs/?limit={MAX_PREPARED_JOBS * 4}")
        if outcome != "200":
            raise RuntimeError(f"GET /api/jobs/ answered {outcome}: check --url and --token")
        ready = [
            job["id"]
            for job in json.loads(body)["results"]
            if job["name"] == PREPARED_JOB["name"] and job["status"] == "succeeded"
        ]
        deadline = time.monotonic() + PREPARE_TIMEOUT_S
        while len(ready) < count:  # one at a time: the per-user limit on running jobs
            outcome, body = client.request("POST", "/api/jobs/", json.dumps(PREPARED_JOB).encode())
            if outcome != "201":
                raise RuntimeError(f"POST /api/jobs/ answered {outcome}: {body[:300]!r}")
            job_id, status = int(json.loads(body)["id"]), "queued"
            while status != "succeeded":
                if status in ("failed", "cancelled"):
                    raise RuntimeError(f"prepared job {job_id} {status}")
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"prepared jobs not done within {PREPARE_TIMEOUT_S} s: is a worker running?"
                    )
                time.sleep(1)
                outcome, body = client.get(f"/api/jobs/{job_id}/")
                if outcome != "200":
                    raise RuntimeError(f"GET /api/jobs/{job_id}/ answered {outcome}")
                status = json.loads(body)["status"]
            ready.append(job_id)
        return ready
    finally:
        client.close()


def run_client(
    client: Client, paths: list[tuple[str, str]], offset: int, deadline: float, tally: Tally
) -> None:
    i = offset
    try:
        while time.monotonic() < deadline:
            endpoint, path = paths[i % len(paths)]
            i += 1
            started = time.perf_counter()
            outcome, _ = client.get(path)
            tally.add(endpoint, time.perf_counter() - started, outcome)
            if not outcome.isdigit():
                time.sleep(0.05)  # a refused connection: do not spin
    finally:
        client.close()


def sample_connections(dsn: str, stop: threading.Event, samples: list[int], note: list[str]) -> None:
    """Every second until `stop`: the connections open to this DSN's database (this one excluded)."""
    try:
        import psycopg

        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            while True:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).fetchone()
                samples.append(int(row[0]) if row else 0)
                if stop.wait(1.0):
                    return
    except Exception as exc:  # the figures are a report: say why they are missing
        note.append(f"connection sampling stopped: {type(exc).__name__}: {exc}")


def start_sampler(dsn: str, samples: list[int], note: list[str]) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=sample_connections, args=(dsn, stop, samples, note), daemon=True)
    thread.start()
    return thread, stop


def postgres_dsn(url: str) -> str | None:
    return url if url.split("://", 1)[0] in {"postgres", "postgresql"} else None


def report(
    args: argparse.Namespace, job_id: int | None, elapsed: float, tally: Tally, pg: ConnectionSamples
) -> list[str]:
    everything = sorted(s for values in tally.latencies.values() for s in values)
    ok = len(everything)
    failed = sum(tally.errors.values())
    total = ok + failed

    def figures(ordered: list[float]) -> str:
        return " / ".join(f"{percentile(ordered, q) * 1000:.0f}" for q in (0.50, 0.95, 0.99))

    lines = [
        f"# Load benchmark: {args.clients} clients for {args.seconds} s against {args.url}",
        "",
        "Endpoints: /api/jobs/"
        + (f" and /api/jobs/{job_id}/rounds/" if job_id else " only (no job: none to ask rounds of)"),
        f"Requests: {total} in {elapsed:.1f} s = {total / elapsed:.1f} requests/s "
        f"({ok} answered 200, {failed} not)",
        f"Latency of 200s, p50 / p95 / p99 (ms): {figures(everything)}",
    ]
    for endpoint, values in sorted(tally.latencies.items()):
        lines.append(f"  {endpoint}: {len(values)} requests, p50 / p95 / p99 (ms) {figures(sorted(values))}")
    if tally.errors:
        lines.append(
            "Errors: " + ", ".join(f"{kind} x{count}" for kind, count in sorted(tally.errors.items()))
        )
    else:
        lines.append("Errors: none")
    if pg.note:
        lines.append(f"PostgreSQL connections: {pg.note}")
    if pg.during:
        lines.append(
            f"PostgreSQL connections to the database during the run: max {max(pg.during)}, "
            f"mean {sum(pg.during) / len(pg.during):.1f} ({len(pg.during)} samples, 1/s)"
        )
    if pg.after:
        lines.append(f"  in the {args.settle} s after: max {max(pg.after)}, at the end {pg.after[-1]}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m orchestrator.bench load",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--url", required=True, help="the server, e.g. http://127.0.0.1:8000 (this machine only)"
    )
    parser.add_argument("--token", required=True, help="an API token of the user whose jobs are read")
    parser.add_argument("--clients", type=bounded("--clients", 1, MAX_CLIENTS), default=50)
    parser.add_argument("--seconds", type=bounded("--seconds", 1, MAX_SECONDS), default=30)
    parser.add_argument(
        "--settle",
        type=bounded("--settle", 0, 60),
        default=10,
        help="seconds to keep counting connections after",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", ""),
        help="the server's PostgreSQL, for pg_stat_activity (default: DATABASE_URL)",
    )
    parser.add_argument(
        "--prepare",
        type=bounded("--prepare", 0, MAX_PREPARED_JOBS),
        default=0,
        help="first make sure the user has this many finished jobs of digits (10 clients, 20 rounds), "
        "submitting and waiting for the missing ones; needs a worker",
    )
    args = parser.parse_args(argv)
    try:
        host, port = local_target(args.url)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        if args.prepare:
            print(f"prepared jobs: {jobs_prepare(host, port, args.token, args.prepare)}", flush=True)
        job_id = first_job_id(host, port, args.token)
    except (RuntimeError, ValueError, KeyError) as exc:
        parser.error(str(exc))
    paths = [("jobs", "/api/jobs/")]
    if job_id is not None:
        paths.append(("rounds", f"/api/jobs/{job_id}/rounds/"))

    pg = ConnectionSamples()
    notes: list[str] = []
    dsn = postgres_dsn(args.database_url)
    sampler: tuple[threading.Thread, threading.Event] | None = None
    if dsn:
        sampler = start_sampler(dsn, pg.during, notes)
    else:
        pg.note = "not sampled (--database-url / DATABASE_URL is not a postgres:// URL)"

    tally = Tally()
    started = time.monotonic()
    deadline = started + args.seconds
    clients = [
        threading.Thread(
            target=run_client, args=(Client(host, port, args.token), paths, i, deadline, tally), daemon=True
        )
        for i in range(args.clients)
    ]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    elapsed = time.monotonic() - started

    if sampler is not None:
        sampler[1].set()
        sampler[0].join()
        if args.settle:
            after = start_sampler(dsn or "", pg.after, notes)
            time.sleep(args.settle)
            after[1].set()
            after[0].join()
    if notes:
        pg.note = "; ".join(notes)
    print("\n".join(report(args, job_id, elapsed, tally, pg)), flush=True)
    return 0
