"""Backends: the only code that imports torch, tensorflow, keras or jax.

The registry and the :class:`~nnspec.backends.base.Backend` protocol live in :mod:`.base`. A backend
module provides ``build``, ``get_weights``/``set_weights`` (weights keyed ``"<layer>/<param>"`` in the
catalog's, Keras's, layout: the neutral format that moves models between frameworks), ``trainer``,
``runner``, ``export``, ``layer_counts``, ``select_device``, ``versions`` and ``BUILDERS`` (layer type
name -> builder; a conformance test fails when a catalog type lacks one).
"""

from __future__ import annotations

from nnspec.backends.base import Backend, BackendInfo, available, get_backend, info, infos, names, register

__all__ = ["Backend", "BackendInfo", "available", "get_backend", "info", "infos", "names", "register"]
