"""Keras layers that compute the same thing on every framework Keras runs on.

nnspec's layer semantics are Keras-on-TensorFlow's. Where Keras on another framework computes
something else for the same configuration, the builders use the replacement here instead; each is
written in ``keras.ops`` and registered for ``.keras`` files under the package name ``nnspec``.
"""

from __future__ import annotations

import math
from typing import Any

import keras

ops = keras.ops


def same_pads(length: int, window: int, stride: int) -> tuple[int, int]:
    """TensorFlow's ``same`` padding of one axis: (before, after), the odd pixel after."""
    total = max((math.ceil(length / stride) - 1) * stride + window - length, 0)
    return total // 2, total - total // 2


class _ExcludePaddingAverage:
    """``same`` average pooling that leaves the padding out of each mean, as TensorFlow does.

    Keras on PyTorch pads an unevenly split window by repeating the edge values, which then count in
    the mean. Here the window sum over zero padding is divided by the number of real values in it.
    """

    pool_size: tuple[int, ...]
    strides: tuple[int, ...]
    padding: str

    def call(self, inputs: Any) -> Any:
        spatial = tuple(inputs.shape[1:-1])
        pads = [same_pads(n, k, s) for n, k, s in zip(spatial, self.pool_size, self.strides, strict=True)]
        if self.padding != "same" or all(before == after for before, after in pads):
            return super().call(inputs)  # type: ignore[misc]
        pads = [(0, 0), *pads, (0, 0)]
        window_sums = ops.average_pool(ops.pad(inputs, pads), self.pool_size, self.strides, "valid",
                                       data_format="channels_last")
        real = ops.pad(ops.ones((1, *spatial, 1), dtype=inputs.dtype), pads)
        real_share = ops.average_pool(real, self.pool_size, self.strides, "valid", data_format="channels_last")
        return window_sums / real_share


@keras.saving.register_keras_serializable(package="nnspec")
class AveragePooling1D(_ExcludePaddingAverage, keras.layers.AveragePooling1D):
    """``keras.layers.AveragePooling1D`` with TensorFlow's ``same`` padding on every framework."""


@keras.saving.register_keras_serializable(package="nnspec")
class AveragePooling2D(_ExcludePaddingAverage, keras.layers.AveragePooling2D):
    """``keras.layers.AveragePooling2D`` with TensorFlow's ``same`` padding on every framework."""


@keras.saving.register_keras_serializable(package="nnspec")
class AveragePooling3D(_ExcludePaddingAverage, keras.layers.AveragePooling3D):
    """``keras.layers.AveragePooling3D`` with TensorFlow's ``same`` padding on every framework."""


def average_pooling(rank: int) -> type:
    """The average pooling layer class of ``rank`` that matches TensorFlow on the framework in use."""
    if keras.backend.backend() == "torch":
        return {1: AveragePooling1D, 2: AveragePooling2D, 3: AveragePooling3D}[rank]
    return {1: keras.layers.AveragePooling1D, 2: keras.layers.AveragePooling2D, 3: keras.layers.AveragePooling3D}[rank]


def attention_needs_explicit_scores(key_dim: int, value_dim: int | None) -> bool:
    """JAX's fused ``dot_product_attention`` (which Keras uses) needs value and key heads of one size;
    with different sizes the layer must compute its attention scores explicitly."""
    return keras.backend.backend() == "jax" and value_dim is not None and value_dim != key_dim
