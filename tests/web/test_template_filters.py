"""How numbers and spec values read on the pages."""

from __future__ import annotations

import pytest

from webui.templatetags.flotilla import figure, percent, setting


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "default"),
        (True, "true"),
        (0.08722048322773761, "0.08722"),
        (1e-05, "1e-05"),
        (3, "3"),
        ([64, 128], "[64, 128]"),
        ("fedavgm", "fedavgm"),
    ],
)
def test_spec_values_in_diffs(value: object, shown: str) -> None:
    assert setting(value) == shown


def test_metrics() -> None:
    assert figure(None) == "—" and figure(0.123456) == "0.1235" and figure(0.123456, 3) == "0.123"
    assert percent(0.8951) == "89.5%" and percent(None) == "—"
