"""Golden error tests: each file in tests/golden/ marks, with `# E: text` comments, the lines
where errors must be reported and a fragment of each message. No other error may appear."""

from __future__ import annotations

import pathlib
import re

import pytest

import nnspec

GOLDEN = sorted((pathlib.Path(__file__).parent / "golden").glob("*.yaml"))


def expectations(path: pathlib.Path) -> list[tuple[int, str]]:
    out = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        for fragment in re.findall(r"# E: (.*?)(?=\s+# E:|$)", line):
            out.append((lineno, fragment.strip()))
    return out


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_golden_errors(path):
    expected = expectations(path)
    assert expected, "a golden file must expect at least one error"
    diagnostics = nnspec.check(str(path))
    got = [(d.line, d.message) for d in diagnostics]
    unmatched = list(got)
    for line, fragment in expected:
        match = next((g for g in unmatched if g[0] == line and fragment in g[1]), None)
        assert match, f"expected an error on line {line} containing {fragment!r}; got:\n" + "\n".join(
            f"  {g[0]}: {g[1]}" for g in got
        )
        unmatched.remove(match)
    assert not unmatched, "unexpected errors:\n" + "\n".join(f"  {g[0]}: {g[1]}" for g in unmatched)


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_every_error_is_located_with_path_and_source(path):
    for d in nnspec.check(str(path)):
        assert d.file == str(path)
        assert d.line >= 1 and d.column >= 1
        assert d.source_line, d
        assert d.code in nnspec.diagnostics.CODES if hasattr(nnspec, "diagnostics") else True
