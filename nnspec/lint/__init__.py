"""The lint: warnings about specs that are valid but probably not what the user meant.

Runs on a checked spec (its analysed graph), never imports a framework, and returns
located :class:`~nnspec.diagnostics.Diagnostic` objects with ``severity == "warning"``.
A warning is silenced on its line with ``# nnspec: ignore[code]`` (or ``# nnspec: ignore``
for every code). A warning inside a block is reported once, at the block's definition.
"""

from __future__ import annotations

import re

from nnspec.diagnostics import Diagnostic
from nnspec.lint.codes import WARNINGS, WarningCode
from nnspec.lint.rules import RULES, Context
from nnspec.pipeline import Spec

_IGNORE = re.compile(r"#\s*nnspec:\s*ignore\b(?:\[([^\]]*)\])?")


def ignored_codes(line: str) -> set[str] | None:
    """Codes a source line silences: a set of codes, {'*'} for all, or None when it silences none."""
    m = _IGNORE.search(line)
    if m is None:
        return None
    if m.group(1) is None:
        return {"*"}
    return {c.strip() for c in m.group(1).split(",") if c.strip()}


def lint(spec: Spec) -> list[Diagnostic]:
    """Every warning for a checked spec, sorted by position, without those silenced by a comment."""
    ctx = Context(spec)
    found: dict[tuple, Diagnostic] = {}
    for rule in RULES:
        for d in rule(ctx):
            found.setdefault((d.file, d.line, d.column, d.code), d)  # once per block definition
    out = []
    for d in found.values():
        silenced = ignored_codes(d.source_line)
        if silenced is None or not ({"*", d.code} & silenced):
            out.append(d)
    return sorted(out)


__all__ = ["WARNINGS", "WarningCode", "ignored_codes", "lint"]
