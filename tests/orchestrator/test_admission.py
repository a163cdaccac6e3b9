"""What a deployment refuses before anything is queued: limits and data-set paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from orchestrator.limits import SpecRejected, user_data_dir
from orchestrator.models import Job
from orchestrator.services import jobs

pytestmark = pytest.mark.django_db


def fields_of(rejected: pytest.ExceptionInfo[SpecRejected]) -> list[str]:
    return [error["field"] for error in rejected.value.errors]


@pytest.fixture
def csv_file(user: User) -> Path:
    directory = user_data_dir(user.pk)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "points.csv"
    rows = ["x,y,label"] + [f"{i % 7},{(i * 3) % 5},{'a' if i % 2 else 'b'}" for i in range(40)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_specs_over_the_limits_are_refused_naming_the_field(user: User, settings) -> None:
    settings.FLOTILLA_MAX_CLIENTS = 20
    settings.FLOTILLA_MAX_ROUNDS = 30
    with pytest.raises(SpecRejected) as rejected:
        jobs.job_create(owner=user, spec={"num_clients": 21, "rounds": 31})
    assert fields_of(rejected) == ["num_clients", "rounds"]
    assert "at most 20 clients" in rejected.value.errors[0]["message"]
    assert not Job.objects.exists()


def test_a_user_may_run_only_so_many_jobs_at_once(user: User, other_user: User, settings) -> None:
    settings.FLOTILLA_MAX_CONCURRENT_JOBS = 2
    jobs.job_create(owner=user, spec={"rounds": 1})
    jobs.job_create(owner=user, spec={"rounds": 1})
    with pytest.raises(SpecRejected) as rejected:
        jobs.job_create(owner=user, spec={"rounds": 1})
    assert "2 at a time" in rejected.value.errors[0]["message"]
    jobs.job_create(owner=other_user, spec={"rounds": 1})  # limits are per user
    Job.objects.filter(owner=user).update(status=Job.Status.SUCCEEDED)
    jobs.job_create(owner=user, spec={"rounds": 1})


def test_invalid_specs_come_back_with_field_named_errors(user: User) -> None:
    with pytest.raises(SpecRejected) as rejected:
        jobs.job_create(owner=user, spec={"partition": {"scheme": "dirichlet"}, "num_clients": 0})
    assert sorted(fields_of(rejected)) == ["num_clients", "partition.alpha"]


def test_a_bare_file_name_is_taken_from_the_users_uploads(user: User, csv_file: Path) -> None:
    job = jobs.job_create(owner=user, spec={"dataset": "csv", "dataset_path": "points.csv"})
    assert job.spec["dataset_path"] == str(csv_file.resolve())
    assert job.spec["model"] == "mlp"


def test_admission_picks_and_checks_the_model_from_the_files_columns(user: User, csv_file: Path) -> None:
    tickets = csv_file.with_name("tickets.csv")
    tickets.write_text("text,label\n" + "".join(f"ticket {i},{i % 2}\n" for i in range(20)), encoding="utf-8")
    job = jobs.job_create(owner=user, spec={"dataset": "csv", "dataset_path": "tickets.csv"})
    assert job.spec["model"] == "minilm"
    with pytest.raises(SpecRejected) as rejected:
        jobs.job_create(owner=user, spec={"dataset": "csv", "dataset_path": "points.csv", "model": "minilm"})
    assert fields_of(rejected) == ["model"] and "takes mlp" in str(rejected.value)


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "../../../../etc/passwd",
        "../{other}/points.csv",
    ],
)
def test_paths_outside_the_users_data_space_are_refused(
    user: User, other_user: User, csv_file: Path, path: str
) -> None:
    other_dir = user_data_dir(other_user.pk)
    other_dir.mkdir(parents=True, exist_ok=True)
    (other_dir / "points.csv").write_text(csv_file.read_text())
    with pytest.raises(SpecRejected) as rejected:
        jobs.job_create(owner=user, spec={"dataset": "csv", "dataset_path": path.format(other=other_user.pk)})
    assert fields_of(rejected) == ["dataset_path"]
    assert "data space" in rejected.value.errors[0]["message"]


def test_a_symlink_out_of_the_data_space_is_refused(user: User, csv_file: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.csv"
    outside.write_text(csv_file.read_text())
    link = csv_file.parent / "innocent.csv"
    os.symlink(outside, link)
    with pytest.raises(SpecRejected) as rejected:
        jobs.job_create(owner=user, spec={"dataset": "csv", "dataset_path": "innocent.csv"})
    assert fields_of(rejected) == ["dataset_path"]


def test_a_missing_file_is_named(user: User) -> None:
    with pytest.raises(SpecRejected) as rejected:
        jobs.job_create(owner=user, spec={"dataset": "csv", "dataset_path": "nothing-here.csv"})
    assert "no such file: nothing-here.csv" in rejected.value.errors[0]["message"]
