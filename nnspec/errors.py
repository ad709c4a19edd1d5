"""The one exception users see."""

from __future__ import annotations

from nnspec.diagnostics import Diagnostic, format_all


class SpecError(Exception):
    """A spec could not be loaded, checked or built; ``.diagnostics`` says why."""

    def __init__(self, diagnostics: list[Diagnostic] | Diagnostic | str):
        if isinstance(diagnostics, str):
            diagnostics = [Diagnostic(message=diagnostics)]
        elif isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics: list[Diagnostic] = sorted(diagnostics)
        super().__init__(format_all(self.diagnostics))


class ShapeProblem(Exception):
    """Raised by a layer's rules; analysis turns it into a located Diagnostic.

    ``attr`` names the attribute at fault (so the caret points at it), when there is one.
    """

    def __init__(self, message: str, hint: str = "", attr: str | None = None, code: str = "shape"):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.attr = attr
        self.code = code


class UserError(Exception):
    """A problem the user can fix, shown by the CLI as one line `error: ...` with exit code 1.

    Training, inspection, diagram and backend errors derive from it, so the CLI handles them in one place.
    """


class BackendMissing(UserError):
    """A backend's framework is not installed."""
