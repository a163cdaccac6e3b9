"""Data sets: real loaders that read local files, or download when the machine can.

`digits` ships with scikit-learn and is always available. MNIST, Fashion-MNIST and
CIFAR are read from their original file formats under the data directory
(`FLOTILLA_DATA_DIR`, default `var/data` in the repository); when the files are
missing they are downloaded if the machine can reach the source, and otherwise
the loader fails with `DatasetUnavailable` naming the directory to fill. No loader
ever substitutes other data. `LOADERS` maps every spec data-set name to its
loader, including the text sets of `text_data.py`.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import math
import pickle
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from .dataset import Dataset, DatasetUnavailable, data_dir, fetch_file
from .text_data import load_ag_news, load_sst2

TEST_FRACTION = 0.2


@lru_cache(maxsize=4)
def load_dataset(name: str, *, seed: int = 0, path: str | None = None) -> Dataset:
    """Load a data set by its spec name (cached per process: workers reuse it)."""
    if name == "csv":
        if not path:
            raise DatasetUnavailable("dataset 'csv' needs dataset_path")
        return load_csv(Path(path), seed=seed)
    loader = LOADERS.get(name)
    if loader is None:
        raise DatasetUnavailable(f"no loader for dataset '{name}'")
    return loader(seed)


def stratified_split(
    labels: np.ndarray, *, seed: int, test_fraction: float = TEST_FRACTION
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a stratified train/test split chosen by seed."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test = int(round(len(members) * test_fraction))
        if len(members) > 1:
            n_test = min(max(n_test, 1), len(members) - 1)
        test.append(members[:n_test])
        train.append(members[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def load_digits(seed: int) -> Dataset:
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    images = (bunch.images.astype(np.float32) / 16.0 - 0.5) / 0.5
    labels = bunch.target.astype(np.int64)
    train, test = stratified_split(labels, seed=seed)
    x = torch.from_numpy(images).unsqueeze(1)
    y = torch.from_numpy(labels)
    return Dataset("digits", x[train], y[train], x[test], y[test], tuple(str(i) for i in range(10)))


# --- MNIST and Fashion-MNIST: the IDX files of the original distribution ---------------

_IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
_IDX_SOURCES = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion_mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
}
_IDX_STATS = {"mnist": (0.1307, 0.3081), "fashion_mnist": (0.2860, 0.3530)}
FASHION_CLASSES = (
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)


def read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    dims = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def _find_or_fetch(directory: Path, filename: str, source: str, dataset: str) -> Path:
    for candidate in (directory / filename, directory / f"{filename}.gz"):
        if candidate.exists():
            return candidate
    target = directory / f"{filename}.gz" if not filename.endswith(".tar.gz") else directory / filename
    return fetch_file(source + target.name, target, dataset=dataset)


def load_idx_dataset(name: str, seed: int) -> Dataset:
    directory = data_dir() / name
    arrays = {
        key: read_idx(_find_or_fetch(directory, filename, _IDX_SOURCES[name], name))
        for key, filename in _IDX_FILES.items()
    }
    mean, std = _IDX_STATS[name]

    def images(key: str) -> torch.Tensor:
        return ((torch.from_numpy(arrays[key].astype(np.float32) / 255.0) - mean) / std).unsqueeze(1)

    def labels(key: str) -> torch.Tensor:
        return torch.from_numpy(arrays[key].astype(np.int64))

    classes = FASHION_CLASSES if name == "fashion_mnist" else tuple(str(i) for i in range(10))
    return Dataset(name, images("train_x"), labels("train_y"), images("test_x"), labels("test_y"), classes)


# --- CIFAR-10 and CIFAR-100: the "python version" archives ------------------------------

_CIFAR = {
    "cifar10": (
        "cifar-10-python.tar.gz",
        "cifar-10-batches-py",
        [f"data_batch_{i}" for i in range(1, 6)],
        "test",
        b"labels",
    ),
    "cifar100": ("cifar-100-python.tar.gz", "cifar-100-python", ["train"], "test", b"fine_labels"),
}
_CIFAR_SOURCE = "https://www.cs.toronto.edu/~kriz/"
_CIFAR_MEAN = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
_CIFAR_STD = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)


def load_cifar(name: str, seed: int) -> Dataset:
    archive, folder, train_files, test_file, label_key = _CIFAR[name]
    directory = data_dir() / name
    extracted = directory / folder
    if not extracted.exists():
        tar_path = _find_or_fetch(directory, archive, _CIFAR_SOURCE, name)
        with tarfile.open(tar_path) as tar:
            tar.extractall(directory, filter="data")

    def read(files: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        for filename in files:
            with open(extracted / filename, "rb") as handle:
                batch = pickle.load(handle, encoding="bytes")  # noqa: S301 - the dataset's own format
            xs.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(batch[label_key], dtype=np.int64))
        x = torch.from_numpy(np.concatenate(xs).astype(np.float32) / 255.0)
        return (x - _CIFAR_MEAN) / _CIFAR_STD, torch.from_numpy(np.concatenate(ys))

    meta_file = "batches.meta" if name == "cifar10" else "meta"
    with open(extracted / meta_file, "rb") as handle:
        meta = pickle.load(handle, encoding="bytes")  # noqa: S301
    names_key = b"label_names" if name == "cifar10" else b"fine_label_names"
    classes = tuple(label.decode() for label in meta[names_key])
    x_train, y_train = read(train_files)
    x_test, y_test = read([test_file])
    return Dataset(name, x_train, y_train, x_test, y_test, classes)


# --- CSV ------------------------------------------------------------------------------


class CsvInvalid(DatasetUnavailable):
    """The bytes are not a usable CSV data set; the message is the reason, without a path."""


@dataclass(frozen=True)
class CsvTable:
    """A checked CSV data set: one label index per row, and texts or numeric features."""

    labels: np.ndarray  # int64 indices into class_names
    class_names: tuple[str, ...]
    texts: list[str] | None  # the `text` column, when there is one
    features: np.ndarray | None  # float32 (rows, columns) otherwise
    feature_columns: tuple[str, ...] = ()


def read_csv_table(data: bytes) -> CsvTable:
    """The rules a CSV data set must follow, checked on the whole file; CsvInvalid names the first broken one.

    UTF-8 text (a byte-order mark is allowed), a header row with a `label` column, every
    data row as wide as the header, no empty labels, at least two distinct labels and
    enough rows of each for the stratified test split (`stratified_split`) to put every
    label in both the training and the test part. A `text` column makes it a text task;
    otherwise every other column is a numeric feature and every value in it a finite number.
    Both the loader and the upload check call this, so a file accepted at upload loads.
    """
    header, rows = _csv_rows(data)
    label_at = header.index("label")
    raw_labels = [row[label_at].strip() for _, row in rows]
    for (line, _), label in zip(rows, raw_labels, strict=True):
        if not label:
            raise CsvInvalid(f"line {line} has an empty label")
    class_names = tuple(sorted(set(raw_labels), key=_label_sort_key))
    if len(class_names) < 2:
        raise CsvInvalid(
            f"it needs at least two distinct labels to learn from; every row has label '{class_names[0]}'"
        )
    index = {name: i for i, name in enumerate(class_names)}
    labels = np.array([index[label] for label in raw_labels], dtype=np.int64)
    _check_split(labels, class_names)
    if "text" in header:
        text_at = header.index("text")
        return CsvTable(labels, class_names, [row[text_at] for _, row in rows], None)
    columns = [(at, column) for at, column in enumerate(header) if column != "label"]
    if not columns:
        raise CsvInvalid(
            "it has no feature columns: add a 'text' column (a text task) or numeric columns besides 'label'"
        )
    features = np.empty((len(rows), len(columns)), dtype=np.float32)
    for i, (line, row) in enumerate(rows):
        for j, (at, column) in enumerate(columns):
            features[i, j] = _finite_number(row[at], line=line, column=column)
    return CsvTable(labels, class_names, None, features, tuple(column for _, column in columns))


def _csv_rows(data: bytes) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header (names stripped) and the non-blank data rows with their line numbers."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        offset = exc.start + (len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0)
        raise CsvInvalid(f"the file is not UTF-8 text (a byte that is not UTF-8 at offset {offset})") from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [column.strip() for column in next(reader, [])]
        rows = [(reader.line_num, row) for row in reader if row]
    except csv.Error as exc:
        raise CsvInvalid(f"line {reader.line_num} is not valid CSV ({exc})") from exc
    if "label" not in header:
        raise CsvInvalid("the header row needs a 'label' column")
    duplicates = sorted({column for column in header if header.count(column) > 1})
    if duplicates:
        raise CsvInvalid(f"the header names column '{duplicates[0]}' more than once")
    if not rows:
        raise CsvInvalid("there are no data rows after the header")
    for line, row in rows:
        if len(row) != len(header):
            raise CsvInvalid(f"line {line} has {len(row)} fields, the header has {len(header)}")
    return header, rows


def _finite_number(raw: str, *, line: int, column: str) -> float:
    value = raw.strip()
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise CsvInvalid(
            f"line {line}, column '{column}': {value[:40]!r} is not a number (without a 'text' column "
            "every column except 'label' is a numeric feature)"
        )
    return number


def _check_split(labels: np.ndarray, class_names: tuple[str, ...]) -> None:
    """Every label must land in both parts of the split the loader makes (the counts do not depend on the seed)."""
    train, test = stratified_split(labels, seed=0)
    in_train, in_test = set(labels[train].tolist()), set(labels[test].tolist())
    short = [name for i, name in enumerate(class_names) if i not in in_train or i not in in_test]
    if short:
        counts = np.bincount(labels, minlength=len(class_names))
        named = ", ".join(f"'{name}' has {counts[class_names.index(name)]}" for name in short[:5])
        raise CsvInvalid(
            f"too few rows per label for the {TEST_FRACTION:.0%} test split: every label needs rows in both "
            f"the training and the test part (at least 2 rows); too few: {named}"
        )


def load_csv(path: Path, *, seed: int) -> Dataset:
    """A CSV data set (the rules are `read_csv_table`'s); numeric features are standardised on train."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetUnavailable(f"cannot read CSV '{path}': {exc.strerror}") from exc
    try:
        table = read_csv_table(data)
    except CsvInvalid as exc:
        raise DatasetUnavailable(f"CSV '{path}': {exc}") from exc
    train, test = stratified_split(table.labels, seed=seed)
    y = torch.from_numpy(table.labels)
    if table.texts is not None:
        texts = table.texts
        return Dataset(
            "csv", [texts[i] for i in train], y[train], [texts[i] for i in test], y[test], table.class_names
        )
    assert table.features is not None
    features = table.features
    mean = features[train].mean(axis=0)
    std = features[train].std(axis=0) + 1e-6
    x = torch.from_numpy((features - mean) / std)
    return Dataset("csv", x[train], y[train], x[test], y[test], table.class_names)


def _label_sort_key(label: str) -> tuple[int, float | str]:
    try:
        return (0, float(label))
    except ValueError:
        return (1, label)


LOADERS: dict[str, Callable[[int], Dataset]] = {
    "digits": load_digits,
    "mnist": lambda seed: load_idx_dataset("mnist", seed),
    "fashion_mnist": lambda seed: load_idx_dataset("fashion_mnist", seed),
    "cifar10": lambda seed: load_cifar("cifar10", seed),
    "cifar100": lambda seed: load_cifar("cifar100", seed),
    "sst2": load_sst2,
    "ag_news": load_ag_news,
}
