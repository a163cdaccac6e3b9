"""A user's data space: the CSV files they upload for `dataset_path`."""

from __future__ import annotations

import re
from pathlib import Path

from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile

from orchestrator.fl.data import CsvInvalid, read_csv_table
from orchestrator.limits import user_data_dir


class DatasetRefused(ValueError):
    """The upload is not a usable CSV data set; the message says why, and nothing was stored."""


def _safe_filename(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(name).stem).strip(".-") or "data"
    return f"{stem[:100]}.csv"


def dataset_upload(*, owner: User, upload: UploadedFile) -> Path:
    """Store an uploaded CSV in the owner's data space under a fresh name (files in use never change).

    The whole file is checked first with the loader's own rules (`read_csv_table`), so a
    stored file is one a job can load; DatasetRefused says why not, and nothing is stored.
    The caller bounds the size (the form refuses files over FLOTILLA_MAX_UPLOAD_MB).
    """
    data = b"".join(upload.chunks())
    try:
        read_csv_table(data)
    except CsvInvalid as exc:
        raise DatasetRefused(f"Not stored: {exc}.") from exc
    directory = user_data_dir(owner.pk)
    directory.mkdir(parents=True, exist_ok=True)
    filename = _safe_filename(upload.name or "data.csv")
    target, counter = directory / filename, 1
    while target.exists():
        counter += 1
        target = directory / f"{Path(filename).stem}-{counter}.csv"
    target.write_bytes(data)
    return target


def dataset_delete(*, owner: User, name: str) -> None:
    if Path(name).name != name or not name.endswith(".csv"):
        raise FileNotFoundError(name)
    (user_data_dir(owner.pk) / name).unlink(missing_ok=True)
