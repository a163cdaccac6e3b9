"""Data page uploads: the whole CSV is checked with the loader's rules before anything is stored."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils.html import escape

from orchestrator.fl.data import load_csv
from orchestrator.limits import user_data_dir

GOOD = b"a,b,label\n1,2,x\n3,4,y\n5,6,x\n7,8,y\n1.5,-2e3,x\n0,0,y\n"

# (what is wrong, the file, the reason the Data page shows)
BAD_UPLOADS = [
    (
        "binary data after a valid header",
        b"a,b,label\n1,2,x\n" + bytes(range(256)) * 8,
        "Not stored: the file is not UTF-8 text (a byte that is not UTF-8 at offset 144).",
    ),
    (
        "one data row",
        b"a,b,label\n1,2,x\n",
        "Not stored: it needs at least two distinct labels to learn from; every row has label 'x'.",
    ),
    (
        "one label on every row",
        b"a,b,label\n1,2,x\n3,4,x\n5,6,x\n7,8,x\n",
        "Not stored: it needs at least two distinct labels to learn from; every row has label 'x'.",
    ),
    (
        "a label with a single row",
        b"a,b,label\n1,2,x\n3,4,x\n5,6,x\n7,8,y\n",
        "Not stored: too few rows per label for the 20% test split: every label needs rows in both the "
        "training and the test part (at least 2 rows); too few: 'y' has 1.",
    ),
    (
        "only a label column",
        b"label\nx\ny\nx\ny\n",
        "Not stored: it has no feature columns: add a 'text' column (a text task) or numeric columns "
        "besides 'label'.",
    ),
    (
        "a word in a numeric column",
        b"a,b,label\n1,2,x\n3,4,y\n5,six,x\n7,8,y\n",
        "Not stored: line 4, column 'b': 'six' is not a number (without a 'text' column every column "
        "except 'label' is a numeric feature).",
    ),
]


def stored_files(user: User) -> list[str]:
    directory = user_data_dir(user.pk)
    return sorted(path.name for path in directory.iterdir()) if directory.is_dir() else []


@pytest.mark.django_db
@pytest.mark.parametrize(("what", "content", "reason"), BAD_UPLOADS, ids=[case[0] for case in BAD_UPLOADS])
def test_a_bad_csv_is_refused_with_its_reason_and_not_stored(
    logged_in: Client, user: User, what: str, content: bytes, reason: str
) -> None:
    upload = SimpleUploadedFile("bad.csv", content, content_type="text/csv")
    response = logged_in.post("/data/", {"file": upload})
    page = response.content.decode()
    assert response.status_code == 400, what
    assert escape(reason) in page, page
    assert stored_files(user) == []
    assert "No data sets uploaded yet." in page


@pytest.mark.django_db
def test_a_good_csv_is_stored_and_loads(logged_in: Client, user: User) -> None:
    upload = SimpleUploadedFile("good.csv", GOOD, content_type="text/csv")
    response = logged_in.post("/data/", {"file": upload})
    assert response.status_code == 302
    assert stored_files(user) == ["good.csv"]
    stored = user_data_dir(user.pk) / "good.csv"
    assert stored.read_bytes() == GOOD
    data = load_csv(stored, seed=0)  # what upload accepts, the worker's loader loads
    assert data.class_names == ("x", "y") and len(data.y_test) == 2
    assert "good.csv" in logged_in.get("/data/").content.decode()


@pytest.mark.django_db
def test_a_text_csv_needs_no_numeric_columns(logged_in: Client, user: User) -> None:
    content = "text,label\nthé printer is broken,hw\nlogin fails,sw\nscreen flickers,hw\nvpn drops,sw\n"
    upload = SimpleUploadedFile("tickets.csv", content.encode(), content_type="text/csv")
    assert logged_in.post("/data/", {"file": upload}).status_code == 302
    assert stored_files(user) == ["tickets.csv"]
