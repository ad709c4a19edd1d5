"""One torch module per catalog layer type, channels-last at every boundary, Keras's arithmetic inside.

Every module here takes and returns the spec's channels-last tensors (N, ..., C), so a model can be
cut anywhere and still mean what the spec means. Each module also knows how to move its weights to
and from the catalog's (Keras's) layout: ``keras_weights()`` and ``load_keras_weights()``.

Where torch has a native module with the same arithmetic (Linear, Conv1d/2d, ConvTranspose2d,
Embedding) it is subclassed, so the model is made of ordinary torch layers; where the frameworks
differ (recurrent biases and gate order, BatchNorm's variance update, MultiHeadAttention's layout),
the module implements Keras's variant exactly, with its parameters stored in Keras's layout.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nnspec.layers.shape_utils import as_tuple, deconv_output_length, normalize_padding2d, same_padding


# --- activations, exactly as keras.activations defines them --------------------------------------
def _hard_sigmoid(x):
    return F.relu6(x + 3.0) / 6.0  # keras.ops.hard_sigmoid (TensorFlow): relu6(x + 3) / 6


def _hard_silu(x):
    return x * _hard_sigmoid(x)  # keras.ops.hard_silu: x * hard_sigmoid(x)


ACTIVATIONS = {
    "linear": lambda x: x,
    "relu": F.relu,
    "relu6": lambda x: torch.clamp(x, 0.0, 6.0),
    "leaky_relu": lambda x: F.leaky_relu(x, 0.2),  # keras.activations.leaky_relu: negative_slope=0.2
    "elu": F.elu,
    "selu": F.selu,
    "sigmoid": torch.sigmoid,
    "hard_sigmoid": _hard_sigmoid,
    "hard_silu": _hard_silu,
    "hard_swish": _hard_silu,
    "tanh": torch.tanh,
    "softmax": lambda x: F.softmax(x, dim=-1),
    "log_softmax": lambda x: F.log_softmax(x, dim=-1),
    "softplus": F.softplus,
    "softsign": F.softsign,
    "swish": F.silu,
    "silu": F.silu,
    "gelu": F.gelu,  # exact (erf) form, Keras's default approximate=False
    "exponential": torch.exp,
    "mish": F.mish,
}


def activation(name: str):
    return ACTIVATIONS[name or "linear"]


def _first(x):
    """Channels-last -> channels-first (a view). Explicit, non-negative permutations export to ONNX."""
    return x.permute(0, x.dim() - 1, *range(1, x.dim() - 1))


def _last(x):
    return x.permute(0, *range(2, x.dim()), 1)


def _move(x, source: int, target: int):
    """movedim with non-negative axes (the ONNX exporter mishandles negative ones)."""
    source, target = source % x.dim(), target % x.dim()
    order = [d for d in range(x.dim()) if d != source]
    order.insert(target, source)
    return x.permute(*order)


def _same_pads(lengths, kernel, strides, dilation) -> list[int]:
    """F.pad's argument for TensorFlow 'same' padding (extra pixel after), last axis first."""
    pads: list[int] = []
    for length, k, s, d in reversed(list(zip(lengths, kernel, strides, dilation, strict=True))):
        before, after = same_padding(int(length), k, s, d)
        pads += [before, after]
    return pads


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def _put(param: torch.Tensor, value) -> None:
    with torch.no_grad():
        param.copy_(torch.as_tensor(np.asarray(value), dtype=param.dtype))


class KerasLayer:
    """Mixin: weight moves between this module and the catalog's layout.

    The default moves parameters and buffers whose dotted torch path equals the catalog name with
    ``/`` replaced by ``.`` (modules that store Keras's layout directly); subclasses that wrap a
    native torch layer override both methods.
    """

    frozen: bool = False

    def keras_weights(self) -> dict[str, np.ndarray]:
        module = cast(nn.Module, self)  # every KerasLayer is also an nn.Module
        state: dict[str, torch.Tensor] = dict(module.named_parameters())
        state.update(dict(module.named_buffers()))
        return {k.replace(".", "/"): _np(v) for k, v in state.items()}

    def load_keras_weights(self, weights: dict[str, np.ndarray]) -> None:
        module = cast(nn.Module, self)
        state: dict[str, torch.Tensor] = dict(module.named_parameters())
        state.update(dict(module.named_buffers()))
        for key, value in weights.items():
            _put(state[key.replace("/", ".")], value)


# --- core -----------------------------------------------------------------------------------------
class Dense(KerasLayer, nn.Linear):
    def __init__(self, in_features: int, a: dict):
        super().__init__(in_features, a["units"], bias=a["use_bias"])
        self.act = a["activation"]

    def forward(self, x):
        return activation(self.act)(F.linear(x, self.weight, self.bias))

    def keras_weights(self):
        out = {"kernel": _np(self.weight.T)}
        if self.bias is not None:
            out["bias"] = _np(self.bias)
        return out

    def load_keras_weights(self, w):
        _put(self.weight, np.asarray(w["kernel"]).T)
        if self.bias is not None:
            _put(self.bias, w["bias"])


class Embedding(KerasLayer, nn.Embedding):
    def __init__(self, a: dict):
        super().__init__(a["input_dim"], a["output_dim"])

    def forward(self, x):
        return F.embedding(x.long(), self.weight)

    def keras_weights(self):
        return {"embeddings": _np(self.weight)}

    def load_keras_weights(self, w):
        _put(self.weight, w["embeddings"])


class Lambda(KerasLayer, nn.Module):
    """A parameterless layer: a named function of its inputs."""

    def __init__(self, fn, description: str):
        super().__init__()
        self.fn = fn
        self.description = description

    def forward(self, *xs):
        return self.fn(*xs)

    def extra_repr(self) -> str:
        return self.description


class Flatten(KerasLayer, nn.Module):
    def forward(self, x):
        return x.reshape(x.shape[0], -1)  # channels-last: H, W, C order, as Keras


class Reshape(KerasLayer, nn.Module):
    def __init__(self, target_shape):
        super().__init__()
        self.target_shape = tuple(target_shape)

    def forward(self, x):
        return x.reshape(x.shape[0], *self.target_shape)

    def extra_repr(self):
        return f"target_shape={self.target_shape}"


class Permute(KerasLayer, nn.Module):
    def __init__(self, dims):
        super().__init__()
        self.dims = (0, *dims)

    def forward(self, x):
        return x.permute(*self.dims)

    def extra_repr(self):
        return f"dims={self.dims[1:]}"


class Dropout(KerasLayer, nn.Dropout):
    """Inverted dropout; with ``noise_shape`` one mask value is shared along the axes where it is 1 (Keras)."""

    def __init__(self, rate: float, noise_shape=None):
        super().__init__(rate)
        self.noise_shape = tuple(noise_shape) if noise_shape is not None else None

    def forward(self, x):
        if self.noise_shape is None or not self.training or self.p == 0:
            return super().forward(x)
        shape = [d if n is None else n for n, d in zip(self.noise_shape, x.shape, strict=True)]
        keep = torch.bernoulli(x.new_full(shape, 1.0 - self.p))
        return x * keep / (1.0 - self.p)

    def extra_repr(self):
        return super().extra_repr() + (f", noise_shape={self.noise_shape}" if self.noise_shape else "")


class GaussianNoise(KerasLayer, nn.Module):
    """Adds N(0, stddev^2) noise while training; identity at inference (Keras GaussianNoise)."""

    def __init__(self, stddev: float):
        super().__init__()
        self.stddev = stddev

    def forward(self, x):
        if self.training and self.stddev > 0:
            return x + torch.randn_like(x) * self.stddev
        return x

    def extra_repr(self):
        return f"stddev={self.stddev}"


class SpatialDropout2D(KerasLayer, nn.Dropout2d):
    def forward(self, x):  # drop whole channels of (N, H, W, C)
        return _last(F.dropout2d(_first(x), self.p, self.training))


class UpSampling2D(KerasLayer, nn.Module):
    def __init__(self, a: dict):
        super().__init__()
        self.size = as_tuple(a["size"], 2)
        self.interpolation = a["interpolation"]

    def forward(self, x):
        if self.interpolation == "nearest":
            return x.repeat_interleave(self.size[0], dim=1).repeat_interleave(self.size[1], dim=2)
        y = F.interpolate(_first(x), scale_factor=self.size, mode="bilinear", align_corners=False)
        return _last(y)

    def extra_repr(self):
        return f"size={self.size}, interpolation={self.interpolation}"


class UpSampling1D(KerasLayer, nn.Module):
    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, x):
        return x.repeat_interleave(self.size, dim=1)

    def extra_repr(self):
        return f"size={self.size}"


class Cropping(KerasLayer, nn.Module):
    """Cropping1D / Cropping2D: ``crops`` is one (before, after) pair per spatial axis."""

    def __init__(self, crops):
        super().__init__()
        self.crops = tuple(tuple(c) for c in crops)

    def forward(self, x):
        for axis, (before, after) in enumerate(self.crops, start=1):
            x = x.narrow(axis, before, x.shape[axis] - before - after)
        return x

    def extra_repr(self):
        return f"crops={self.crops}"


class ZeroPadding2D(KerasLayer, nn.Module):
    def __init__(self, padding):
        super().__init__()
        (t, b), (lft, r) = normalize_padding2d(padding)
        self.pads = (0, 0, lft, r, t, b)  # C, W, H of channels-last

    def forward(self, x):
        return F.pad(x, self.pads)

    def extra_repr(self):
        return f"pads(C,W,H)={self.pads}"


# --- convolutions ---------------------------------------------------------------------------------
class _ConvMixin:
    n = 2
    padding_mode_keras = "valid"

    def _window(self, a: dict, n: int) -> None:
        """Kernel, stride, dilation, padding mode and activation from a conv layer's attributes."""
        self.n = n
        self.kernel_size = as_tuple(a["kernel_size"], n)
        self.stride = as_tuple(a["strides"], n)
        self.dilation = as_tuple(a.get("dilation_rate", 1), n)
        self.padding_mode_keras = a["padding"]
        self.act = a["activation"]

    def _pad(self, x):
        """x is channels-first; applies TensorFlow's 'same' padding explicitly."""
        if self.padding_mode_keras != "same":
            return x
        return F.pad(x, _same_pads(x.shape[2:], self.kernel_size, self.stride, self.dilation))


class Conv(_ConvMixin, KerasLayer, nn.Module):
    """Conv1D / Conv2D / Conv3D (groups and dilation as Keras); kernel stored torch-style (out, in/g, *k)."""

    def __init__(self, n: int, cin: int, a: dict):
        super().__init__()
        self._window(a, n)
        conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[n]
        self.groups = a.get("groups", 1)
        self.conv = conv(cin, a["filters"], self.kernel_size, self.stride, 0, self.dilation, self.groups,  # type: ignore[arg-type]
                         a["use_bias"])

    def forward(self, x):
        y = self.conv(self._pad(_first(x)))
        return activation(self.act)(_last(y))

    def keras_weights(self):
        # torch (out, in/g, *k) -> Keras (*k, in/g, out)
        order = (*range(2, self.n + 2), 1, 0)
        out = {"kernel": _np(self.conv.weight.permute(*order))}
        if self.conv.bias is not None:
            out["bias"] = _np(self.conv.bias)
        return out

    def load_keras_weights(self, w):
        order = (self.n + 1, self.n, *range(self.n))
        _put(self.conv.weight, np.transpose(np.asarray(w["kernel"]), order))
        if self.conv.bias is not None:
            _put(self.conv.bias, w["bias"])


class DepthwiseConv2D(_ConvMixin, KerasLayer, nn.Module):
    def __init__(self, cin: int, a: dict):
        super().__init__()
        self._window(a, 2)
        self.cin, self.dm = cin, a["depth_multiplier"]
        self.conv = nn.Conv2d(cin, cin * self.dm, self.kernel_size, self.stride, 0, self.dilation,  # type: ignore[arg-type]
                              cin, a["use_bias"])

    def forward(self, x):
        return activation(self.act)(_last(self.conv(self._pad(_first(x)))))

    def keras_weights(self):
        kh, kw = self.kernel_size
        # torch (cin*dm, 1, kh, kw), channel c*dm+m  ->  Keras (kh, kw, cin, dm)
        k = self.conv.weight[:, 0].permute(1, 2, 0).reshape(kh, kw, self.cin, self.dm)
        out = {"kernel": _np(k)}
        if self.conv.bias is not None:
            out["bias"] = _np(self.conv.bias)
        return out

    def load_keras_weights(self, w):
        kh, kw = self.kernel_size
        k = np.asarray(w["kernel"]).reshape(kh, kw, self.cin * self.dm).transpose(2, 0, 1)[:, None]
        _put(self.conv.weight, k)
        if self.conv.bias is not None:
            _put(self.conv.bias, w["bias"])


class SeparableConv2D(_ConvMixin, KerasLayer, nn.Module):
    """Depthwise conv (no bias) then 1x1 pointwise conv (with bias): Keras's one-bias variant."""

    def __init__(self, cin: int, a: dict):
        super().__init__()
        self._window(a, 2)
        self.cin, self.dm = cin, a["depth_multiplier"]
        mid = cin * self.dm
        self.depthwise = nn.Conv2d(cin, mid, self.kernel_size, self.stride, 0, self.dilation,  # type: ignore[arg-type]
                                   cin, bias=False)
        self.pointwise = nn.Conv2d(mid, a["filters"], 1, bias=a["use_bias"])

    def forward(self, x):
        y = self.pointwise(self.depthwise(self._pad(_first(x))))
        return activation(self.act)(_last(y))

    def keras_weights(self):
        kh, kw = self.kernel_size
        d = self.depthwise.weight[:, 0].permute(1, 2, 0).reshape(kh, kw, self.cin, self.dm)
        out = {"depthwise_kernel": _np(d), "pointwise_kernel": _np(self.pointwise.weight.permute(2, 3, 1, 0))}
        if self.pointwise.bias is not None:
            out["bias"] = _np(self.pointwise.bias)
        return out

    def load_keras_weights(self, w):
        kh, kw = self.kernel_size
        d = np.asarray(w["depthwise_kernel"]).reshape(kh, kw, self.cin * self.dm).transpose(2, 0, 1)[:, None]
        _put(self.depthwise.weight, d)
        _put(self.pointwise.weight, np.transpose(np.asarray(w["pointwise_kernel"]), (3, 2, 0, 1)))
        if self.pointwise.bias is not None:
            _put(self.pointwise.bias, w["bias"])


class Conv2DTranspose(KerasLayer, nn.Module):
    """Transposed conv with Keras's output size and TensorFlow's alignment.

    The full transposed convolution is computed without padding, then cropped (or zero-extended)
    to Keras's output length, starting where TensorFlow's 'same'/'valid' padding puts it; the bias
    is added last so zero-extended rows get the bias, as in TensorFlow.
    """

    def __init__(self, cin: int, a: dict):
        super().__init__()
        self.kernel_size = as_tuple(a["kernel_size"], 2)
        self.stride = as_tuple(a["strides"], 2)
        self.padding_mode_keras = a["padding"]
        op = a.get("output_padding")
        self.output_padding = as_tuple(op, 2) if op is not None else None
        self.act = a["activation"]
        self.deconv = nn.ConvTranspose2d(cin, a["filters"], self.kernel_size, self.stride,  # type: ignore[arg-type]
                                         bias=a["use_bias"])

    def forward(self, x):
        y = F.conv_transpose2d(_first(x), self.deconv.weight, None, self.stride)
        for axis in range(2):
            length, k, s = int(x.shape[1 + axis]), self.kernel_size[axis], self.stride[axis]
            op = self.output_padding[axis] if self.output_padding is not None else None
            out = deconv_output_length(length, k, s, self.padding_mode_keras, op)
            full = (length - 1) * s + k
            before = max((length - 1) * s + k - out, 0) // 2 if self.padding_mode_keras == "same" else 0
            dim = 2 + axis
            y = y.narrow(dim, before, min(out, full - before))
            short = out - (full - before)
            if short > 0:
                pad = [0, 0, 0, 0]
                pad[(1 - axis) * 2 + 1] = short
                y = F.pad(y, pad)
        if self.deconv.bias is not None:
            y = y + self.deconv.bias.view(1, -1, 1, 1)
        return activation(self.act)(_last(y))

    def keras_weights(self):
        # torch (in, out, kh, kw) -> Keras (kh, kw, out, in)
        out = {"kernel": _np(self.deconv.weight.permute(2, 3, 1, 0))}
        if self.deconv.bias is not None:
            out["bias"] = _np(self.deconv.bias)
        return out

    def load_keras_weights(self, w):
        _put(self.deconv.weight, np.transpose(np.asarray(w["kernel"]), (3, 2, 0, 1)))
        if self.deconv.bias is not None:
            _put(self.deconv.bias, w["bias"])


# --- pooling --------------------------------------------------------------------------------------
class Pool(KerasLayer, nn.Module):
    """Max/average pooling with TensorFlow 'same' padding (max ignores padding; average excludes it)."""

    def __init__(self, n: int, kind: str, a: dict):
        super().__init__()
        self.n, self.kind, self.padding = n, kind, a["padding"]
        self.pool = as_tuple(a["pool_size"], n)
        self.stride = as_tuple(a["strides"] if a.get("strides") is not None else a["pool_size"], n)

    def forward(self, x):
        y = _first(x)
        fn = {(1, "max"): F.max_pool1d, (2, "max"): F.max_pool2d, (3, "max"): F.max_pool3d,
              (1, "avg"): F.avg_pool1d, (2, "avg"): F.avg_pool2d, (3, "avg"): F.avg_pool3d}
        pool = fn[(self.n, self.kind)]
        if self.padding == "same":
            pads = _same_pads(y.shape[2:], self.pool, self.stride, (1,) * self.n)
            if self.kind == "max":
                y = pool(F.pad(y, pads, value=float("-inf")), self.pool, self.stride)
            else:
                ones = torch.ones_like(y[:1, :1])
                total = pool(F.pad(y, pads), self.pool, self.stride)
                count = pool(F.pad(ones, pads), self.pool, self.stride)
                y = total / count
        else:
            y = pool(y, self.pool, self.stride)
        return _last(y)

    def extra_repr(self):
        return f"{self.kind}, pool_size={self.pool}, strides={self.stride}, padding={self.padding}"


class GlobalPool(KerasLayer, nn.Module):
    def __init__(self, kind: str, keepdims: bool):
        super().__init__()
        self.kind, self.keepdims = kind, keepdims

    def forward(self, x):
        dims = tuple(range(1, x.dim() - 1))
        if self.kind == "max":
            return torch.amax(x, dim=dims, keepdim=self.keepdims)
        return torch.mean(x, dim=dims, keepdim=self.keepdims)

    def extra_repr(self):
        return f"{self.kind}, keepdims={self.keepdims}"


# --- normalisation --------------------------------------------------------------------------------
class BatchNorm(KerasLayer, nn.Module):
    """Keras's BatchNormalization: biased batch variance in the moving average, momentum as Keras means it.

    Parameters ``gamma``/``beta`` and buffers ``moving_mean``/``moving_variance`` keep Keras's names.
    Training mode (``model.train()``) normalises with batch statistics and updates the moving
    averages; a frozen layer (``trainable: false``) always runs in inference mode, as in Keras.
    """

    def __init__(self, channels: int, a: dict):
        super().__init__()
        self.axis, self.momentum, self.epsilon = a["axis"], a["momentum"], a["epsilon"]
        self.gamma = nn.Parameter(torch.ones(channels)) if a["scale"] else None
        self.beta = nn.Parameter(torch.zeros(channels)) if a["center"] else None
        self.register_buffer("moving_mean", torch.zeros(channels))
        self.register_buffer("moving_variance", torch.ones(channels))
        self.batch_stats: Callable[[torch.Tensor, list[int]], tuple[torch.Tensor, torch.Tensor]] | None = None
        # ^ synchronised BN: data-parallel training sets one computing the global batch's statistics

    def forward(self, x):
        axis = self.axis % x.dim()
        shape = [1] * x.dim()
        shape[axis] = -1
        if self.training and not self.frozen:
            dims = [d for d in range(x.dim()) if d != axis]
            if self.batch_stats is not None:
                mean, var = self.batch_stats(x, dims)
            else:
                mean = x.mean(dim=dims)
                var = x.var(dim=dims, unbiased=False)
            with torch.no_grad():
                m = self.momentum
                self.moving_mean.mul_(m).add_(mean.detach() * (1.0 - m))
                self.moving_variance.mul_(m).add_(var.detach() * (1.0 - m))
        else:
            mean, var = self.moving_mean, self.moving_variance
        inv = torch.rsqrt(var + self.epsilon)
        if self.gamma is not None:
            inv = inv * self.gamma
        offset = -mean * inv
        if self.beta is not None:
            offset = offset + self.beta
        return x * inv.view(shape) + offset.view(shape)

    def extra_repr(self):
        return f"axis={self.axis}, momentum={self.momentum} (Keras meaning), epsilon={self.epsilon}"


class LayerNorm(KerasLayer, nn.Module):
    def __init__(self, channels: int, a: dict):
        super().__init__()
        self.axis, self.epsilon, self.channels = a["axis"], a["epsilon"], channels
        self.gamma = nn.Parameter(torch.ones(channels)) if a["scale"] else None
        self.beta = nn.Parameter(torch.zeros(channels)) if a["center"] else None

    def forward(self, x):
        axis = self.axis % x.dim()
        if axis == x.dim() - 1:
            return F.layer_norm(x, (self.channels,), self.gamma, self.beta, self.epsilon)
        y = _move(x, axis, -1)
        y = F.layer_norm(y, (self.channels,), self.gamma, self.beta, self.epsilon)
        return _move(y, -1, axis)

    def extra_repr(self):
        return f"axis={self.axis}, epsilon={self.epsilon}"


class GroupNorm(KerasLayer, nn.Module):
    """Keras's GroupNormalization: statistics per example and channel group, over every other axis."""

    def __init__(self, channels: int, a: dict):
        super().__init__()
        self.axis, self.epsilon = a["axis"], a["epsilon"]
        self.groups = channels if a["groups"] == -1 else a["groups"]
        self.gamma = nn.Parameter(torch.ones(channels)) if a["scale"] else None
        self.beta = nn.Parameter(torch.zeros(channels)) if a["center"] else None

    def forward(self, x):
        axis = self.axis % x.dim()
        y = _move(x, axis, -1)
        moved = y.shape
        y = y.reshape(*moved[:-1], self.groups, moved[-1] // self.groups)
        dims = [d for d in range(1, y.dim()) if d != y.dim() - 2]
        mean = y.mean(dim=dims, keepdim=True)
        var = y.var(dim=dims, unbiased=False, keepdim=True)
        inv = torch.rsqrt(var + self.epsilon)
        if self.gamma is not None:
            inv = inv * self.gamma.view(self.groups, -1)
        offset = -mean * inv
        if self.beta is not None:
            offset = offset + self.beta.view(self.groups, -1)
        y = (y * inv + offset).reshape(moved)
        return _move(y, -1, axis)

    def extra_repr(self):
        return f"groups={self.groups}, axis={self.axis}, epsilon={self.epsilon}"


class Normalization(KerasLayer, nn.Module):
    """Keras's Normalization: (x - mean) / max(sqrt(variance), 1e-7), or its inverse.

    Without ``mean``/``variance`` it has the buffers ``mean``, ``variance`` (shaped like the kept axes)
    and ``count``, all non-trainable, as Keras stores them; with them (numbers or lists aligned with
    the last kept axes) they are constants, not part of the state dict, as Keras keeps them.
    """

    def __init__(self, input_rank: int, kept: tuple[int, ...], stat_shape: tuple[int, ...], invert: bool,
                 mean=None, variance=None):
        super().__init__()
        self.invert = invert
        self.broadcast = [1] * input_rank
        for d, size in zip(kept, stat_shape, strict=True):
            self.broadcast[d] = size
        if mean is not None and variance is not None:
            for key, value in (("mean", mean), ("variance", variance)):
                constant = torch.as_tensor(value, dtype=torch.float32).expand(stat_shape).clone()
                self.register_buffer(key, constant, persistent=False)
            return
        self.register_buffer("mean", torch.zeros(stat_shape))
        self.register_buffer("variance", torch.ones(stat_shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    def forward(self, x):
        mean, var = self.mean.reshape(self.broadcast), self.variance.reshape(self.broadcast)
        std = torch.clamp(torch.sqrt(var), min=1e-7)  # keras.backend.epsilon()
        return mean + x * std if self.invert else (x - mean) / std

    def extra_repr(self):
        return f"invert={self.invert}"


class PReLU(KerasLayer, nn.Module):
    """Keras's PReLU: relu(x) - alpha * relu(-x), alpha shaped like the input without batch (Keras layout)."""

    def __init__(self, alpha_shape: tuple[int, ...]):
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(alpha_shape))

    def forward(self, x):
        return F.relu(x) - self.alpha * F.relu(-x)


# --- recurrent ------------------------------------------------------------------------------------
class Recurrent(KerasLayer, nn.Module):
    """SimpleRNN, LSTM and GRU (both reset_after variants) exactly as Keras computes them.

    Parameters keep Keras's layout and gate order: ``kernel`` (F, g*u), ``recurrent_kernel``
    (u, g*u) and one ``bias`` (g*u,) - or (2, 3u) for GRU reset_after - with gates i, f, c, o (LSTM)
    and z, r, h (GRU). Input dropout uses one mask for all steps, as Keras's cells do.
    With the standard activations the recurrence runs in torch's fused kernel (cuDNN on GPUs),
    fed these parameters re-laid out (:meth:`_fused_weights`); otherwise step by step.
    """

    def __init__(self, kind: str, features: int, a: dict):
        super().__init__()
        self.kind = kind
        gates = {"simple_rnn": 1, "lstm": 4, "gru": 3}[kind]
        u = self.units = a["units"]
        self.act = a["activation"]
        self.recurrent_act = a.get("recurrent_activation", "sigmoid")
        self.return_sequences, self.go_backwards = a["return_sequences"], a["go_backwards"]
        self.reset_after = a.get("reset_after", True)
        self.dropout = a["dropout"]
        self.kernel = nn.Parameter(torch.empty(features, gates * u))
        self.recurrent_kernel = nn.Parameter(torch.empty(u, gates * u))
        if a["use_bias"]:
            shape = (2, 3 * u) if kind == "gru" and self.reset_after else (gates * u,)
            self.bias = nn.Parameter(torch.zeros(shape))
        else:
            self.bias = None  # type: ignore[assignment]

    def forward(self, x):
        if self.go_backwards:
            x = x.flip(1)
        if self.training and self.dropout > 0:
            mask = torch.bernoulli(torch.full_like(x[:, 0], 1.0 - self.dropout)) / (1.0 - self.dropout)
            x = x * mask.unsqueeze(1)
        if self.fused and x.shape[1] > 0 and not torch.onnx.is_in_onnx_export():
            return self._fused(x)
        return self._stepwise(x)

    @property
    def fused(self) -> bool:
        """Whether torch's fused kernel (cuDNN on GPUs) computes exactly this layer.

        The kernels have fixed activations (tanh, sigmoid gates); Keras's GRU with
        ``reset_after: false`` applies the reset gate before the recurrent matmul, which no fused
        kernel does, so it (and any other activation) runs step by step.
        """
        if self.kind == "simple_rnn":
            return self.act in ("tanh", "relu")
        if self.kind == "gru" and not self.reset_after:
            return False
        return self.act == "tanh" and self.recurrent_act == "sigmoid"

    def _fused_weights(self) -> list[torch.Tensor]:
        """Keras's parameters in the fused kernel's layout (a view or a small copy; gradients flow back).

        LSTM gates are i, f, c, o in both; Keras's GRU gates z, r, h become torch's r, z, n. Keras's
        single bias is the kernel's input bias and its recurrent bias is held at zero (a constant,
        not a parameter); GRU ``reset_after`` has both biases in Keras too.
        """
        kernel: torch.Tensor = self.kernel
        recurrent: torch.Tensor = self.recurrent_kernel
        bias: torch.Tensor | None = None
        rbias: torch.Tensor | None = None
        if self.bias is not None:
            bias, rbias = (self.bias[0], self.bias[1]) if self.kind == "gru" else (self.bias, None)
        if self.kind == "gru":
            u = self.units

            def order(t: torch.Tensor) -> torch.Tensor:  # z, r, h -> r, z, n along the last axis
                return torch.cat([t[..., u:2 * u], t[..., :u], t[..., 2 * u:]], dim=-1)

            kernel, recurrent = order(kernel), order(recurrent)
            if bias is not None and rbias is not None:
                bias, rbias = order(bias), order(rbias)
        weights = [kernel.t(), recurrent.t()]
        if bias is not None:
            weights += [bias, rbias if rbias is not None else torch.zeros_like(bias)]
        return weights

    def _fused(self, x: torch.Tensor) -> torch.Tensor:
        weights = self._fused_weights()
        h0 = x.new_zeros(1, x.shape[0], self.units)
        args = (weights, self.bias is not None, 1, 0.0, self.training, False, True)
        with warnings.catch_warnings():  # Keras-layout weights are not one flat cuDNN buffer: copied per call
            warnings.filterwarnings("ignore", message="RNN module weights are not part")
            if self.kind == "lstm":
                out, h, _ = torch.lstm(x, (h0, h0), *args)
            elif self.kind == "gru":
                out, h = torch.gru(x, h0, *args)
            else:
                fn = torch.rnn_tanh if self.act == "tanh" else torch.rnn_relu
                out, h = fn(x, h0, *args)
        return out if self.return_sequences else h[0]

    def _stepwise(self, x: torch.Tensor) -> torch.Tensor:
        """Keras's recurrence step by step in Python (activations and GRU variants no kernel has)."""
        act, ract = activation(self.act), activation(self.recurrent_act)
        u = self.units
        bias: torch.Tensor | None = self.bias
        rbias: torch.Tensor | None = None
        if self.bias is not None and self.kind == "gru" and self.reset_after:
            bias, rbias = self.bias[0], self.bias[1]
        xs = x @ self.kernel
        if bias is not None:
            xs = xs + bias
        h = x.new_zeros(x.shape[0], u)
        c = x.new_zeros(x.shape[0], u)
        outputs = []
        for t in range(x.shape[1]):
            xt = xs[:, t]
            if self.kind == "simple_rnn":
                h = act(xt + h @ self.recurrent_kernel)
            elif self.kind == "lstm":
                z = xt + h @ self.recurrent_kernel
                i, f, cc, o = z[:, :u], z[:, u : 2 * u], z[:, 2 * u : 3 * u], z[:, 3 * u :]
                c = ract(f) * c + ract(i) * act(cc)
                h = ract(o) * act(c)
            elif self.reset_after:
                rec = h @ self.recurrent_kernel
                if rbias is not None:
                    rec = rec + rbias
                z = ract(xt[:, :u] + rec[:, :u])
                r = ract(xt[:, u : 2 * u] + rec[:, u : 2 * u])
                hh = act(xt[:, 2 * u :] + r * rec[:, 2 * u :])
                h = z * h + (1.0 - z) * hh
            else:
                rk = self.recurrent_kernel
                z = ract(xt[:, :u] + h @ rk[:, :u])
                r = ract(xt[:, u : 2 * u] + h @ rk[:, u : 2 * u])
                hh = act(xt[:, 2 * u :] + (r * h) @ rk[:, 2 * u :])
                h = z * h + (1.0 - z) * hh
            if self.return_sequences:
                outputs.append(h)
        return torch.stack(outputs, dim=1) if self.return_sequences else h

    def extra_repr(self):
        extra = f", reset_after={self.reset_after}" if self.kind == "gru" else ""
        return f"{self.kind}, units={self.units}, return_sequences={self.return_sequences}{extra}"


class Bidirectional(KerasLayer, nn.Module):
    """Keras's Bidirectional: a forward and a go_backwards copy of one recurrent layer, merged.

    The copies live at ``forward_<type>.<type>_cell`` and ``backward_<type>.<type>_cell``, so the
    parameter paths are Keras's weight paths (``forward_lstm/lstm_cell/kernel``). With
    return_sequences the backward output is flipped back to forward time order before merging.
    """

    def __init__(self, features: int, a: dict):
        super().__init__()
        kind = a["layer"]
        self.kind, self.merge_mode, self.return_sequences = kind, a["merge_mode"], a["return_sequences"]
        for direction, backwards in (("forward", False), ("backward", True)):
            cell = Recurrent(kind, features, {**a, "go_backwards": backwards})
            self.add_module(f"{direction}_{kind}", nn.ModuleDict({f"{kind}_cell": cell}))

    def _cell(self, direction: str) -> Recurrent:
        return getattr(self, f"{direction}_{self.kind}")[f"{self.kind}_cell"]

    def forward(self, x):
        y, y_rev = self._cell("forward")(x), self._cell("backward")(x)
        if self.return_sequences:
            y_rev = y_rev.flip(1)
        if self.merge_mode == "concat":
            return torch.cat([y, y_rev], dim=-1)
        if self.merge_mode == "sum":
            return y + y_rev
        if self.merge_mode == "ave":
            return (y + y_rev) / 2
        return y * y_rev

    def extra_repr(self):
        return f"merge_mode={self.merge_mode}"


# --- attention ------------------------------------------------------------------------------------
class _Projection(KerasLayer, nn.Module):
    """One of MultiHeadAttention's einsum projections, Keras layout: kernel (in, heads, dim)."""

    def __init__(self, kernel_shape, bias_shape):
        super().__init__()
        self.kernel = nn.Parameter(torch.empty(kernel_shape))
        self.bias = nn.Parameter(torch.zeros(bias_shape)) if bias_shape is not None else None


class MultiHeadAttention(KerasLayer, nn.Module):
    """Keras's MultiHeadAttention: query/key/value/attention_output projections in Keras's layout."""

    def __init__(self, dq: int, dv: int, dk: int, a: dict):
        super().__init__()
        h, kd = a["num_heads"], a["key_dim"]
        vd = a.get("value_dim") or kd
        b = a["use_bias"]
        self.key_dim, self.dropout = kd, a["dropout"]
        self.query = _Projection((dq, h, kd), (h, kd) if b else None)
        self.key = _Projection((dk, h, kd), (h, kd) if b else None)
        self.value = _Projection((dv, h, vd), (h, vd) if b else None)
        self.attention_output = _Projection((h, vd, dq), (dq,) if b else None)

    @staticmethod
    def _project(p: _Projection, x, equation: str):
        y = torch.einsum(equation, x, p.kernel)
        return y + p.bias if p.bias is not None else y

    def forward(self, query, value=None, key=None):
        value = query if value is None else value
        key = value if key is None else key
        q = self._project(self.query, query, "btd,dhk->bthk") * (1.0 / math.sqrt(self.key_dim))
        k = self._project(self.key, key, "bsd,dhk->bshk")
        v = self._project(self.value, value, "bsd,dhk->bshk")
        scores = torch.einsum("bshk,bthk->bhts", k, q)
        weights = F.softmax(scores, dim=-1)
        weights = F.dropout(weights, self.dropout, self.training)
        context = torch.einsum("bhts,bshk->bthk", weights, v)
        return self._project(self.attention_output, context, "bthk,hkd->btd")
