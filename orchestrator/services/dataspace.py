"""A user's data space: the CSV files they upload for `dataset_path`."""

from __future__ import annotations

import re
from pathlib import Path

from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile

from orchestrator.limits import user_data_dir


def _safe_filename(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(name).stem).strip(".-") or "data"
    return f"{stem[:100]}.csv"


def dataset_upload(*, owner: User, upload: UploadedFile) -> Path:
    """Store an uploaded CSV in the owner's data space under a fresh name (files in use never change)."""
    directory = user_data_dir(owner.pk)
    directory.mkdir(parents=True, exist_ok=True)
    filename = _safe_filename(upload.name or "data.csv")
    target, counter = directory / filename, 1
    while target.exists():
        counter += 1
        target = directory / f"{Path(filename).stem}-{counter}.csv"
    with target.open("wb") as stream:
        for chunk in upload.chunks():
            stream.write(chunk)
    return target


def dataset_delete(*, owner: User, name: str) -> None:
    if Path(name).name != name or not name.endswith(".csv"):
        raise FileNotFoundError(name)
    (user_data_dir(owner.pk) / name).unlink(missing_ok=True)
