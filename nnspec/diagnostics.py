"""Diagnostics: what went wrong, where, and how to fix it.

Every problem nnspec reports is a :class:`Diagnostic`. Codes live in one registry
(:data:`CODES`) so tests and messages cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# code -> one-line description (the registry; `nnspec check --codes` could list it)
CODES: dict[str, str] = {
    "yaml": "the file is not valid YAML",
    "input": "the file cannot be read (missing, binary, not UTF-8, too large)",
    "limit": "the file exceeds a safety limit (size, nesting, aliases)",
    "duplicate-key": "a mapping has the same key twice",
    "unknown-key": "a key that this place does not accept",
    "missing": "a required key is missing",
    "type": "a value of the wrong type",
    "value": "a value outside its allowed range or set",
    "unknown-layer": "a layer type that the catalog does not have",
    "reference": "a reference to an unknown, later or cyclic layer or block",
    "expression": "a computed attribute that cannot be evaluated",
    "shape": "layers whose shapes do not fit together",
    "size": "a model too large to be sensible",
    "backend": "a combination a backend cannot build identically",
    "data": "data files or data settings that cannot be used",
    "training": "a training run that cannot start or continue",
}


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem, located in the user's file."""

    file: str = ""
    line: int = 0
    column: int = 0
    path: str = ""  # spec path, e.g. encoder[2].filters
    code: str = "value"
    message: str = ""
    hint: str = ""
    severity: str = "error"
    source_line: str = field(default="", compare=False)

    def location(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.column}"
        return self.file or "<spec>"

    def format(self, show_source: bool = True) -> str:
        where = f" {self.path}:" if self.path and self.path not in self.message else ""
        text = f"{self.location()}: {self.severity}:{where} {self.message} [{self.code}]"
        lines = [text]
        if show_source and self.source_line:
            src, caret = _window(self.source_line.rstrip("\n").expandtabs(1), max(self.column - 1, 0))
            lines.append(f"    {src}")
            lines.append("    " + " " * caret + "^")
        if self.hint:
            lines.append(f"    hint: {self.hint}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "hint": self.hint,
        }


SOURCE_WIDTH = 100  # characters of a source line shown under a message


def _window(src: str, caret: int) -> tuple[str, int]:
    """At most SOURCE_WIDTH characters of ``src`` around ``caret`` (a 60 KB line must not flood the terminal)."""
    if len(src) <= SOURCE_WIDTH:
        return src, caret
    start = max(0, min(caret - SOURCE_WIDTH // 2, len(src) - SOURCE_WIDTH))
    shown = src[start:start + SOURCE_WIDTH]
    prefix = "..." if start else ""
    suffix = "..." if start + SOURCE_WIDTH < len(src) else ""
    return prefix + shown + suffix, len(prefix) + caret - start


def format_all(diagnostics: list[Diagnostic], show_source: bool = True) -> str:
    return "\n".join(d.format(show_source) for d in sorted(diagnostics))


def did_you_mean(word: str, choices) -> str:
    """A hint naming the closest choice, or '' when none is close.

    Spelling variants match first: case, `_`/`-`/spaces and Keras class names
    (`CategoricalCrossentropy`, `categorical-cross-entropy` -> `categorical_crossentropy`).
    """
    import difflib

    names = sorted(map(str, choices))

    def squash(text: str) -> str:
        return "".join(ch for ch in text.lower() if ch.isalnum())

    same = [c for c in names if squash(c) == squash(str(word))]
    if same:
        return f"did you mean `{same[0]}`?"
    close = difflib.get_close_matches(str(word), names, n=1, cutoff=0.6)
    if not close:
        by_squash = {squash(c): c for c in names}
        close = [by_squash[m] for m in difflib.get_close_matches(squash(str(word)), list(by_squash), n=1, cutoff=0.75)]
    return f"did you mean `{close[0]}`?" if close else ""
