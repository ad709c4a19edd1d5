"""Backends: the only code that imports torch, tensorflow or keras.

A backend is a module ``nnspec.backends.<name>`` (a package) loaded lazily by name. It provides:

- ``build(spec, seed=None) -> model``: a plain ``torch.nn.Module`` / ``keras.Model`` for the spec.
- ``get_weights(model, spec) -> dict[str, numpy.ndarray]`` and ``set_weights(model, spec, weights)``:
  weights keyed ``"<layer name>/<param name>"`` in the catalog's (Keras's) layout and names,
  exactly the parameters that ``LayerType.param_shapes`` lists. This is the backend-neutral
  format that moves models between frameworks.
- ``BUILDERS``: layer type name -> builder; a conformance test fails when a catalog type lacks one.
"""

from __future__ import annotations

import importlib
import importlib.util

from nnspec.errors import BackendMissing

BACKENDS = {
    "torch": ("nnspec.backends.torch", "torch", "pip install 'nnspec[torch]'  (CPU: pip install torch==2.13.0)"),
    "keras": ("nnspec.backends.keras", "keras", "pip install 'nnspec[keras]'  (tensorflow-cpu and keras 3)"),
}


def available() -> list[str]:
    return [name for name, (_, dep, _) in BACKENDS.items() if importlib.util.find_spec(dep) is not None]


def get_backend(name: str):
    """Import a backend by name; a missing framework gives one clear line with the install command."""
    if name not in BACKENDS:
        raise BackendMissing(f"unknown backend `{name}`; choose one of: {', '.join(BACKENDS)}")
    module, dependency, install = BACKENDS[name]
    if importlib.util.find_spec(dependency) is None:
        raise BackendMissing(f"the {name} backend needs {dependency}, which is not installed: {install}")
    return importlib.import_module(module)
