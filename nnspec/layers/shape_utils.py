"""Pure shape arithmetic shared by convolution and pooling rules (Keras conventions)."""

from __future__ import annotations

from nnspec.layers.base import known


def as_tuple(value, n: int) -> tuple[int, ...]:
    """3 -> (3, 3); [3, 5] -> (3, 5)."""
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,) * n


def conv_output_length(length, kernel: int, stride: int, padding: str, dilation: int = 1):
    """Output length of a convolution or pooling window along one axis.

    ``valid``: only full windows; ``same``: ceil(length / stride), TensorFlow style.
    Returns None for unknown or symbolic lengths, and a value <= 0 when nothing fits.
    """
    if not known(length):
        return None if length is None else (length if stride == 1 and padding == "same" else None)
    effective = (kernel - 1) * dilation + 1
    if padding == "same":
        return (length + stride - 1) // stride
    if padding == "causal":
        return (length + stride - 1) // stride
    return (length - effective) // stride + 1


def deconv_output_length(length, kernel: int, stride: int, padding: str, output_padding=None, dilation: int = 1):
    """Output length of a transposed convolution (Keras's ``deconv_output_length``)."""
    if not known(length):
        return None
    effective = kernel + (kernel - 1) * (dilation - 1)
    if output_padding is None:
        if padding == "valid":
            return length * stride + max(effective - stride, 0)
        return length * stride
    pad = 0 if padding == "valid" else effective // 2
    return (length - 1) * stride + effective - 2 * pad + output_padding


def same_padding(length: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's 'same' padding along one axis: (before, after); the extra pixel goes after."""
    effective = (kernel - 1) * dilation + 1
    out = (length + stride - 1) // stride
    total = max((out - 1) * stride + effective - length, 0)
    return total // 2, total - total // 2


def normalize_padding2d(value) -> tuple[tuple[int, int], tuple[int, int]]:
    """ZeroPadding2D's padding: 1 -> ((1,1),(1,1)); [1,2] -> ((1,1),(2,2))."""
    if isinstance(value, int):
        return (value, value), (value, value)
    if all(isinstance(v, int) for v in value):
        return (value[0], value[0]), (value[1], value[1])
    return tuple(value[0]), tuple(value[1])
