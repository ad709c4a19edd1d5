"""The one error ``nnspec inspect`` reports to the user, as a single clear line."""

from __future__ import annotations

from nnspec.errors import UserError


class InspectError(UserError):
    """A run cannot be inspected (not a classification run, no conv layer, unknown layer, no weights)."""
