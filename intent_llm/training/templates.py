"""The small template language of phrasings.py: "(a|b)", "[x]", "(x)?", "{slot}", "\\(".

`compile_template` parses once; `Template.render` returns segments: literal text, and
slots (with an optional form hint after a colon) for the generator to fill.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class Slot:
    name: str
    hint: str = ""


Segment = str | Slot
Node = tuple  # ("seq", [nodes]) | ("alt", [seqs]) | ("opt", seq) | ("text", str) | ("slot", Slot)


class TemplateError(ValueError):
    pass


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.pos = 0

    def parse(self) -> Node:
        node = self._alternatives(closing="")
        if self.pos != len(self.source):
            raise TemplateError(f"unbalanced template: {self.source!r}")
        return node

    def _alternatives(self, closing: str) -> Node:
        options = [self._sequence(closing)]
        while self.pos < len(self.source) and self.source[self.pos] == "|":
            self.pos += 1
            options.append(self._sequence(closing))
        return options[0] if len(options) == 1 else ("alt", options)

    def _sequence(self, closing: str) -> Node:
        items: list[Node] = []
        text = ""
        while self.pos < len(self.source):
            char = self.source[self.pos]
            if char == "\\" and self.pos + 1 < len(self.source):
                text += self.source[self.pos + 1]
                self.pos += 2
                continue
            if char == "|" or (closing and char == closing):
                break
            if char in ")]" and not closing:
                raise TemplateError(f"unexpected {char!r} in {self.source!r}")
            if char in ")]":
                break
            if char in "([{":
                if text:
                    items.append(("text", text))
                    text = ""
                items.append(self._group(char))
                continue
            text += char
            self.pos += 1
        if text:
            items.append(("text", text))
        return ("seq", items)

    def _group(self, opening: str) -> Node:
        self.pos += 1
        if opening == "{":
            end = self.source.index("}", self.pos)
            name, _, hint = self.source[self.pos : end].partition(":")
            self.pos = end + 1
            return ("slot", Slot(name, hint))
        closing = ")" if opening == "(" else "]"
        inner = self._alternatives(closing)
        if self.pos >= len(self.source) or self.source[self.pos] != closing:
            raise TemplateError(f"missing {closing!r} in {self.source!r}")
        self.pos += 1
        optional = opening == "["
        if opening == "(" and self.pos < len(self.source) and self.source[self.pos] == "?":
            optional = True
            self.pos += 1
        return ("opt", inner) if optional else inner


@dataclass(frozen=True)
class Template:
    source: str
    root: Node

    def render(self, rng: random.Random) -> list[Segment]:
        out: list[Segment] = []
        _render(self.root, rng, out)
        merged: list[Segment] = []
        for segment in out:
            if isinstance(segment, str) and merged and isinstance(merged[-1], str):
                merged[-1] += segment
            else:
                merged.append(segment)
        return merged

    def words(self) -> set[str]:
        """Every literal word any rendering can contain (for the spelling vocabulary)."""
        found: set[str] = set()
        _collect(self.root, found)
        return found

    def slots(self) -> list[Slot]:
        found: list[Slot] = []
        _collect_slots(self.root, found)
        return found


def _render(node: Node, rng: random.Random, out: list[Segment]) -> None:
    kind = node[0]
    if kind == "text" or kind == "slot":
        out.append(node[1])
    elif kind == "seq":
        for child in node[1]:
            _render(child, rng, out)
    elif kind == "alt":
        _render(rng.choice(node[1]), rng, out)
    elif kind == "opt" and rng.random() < 0.5:
        _render(node[1], rng, out)


def _collect(node: Node, found: set[str]) -> None:
    kind = node[0]
    if kind == "text":
        found.update(node[1].split())
    elif kind in ("seq", "alt"):
        for child in node[1]:
            _collect(child, found)
    elif kind == "opt":
        _collect(node[1], found)


def _collect_slots(node: Node, found: list[Slot]) -> None:
    kind = node[0]
    if kind == "slot":
        found.append(node[1])
    elif kind in ("seq", "alt"):
        for child in node[1]:
            _collect_slots(child, found)
    elif kind == "opt":
        _collect_slots(node[1], found)


@cache
def compile_template(source: str) -> Template:
    return Template(source, _Parser(source).parse())
