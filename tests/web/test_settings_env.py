"""Settings read the environment strictly: a typo stops the start and names the variable."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from webui.settings import env_bool, env_float, env_int

REPO = Path(__file__).resolve().parents[2]


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


def test_every_variable_settings_read_is_in_the_readme() -> None:
    """The README's configuration table lists each variable webui/settings.py reads."""
    settings_py = (REPO / "webui" / "settings.py").read_text(encoding="utf-8")
    tree = ast.parse(settings_py)
    readers = {"env_bool", "env_int", "env_float", "env_path", "get"}
    read = {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
        and node.args[0].value.isupper()
        and getattr(node.func, "id", getattr(node.func, "attr", None)) in readers
    }
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(read) > 30
    assert sorted(name for name in read if f"`{name}`" not in readme) == []
