"""What every data-set loader shares: the `Dataset` record it returns, the
`DatasetUnavailable` error it raises, and where data files live and whether they
may be downloaded. `data.py` (images, tabular, CSV) and `text_data.py` (text)
both build on this module.
"""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import engine_config

DOWNLOAD_TIMEOUT_S = 20


class DatasetUnavailable(RuntimeError):
    """The data set's files are not on this machine and cannot be downloaded."""


@dataclass(frozen=True)
class Dataset:
    """A train/test split. Image features are float tensors shaped (N, C, H, W);
    tabular ones (N, F); text is a list of strings (models tokenize it)."""

    name: str
    x_train: torch.Tensor | list[str]
    y_train: torch.Tensor
    x_test: torch.Tensor | list[str]
    y_test: torch.Tensor
    class_names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def is_text(self) -> bool:
        return isinstance(self.x_train, list)

    @property
    def input_shape(self) -> tuple[int, ...]:
        assert isinstance(self.x_train, torch.Tensor)
        return tuple(self.x_train.shape[1:])


def data_dir() -> Path:
    return engine_config().data_dir


def downloads_allowed() -> bool:
    return engine_config().downloads_allowed


def fetch_file(url: str, target: Path, *, dataset: str) -> Path:
    """`target`, downloaded from `url` (written whole, then renamed into place). When downloads
    are off or fail: DatasetUnavailable saying where to put the file by hand."""
    if not downloads_allowed():
        reason = "downloads are disabled (FLOTILLA_DOWNLOAD=0)"
    else:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:  # noqa: S310 - fixed https sources
                data = response.read()
            partial = target.with_suffix(target.suffix + ".part")
            partial.write_bytes(data)
            partial.rename(target)
            return target
        except OSError as exc:
            reason = f"downloading {url} failed ({exc})"
    raise DatasetUnavailable(
        f"dataset '{dataset}' is not on this machine: put {target.name} in {target.parent} ({reason})"
    )
