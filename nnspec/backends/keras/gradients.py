"""The gradient of a scalar Keras computation, on whichever framework Keras runs on.

Keras 3 has no backend-neutral gradient, so this is the one place that picks the framework's own:
``tf.GradientTape`` on TensorFlow, ``jax.grad`` on JAX, ``torch.autograd.grad`` on PyTorch.
Everything else (Grad-CAM, saliency) is written in ``keras.ops`` on top of :func:`gradient`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras


def gradient(fn: Callable[[Any], Any], at: Any) -> Any:
    """``d fn(x) / d x`` at ``x = at``, a backend tensor shaped like ``at``; ``fn`` returns a scalar.

    ``fn`` must be written in ``keras.ops`` / Keras layers, so that the framework below can trace it.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(at)
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = fn(x)
        return tape.gradient(value, x)
    if backend == "jax":
        import jax

        return jax.grad(fn)(keras.ops.convert_to_tensor(at))
    if backend == "torch":
        import torch

        x = keras.ops.convert_to_tensor(at).detach().requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(fn(x), x)
        return grad
    raise NotImplementedError(f"nnspec computes Keras gradients on tensorflow, jax and torch, not on {backend!r}")
