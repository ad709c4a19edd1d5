"""nnspec: declarative neural networks. Describe a network in YAML; check, summarise,
render, build and train it on PyTorch or Keras.

Importing nnspec is light: no framework is imported until a backend is used.
"""

from nnspec.errors import SpecError

__version__ = "0.1.0"

__all__ = ["SpecError", "build", "check", "inspect", "load", "render", "summarize", "train", "__version__"]


def __getattr__(name):
    if name in ("load", "check", "summarize", "render", "build", "train", "inspect"):
        from nnspec import api

        return getattr(api, name)
    if name in ("save_weights", "load_weights"):
        from nnspec.backends import weights

        return getattr(weights, name)
    raise AttributeError(f"module 'nnspec' has no attribute {name!r}")
