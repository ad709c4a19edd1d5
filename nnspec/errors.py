"""The exceptions users see: one root, :class:`UserError`."""

from __future__ import annotations

from nnspec.diagnostics import Diagnostic, format_all


class UserError(Exception):
    """The root of every error a user can fix. The CLI shows it without a traceback and exits 1.

    Subclasses: :class:`SpecError` (located diagnostics), ``DataError`` (a data file or setting),
    ``TrainingError`` (a run cannot start or go on), ``InspectError``, :class:`BackendMissing`.
    A plain ``UserError`` is shown as one line ``error: ...``.
    """


class SpecError(UserError):
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


class BackendMissing(UserError):
    """A backend's framework is not installed."""
