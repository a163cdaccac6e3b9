"""Artifact storage: the tensors a job produces, as safetensors files.

Everything lives under `FLOTILLA_ARTIFACT_DIR` (a path every worker host shares), in
a directory per job named by `Job.storage_key` (id and creation time):

    jobs/<key>/weights/round-0003.safetensors          global weights after round 3 (0 = initial)
    jobs/<key>/server/round-0003.safetensors           strategy state after round 3 (tensors + JSON meta)
    jobs/<key>/rounds/round-0004/configured.safetensors  state the round was configured with
    jobs/<key>/rounds/round-0004/uplink-0007.safetensors client 7's uplink payload in round 4
    jobs/<key>/clients/0007/round-0004.safetensors     client 7's private state after round 4

Files are written to a temporary name and renamed, so a reader never sees half a
file and a duplicate task rewriting the same (deterministic) content is harmless.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings

from .fl.records import ServerState, Weights
from .fl.wire import decode_message, encode_message

_CLIENT_STATE_FILE = re.compile(r"round-(\d+)\.safetensors")


def job_dir(job_key: str) -> Path:
    return Path(settings.FLOTILLA_ARTIFACT_DIR) / "jobs" / job_key


def round_dir(job_key: str, server_round: int) -> Path:
    return job_dir(job_key) / "rounds" / f"round-{server_round:04d}"


def weights_path(job_key: str, server_round: int) -> Path:
    return job_dir(job_key) / "weights" / f"round-{server_round:04d}.safetensors"


def _write_atomic(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _read_tensors(path: Path) -> tuple[Weights, dict[str, Any]]:
    return decode_message(path.read_bytes())


# --- global weights --------------------------------------------------------------------


def weights_save(job_key: str, server_round: int, weights: Weights, meta: dict[str, Any]) -> None:
    _write_atomic(weights_path(job_key, server_round), encode_message(weights, meta))


def weights_load(job_key: str, server_round: int) -> Weights:
    return _read_tensors(weights_path(job_key, server_round))[0]


# --- strategy (server) state -------------------------------------------------------------


def _state_bytes(state: ServerState) -> bytes:
    return encode_message(state.tensors, state.meta)


def _state_from(path: Path) -> ServerState:
    tensors, meta = _read_tensors(path)
    return ServerState(tensors=tensors, meta=meta)


def server_state_save(job_key: str, server_round: int, state: ServerState) -> None:
    _write_atomic(job_dir(job_key) / "server" / f"round-{server_round:04d}.safetensors", _state_bytes(state))


def server_state_load(job_key: str, server_round: int) -> ServerState:
    return _state_from(job_dir(job_key) / "server" / f"round-{server_round:04d}.safetensors")


def configured_state_save(job_key: str, server_round: int, state: ServerState) -> None:
    _write_atomic(round_dir(job_key, server_round) / "configured.safetensors", _state_bytes(state))


def configured_state_load(job_key: str, server_round: int) -> ServerState:
    return _state_from(round_dir(job_key, server_round) / "configured.safetensors")


# --- client payloads and private state ------------------------------------------------------


def uplink_path(job_key: str, server_round: int, client_id: int) -> Path:
    return round_dir(job_key, server_round) / f"uplink-{client_id:04d}.safetensors"


def uplink_save(job_key: str, server_round: int, client_id: int, payload: bytes) -> None:
    _write_atomic(uplink_path(job_key, server_round, client_id), payload)


def uplink_load(job_key: str, server_round: int, client_id: int) -> bytes:
    return uplink_path(job_key, server_round, client_id).read_bytes()


def client_state_save(job_key: str, client_id: int, server_round: int, state: Weights) -> None:
    path = job_dir(job_key) / "clients" / f"{client_id:04d}" / f"round-{server_round:04d}.safetensors"
    _write_atomic(path, encode_message(state))


def client_state_load(job_key: str, client_id: int, before_round: int) -> Weights | None:
    """The client's private state from its latest round before `before_round`, if it trained."""
    directory = job_dir(job_key) / "clients" / f"{client_id:04d}"
    if not directory.is_dir():
        return None
    rounds = [
        int(match.group(1))
        for match in (_CLIENT_STATE_FILE.fullmatch(p.name) for p in directory.iterdir())
        if match and int(match.group(1)) < before_round
    ]
    if not rounds:
        return None
    return _read_tensors(directory / f"round-{max(rounds):04d}.safetensors")[0]


# --- cleanup --------------------------------------------------------------------------------


def round_scratch_delete(job_key: str, completed_round: int) -> None:
    """After a round completed: drop its uplinks and configured state (the results are in the
    database) and every client state a later one supersedes (later rounds read the latest)."""
    shutil.rmtree(round_dir(job_key, completed_round), ignore_errors=True)
    clients = job_dir(job_key) / "clients"
    if not clients.is_dir():
        return
    for directory in clients.iterdir():
        rounds = sorted(
            int(match.group(1))
            for match in (_CLIENT_STATE_FILE.fullmatch(p.name) for p in directory.iterdir())
            if match and int(match.group(1)) <= completed_round
        )
        for superseded in rounds[:-1]:
            (directory / f"round-{superseded:04d}.safetensors").unlink(missing_ok=True)


def job_scratch_delete(job_key: str) -> None:
    """After a job ended, in whatever state: drop every round's scratch directory and the client
    states a later one supersedes. Idempotent."""
    shutil.rmtree(job_dir(job_key) / "rounds", ignore_errors=True)
    round_scratch_delete(job_key, 10**6)


def job_scratch_exists(job_key: str) -> bool:
    return (job_dir(job_key) / "rounds").is_dir()


def job_artifacts_delete(job_key: str) -> None:
    shutil.rmtree(job_dir(job_key), ignore_errors=True)
