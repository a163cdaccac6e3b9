"""Admission: what a user may ask of this deployment, checked before anything is queued.

Limits come from settings (`FLOTILLA_MAX_CLIENTS`, `FLOTILLA_MAX_ROUNDS`,
`FLOTILLA_MAX_LOCAL_EPOCHS`, `FLOTILLA_MAX_HPO_TRIALS`, `FLOTILLA_MAX_JOB_WORK`,
`FLOTILLA_MAX_CONCURRENT_JOBS`; README.md lists the defaults). A job's work is the
example passes its clients make: examples per client (the data set's training
examples, a CSV's rows, divided by num_clients) x clients_per_round x local_epochs x
rounds. An HPO job's trials are started by the platform without admission of their
own, so the HPO job is admitted only when the largest trial its search space can
propose (rounds up to twice the base, more local epochs, every client) fits too. A CSV
`dataset_path` must resolve, symlinks and `..` included, inside the user's own
upload directory or the shared part of `FLOTILLA_DATA_DIR`, never into another
user's uploads or anywhere else on the server.
"""

from __future__ import annotations

import math
from pathlib import Path

from django.conf import settings

from jobspec import JobSpec, format_spec_errors
from jobspec.catalogue import CATALOGUE

UPLOADS_DIRNAME = "uploads"


class SpecRejected(Exception):
    """The spec is valid JobSpec but this deployment refuses it; errors name the field."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__(format_spec_errors(errors))
        self.errors = errors


def data_dir() -> Path:
    return Path(settings.FLOTILLA_DATA_DIR).resolve()


def user_data_dir(user_id: int) -> Path:
    """Where a user's uploaded data sets live: <data dir>/uploads/<user id>/."""
    return data_dir() / UPLOADS_DIRNAME / str(user_id)


def dataset_path_resolve(raw_path: str, *, owner_id: int) -> str:
    """The absolute path a job may read, or SpecRejected naming `dataset_path`.

    A relative path is taken inside the user's upload directory ("tickets.csv").
    """
    if "\x00" in raw_path:  # no file name holds one; Path.resolve would raise ValueError
        raise SpecRejected([{"field": "dataset_path", "message": "must not contain a NUL character (\\x00)"}])
    candidate = Path(raw_path).expanduser()
    if not candidate.is_absolute():
        candidate = user_data_dir(owner_id) / candidate
    resolved = candidate.resolve()
    root, uploads, own = data_dir(), data_dir() / UPLOADS_DIRNAME, user_data_dir(owner_id)
    inside_root = resolved.is_relative_to(root)
    in_other_users_space = resolved.is_relative_to(uploads) and not resolved.is_relative_to(own)
    if not inside_root or in_other_users_space:
        raise SpecRejected(
            [
                {
                    "field": "dataset_path",
                    "message": "must be a file in your data space (upload it on the Data page) "
                    f"or under the deployment's data directory {root}",
                }
            ]
        )
    if not resolved.is_file():
        raise SpecRejected(
            [{"field": "dataset_path", "message": f"no such file: {raw_path} (upload it on the Data page)"}]
        )
    return str(resolved)


def dataset_examples(spec: JobSpec) -> int:
    """The training examples the spec's data set holds (a bound: a CSV counts every line
    after its header, a quoted newline included), or 0 when a CSV cannot be read here."""
    examples = CATALOGUE[spec.dataset].examples
    if examples is not None:
        return examples
    try:
        with open(spec.dataset_path or "", "rb") as handle:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
            handle.seek(max(0, handle.tell() - 1))
            last_line_unterminated = handle.tell() > 0 and handle.read(1) != b"\n"
    except OSError:
        return 0
    return max(0, lines + int(last_line_unterminated) - 1)


def job_work(spec: JobSpec, *, rounds: int, local_epochs: int, clients_per_round: int) -> int:
    """Example passes: examples per client x clients_per_round x local_epochs x rounds."""
    return math.ceil(dataset_examples(spec) / spec.num_clients) * clients_per_round * local_epochs * rounds


def _largest_trial(spec: JobSpec) -> tuple[int, int, int]:
    """(rounds, local_epochs, clients_per_round) at the top of the spec's HPO search space."""
    from orchestrator.hpo.space import search_space  # the space imports the engine's models

    assert spec.clients_per_round is not None
    largest = {
        "rounds": spec.rounds,
        "local_epochs": spec.local_epochs,
        "clients_per_round": spec.clients_per_round,
    }
    for dim in search_space(spec).dimensions:
        if dim.field in largest:
            largest[dim.field] = max(largest[dim.field], int(dim.high))
    return largest["rounds"], largest["local_epochs"], largest["clients_per_round"]


def _work_errors(spec: JobSpec) -> list[dict[str, str]]:
    budget = settings.FLOTILLA_MAX_JOB_WORK
    per_client = math.ceil(dataset_examples(spec) / spec.num_clients)
    assert spec.clients_per_round is not None
    work = job_work(
        spec, rounds=spec.rounds, local_epochs=spec.local_epochs, clients_per_round=spec.clients_per_round
    )
    if work > budget:
        return [
            {
                "field": "rounds",
                "message": f"too much work for one job: examples per client ({per_client}) x "
                f"clients_per_round ({spec.clients_per_round}) x local_epochs ({spec.local_epochs}) x "
                f"rounds ({spec.rounds}) = {work} example passes; this deployment allows at most "
                f"{budget}. Lower rounds, local_epochs or clients_per_round.",
            }
        ]
    if not spec.hpo.enabled:
        return []
    rounds, local_epochs, clients = _largest_trial(spec)
    if rounds > settings.FLOTILLA_MAX_ROUNDS:
        return [
            {
                "field": "hpo.fixed",
                "message": f"a trial of this search may run {rounds} rounds (twice the spec's); this "
                f"deployment allows at most {settings.FLOTILLA_MAX_ROUNDS} rounds per job. Lower rounds "
                "or pin it in hpo.fixed.",
            }
        ]
    work = job_work(spec, rounds=rounds, local_epochs=local_epochs, clients_per_round=clients)
    if work <= budget:
        return []
    return [
        {
            "field": "hpo.fixed",
            "message": f"a trial of this search may run examples per client ({per_client}) x "
            f"clients_per_round ({clients}) x local_epochs ({local_epochs}) x rounds ({rounds}) = "
            f"{work} example passes; this deployment allows at most {budget} per job. Lower rounds, "
            "local_epochs or clients_per_round, or pin them in hpo.fixed.",
        }
    ]


def admission_errors(spec: JobSpec, *, active_jobs: int) -> list[dict[str, str]]:
    """Field-named reasons this deployment refuses the spec for a user with `active_jobs` running."""
    errors = []
    if spec.num_clients > settings.FLOTILLA_MAX_CLIENTS:
        errors.append(
            {
                "field": "num_clients",
                "message": f"this deployment allows at most {settings.FLOTILLA_MAX_CLIENTS} clients per job",
            }
        )
    if spec.rounds > settings.FLOTILLA_MAX_ROUNDS:
        errors.append(
            {
                "field": "rounds",
                "message": f"this deployment allows at most {settings.FLOTILLA_MAX_ROUNDS} rounds per job",
            }
        )
    if spec.local_epochs > settings.FLOTILLA_MAX_LOCAL_EPOCHS:
        errors.append(
            {
                "field": "local_epochs",
                "message": f"this deployment allows at most {settings.FLOTILLA_MAX_LOCAL_EPOCHS} local epochs "
                "per round",
            }
        )
    if spec.hpo.enabled and spec.hpo.trials > settings.FLOTILLA_MAX_HPO_TRIALS:
        errors.append(
            {
                "field": "hpo.trials",
                "message": f"this deployment allows at most {settings.FLOTILLA_MAX_HPO_TRIALS} trials per search",
            }
        )
    if not errors:  # the budget's product is only meaningful within the per-field limits
        errors += _work_errors(spec)
    if active_jobs >= settings.FLOTILLA_MAX_CONCURRENT_JOBS:
        errors.append(
            {
                "field": "spec",
                "message": f"you already have {active_jobs} jobs queued or running; this deployment "
                f"allows {settings.FLOTILLA_MAX_CONCURRENT_JOBS} at a time. Wait for one to finish "
                "or cancel one.",
            }
        )
    return errors
