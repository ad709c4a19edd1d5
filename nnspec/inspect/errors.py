"""The one error ``nnspec inspect`` reports to the user, as a single clear line."""

from __future__ import annotations


class InspectError(Exception):
    """A run cannot be inspected (not a classification run, no conv layer, unknown layer, no weights)."""
