"""Settings read the environment strictly: a typo stops the start and names the variable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from webui.settings import env_bool, env_float, env_int


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("Yes", True), (" on ", True), ("0", False), ("off", False), ("", False)],
)
def test_booleans_read_their_words(monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool) -> None:
    monkeypatch.setenv("FLOTILLA_EXAMPLE", raw)
    assert env_bool("FLOTILLA_EXAMPLE", not expected) is expected


def test_an_unset_variable_takes_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOTILLA_EXAMPLE", raising=False)
    assert env_bool("FLOTILLA_EXAMPLE", True) is True
    assert env_int("FLOTILLA_EXAMPLE", 7) == 7
    assert env_float("FLOTILLA_EXAMPLE", 0.5) == 0.5


@pytest.mark.parametrize(
    ("reader", "raw"), [(env_bool, "treu"), (env_int, "ten"), (env_int, "2.5"), (env_float, "half")]
)
def test_a_typo_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, reader: Callable[[str, Any], object], raw: str
) -> None:
    monkeypatch.setenv("FLOTILLA_EXAMPLE", raw)
    with pytest.raises(ImproperlyConfigured, match=f"FLOTILLA_EXAMPLE='{raw}'"):
        reader("FLOTILLA_EXAMPLE", 0)
