"""Admission: what a user may ask of this deployment, checked before anything is queued.

Limits come from settings (`FLOTILLA_MAX_CLIENTS`, `FLOTILLA_MAX_ROUNDS`,
`FLOTILLA_MAX_CONCURRENT_JOBS`; README.md lists the defaults). A CSV
`dataset_path` must resolve, symlinks and `..` included, inside the user's own
upload directory or the shared part of `FLOTILLA_DATA_DIR`, never into another
user's uploads or anywhere else on the server.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from jobspec import JobSpec, format_spec_errors

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
