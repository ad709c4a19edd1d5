"""The data package's error: a :class:`nnspec.SpecError` with one located diagnostic.

The CLI already turns a ``SpecError`` into ``file: error: message [data]`` plus a hint line,
so a data problem never shows a traceback.
"""

from __future__ import annotations

import os

from nnspec.diagnostics import Diagnostic
from nnspec.errors import SpecError

CODE = "data"


class DataError(SpecError):
    """A data file or data setting is unusable. ``str(err)`` is a one-line message plus a hint."""

    def __init__(
        self, message: str, *, file: str | os.PathLike = "", hint: str = "", diagnostic: Diagnostic | None = None
    ):
        if diagnostic is None:
            diagnostic = Diagnostic(file=str(file), code=CODE, message=message, hint=hint)
        self.message = diagnostic.message
        self.hint = diagnostic.hint
        self.file = diagnostic.file
        super().__init__([diagnostic])


def spec_error(spec, path: tuple, message: str, hint: str = "") -> DataError:
    """A DataError pointing at a place in the spec file (``path`` like ("data", "rotate", "head"))."""
    source = getattr(spec, "source", None)
    if source is not None and getattr(source, "text", None):
        return DataError(message, diagnostic=source.diagnostic(path, message, CODE, hint=hint))
    return DataError(message, file=getattr(spec, "path", "") or "", hint=hint)
