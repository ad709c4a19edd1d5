"""Golden tests: each file in tests/golden/ marks, with `# E: text` comments, the lines where errors
must be reported and a fragment of each message, and with `# W: text` the lines where lint warnings
must be reported. No other error or warning may appear (warnings are checked on error-free files)."""

from __future__ import annotations

import pathlib
import re

import pytest

import nnspec
from nnspec.diagnostics import CODES
from nnspec.lint import WARNINGS

GOLDEN = sorted((pathlib.Path(__file__).parent / "golden").glob("*.yaml"))


def expectations(path: pathlib.Path, marker: str = "E") -> list[tuple[int, str]]:
    out = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        for fragment in re.findall(rf"# {marker}: (.*?)(?=\s+# [EW]:|$)", line):
            out.append((lineno, fragment.strip()))
    return out


def match_all(expected: list[tuple[int, str]], got: list[tuple[int, str]], what: str) -> None:
    unmatched = list(got)
    for line, fragment in expected:
        match = next((g for g in unmatched if g[0] == line and fragment in g[1]), None)
        assert match, f"expected {what} on line {line} containing {fragment!r}; got:\n" + "\n".join(
            f"  {g[0]}: {g[1]}" for g in got
        )
        unmatched.remove(match)
    assert not unmatched, f"unexpected {what}s:\n" + "\n".join(f"  {g[0]}: {g[1]}" for g in unmatched)


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_golden_errors(path):
    errors, warnings = expectations(path, "E"), expectations(path, "W")
    assert errors or warnings, "a golden file must expect at least one error or warning"
    diagnostics = nnspec.check(str(path))
    match_all(errors, [(d.line, d.message) for d in diagnostics], "an error")
    if not diagnostics:
        match_all(warnings, [(d.line, d.message) for d in nnspec.check(str(path), warnings=True)], "a warning")
    else:
        assert not warnings, "warnings are only checked on a file without errors"


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_every_error_is_located_with_path_and_source(path):
    diagnostics = nnspec.check(str(path), warnings=True)
    for d in diagnostics:
        assert d.file == str(path)
        assert d.line >= 1 and d.column >= 1
        assert d.source_line, d
        assert d.path, d
        if d.severity == "warning":
            assert d.code in WARNINGS and d.hint, d
        else:
            assert d.code in CODES, d


def test_every_warning_code_has_a_golden_case():
    text = "\n".join(p.read_text() for p in GOLDEN)
    covered = {d.code for p in GOLDEN if "# W: " in p.read_text() for d in nnspec.check(str(p), warnings=True)}
    assert covered == set(WARNINGS), f"warning codes without a golden case: {sorted(set(WARNINGS) - covered)}"
    assert "# nnspec: ignore[" in text


def test_reference_specs_are_lint_clean():
    specs = sorted((pathlib.Path(__file__).parent.parent / "specs").glob("*.yaml"))
    assert specs
    for spec in specs:
        assert nnspec.check(str(spec), warnings=True) == [], spec
