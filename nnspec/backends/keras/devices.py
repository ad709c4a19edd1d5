"""GPUs and device placement for Keras, asked of the framework Keras runs on.

Each Keras backend lists its accelerators its own way (``tf.config``, ``jax.devices``,
``torch.cuda``); the TensorFlow call is the only ``tf.*`` here, on the TensorFlow-only path.
Placement itself goes through ``keras.device``, which every Keras backend implements.
"""

from __future__ import annotations

import contextlib
from typing import Any

import keras


def keras_backend() -> str:
    """The framework the imported Keras runs on: ``tensorflow``, ``jax`` or ``torch``."""
    return str(keras.backend.backend())


def gpu_count() -> int:
    """How many GPUs the framework under Keras can use (0 on a CPU-only build)."""
    backend = keras_backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return len(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        try:
            return len(jax.devices("gpu"))
        except RuntimeError:  # jax raises when no GPU platform is installed
            return 0
    if backend == "torch":
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    return 0


class device_scope:  # noqa: N801  (used like a function: ``with device_scope("cpu"):``)
    """Place what runs inside on the CPU when ``device`` is ``cpu`` and a GPU is there; else as Keras
    places it. Reusable: the training loop enters the same scope for building, fitting and predicting."""

    def __init__(self, device: str):
        self.device = device
        self._entered: list[Any] = []

    def __enter__(self) -> None:
        if self.device == "cpu" and gpu_count():
            inner: Any = keras.device("cpu:0")
        elif self.device.startswith("cuda:") and gpu_count():
            inner = keras.device(f"gpu:{int(self.device[5:])}")  # one GPU of several: --device cuda:1
        else:
            inner = contextlib.nullcontext()
        inner.__enter__()
        self._entered.append(inner)

    def __exit__(self, *exc: object) -> None:
        self._entered.pop().__exit__(*exc)
