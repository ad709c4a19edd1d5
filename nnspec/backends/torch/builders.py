"""Catalog layer type -> torch module builder (``BUILDERS``).

A builder receives the node and the channels-last shapes of its inputs (from nnspec's analysis)
and returns a module from :mod:`nnspec.backends.torch.layers`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nnspec.backends.torch import layers as L
from nnspec.layers.shape_utils import as_tuple, normalize_padding2d


def _keras_relu(x, negative_slope: float, max_value, threshold: float):
    """keras.activations.relu(x, negative_slope, max_value, threshold), step for step."""
    if negative_slope != 0.0 and max_value is None and threshold == 0:
        return F.leaky_relu(x, negative_slope)
    negative_part = F.relu(-x + threshold) if negative_slope != 0.0 else None
    if threshold != 0:
        x = x * (x > threshold).to(x.dtype)
    else:
        x = F.relu(x)
    if max_value is not None:
        x = torch.clamp(x, 0.0, float(max_value))
    if negative_part is not None:
        x = x - negative_slope * negative_part
    return x


def _relu(node, shapes):
    a = node.attrs
    slope, cap, threshold = a.get("negative_slope", 0.0), a.get("max_value"), a.get("threshold", 0.0)
    return L.Lambda(lambda x: _keras_relu(x, slope, cap, threshold),
                    f"relu(negative_slope={slope}, max_value={cap}, threshold={threshold})")


def _activation_layer(function: str):
    def build(node, shapes):
        name = node.attrs.get("activation", function) if function == "activation" else function
        return L.Lambda(L.activation(name), name)

    return build


def _softmax(node, shapes):
    axis = node.attrs["axis"]
    return L.Lambda(lambda x: F.softmax(x, dim=axis), f"softmax(axis={axis})")


def _leaky(node, shapes):
    slope = node.attrs["negative_slope"]
    return L.Lambda(lambda x: F.leaky_relu(x, slope), f"leaky_relu(negative_slope={slope})")


def _elu(node, shapes):
    alpha = node.attrs["alpha"]
    return L.Lambda(lambda x: F.elu(x, alpha), f"elu(alpha={alpha})")


def _aligned(xs):
    """Keras's merge alignment: a lower-rank input gets size-1 axes inserted right after the batch axis."""
    rank = max(x.dim() for x in xs)
    return [x if x.dim() == rank else x.reshape(x.shape[0], *([1] * (rank - x.dim())), *x.shape[1:]) for x in xs]


def _fold(op):
    """An element-wise merge of any number of inputs, broadcasting as Keras does."""

    def merge(*xs):
        xs = _aligned(xs)
        out = xs[0]
        for x in xs[1:]:
            out = op(out, x)
        return out

    return merge


_add = _fold(torch.add)


def _average(*xs):
    return _add(*xs) / len(xs)


def _concatenate(node, shapes):
    axis = node.attrs["axis"]
    return L.Lambda(lambda *xs: torch.cat(xs, dim=axis), f"concatenate(axis={axis})")


def _rescaling(node, shapes):
    scale, offset = node.attrs["scale"], node.attrs["offset"]
    return L.Lambda(lambda x: x * scale + offset, f"rescaling(scale={scale}, offset={offset})")


def _normalization(node, shapes):
    x = shapes[0]
    axis = node.attrs.get("axis")
    axes = () if axis is None else (axis,) if isinstance(axis, int) else tuple(axis)
    kept = tuple(sorted({a % len(x) for a in axes}))
    return L.Normalization(len(x), kept, tuple(int(x[d]) for d in kept), node.attrs["invert"],
                           node.attrs.get("mean"), node.attrs.get("variance"))


def _prelu(node, shapes):
    x, shared = shapes[0], set(node.attrs.get("shared_axes") or ())
    return L.PReLU(tuple(1 if i in shared else int(d) for i, d in enumerate(x) if i > 0))


def _channels(shape, axis: int) -> int:
    return int(shape[axis])


BUILDERS = {
    "dense": lambda node, s: L.Dense(int(s[0][-1]), node.attrs),
    "embedding": lambda node, s: L.Embedding(node.attrs),
    "flatten": lambda node, s: L.Flatten(),
    "reshape": lambda node, s: L.Reshape(node.attrs["target_shape"]),
    "permute": lambda node, s: L.Permute(node.attrs["dims"]),
    "dropout": lambda node, s: L.Dropout(node.attrs["rate"], node.attrs.get("noise_shape")),
    "gaussian_noise": lambda node, s: L.GaussianNoise(node.attrs["stddev"]),
    "rescaling": _rescaling,
    "normalization": _normalization,
    "upsampling1d": lambda node, s: L.UpSampling1D(node.attrs["size"]),
    "cropping1d": lambda node, s: L.Cropping([as_tuple(node.attrs["cropping"], 2)]),
    "cropping2d": lambda node, s: L.Cropping(normalize_padding2d(node.attrs["cropping"])),
    "spatial_dropout2d": lambda node, s: L.SpatialDropout2D(node.attrs["rate"]),
    "upsampling2d": lambda node, s: L.UpSampling2D(node.attrs),
    "zero_padding2d": lambda node, s: L.ZeroPadding2D(node.attrs["padding"]),
    "conv1d": lambda node, s: L.Conv(1, int(s[0][-1]), node.attrs),
    "conv2d": lambda node, s: L.Conv(2, int(s[0][-1]), node.attrs),
    "conv3d": lambda node, s: L.Conv(3, int(s[0][-1]), node.attrs),
    "conv2d_transpose": lambda node, s: L.Conv2DTranspose(int(s[0][-1]), node.attrs),
    "depthwise_conv2d": lambda node, s: L.DepthwiseConv2D(int(s[0][-1]), node.attrs),
    "separable_conv2d": lambda node, s: L.SeparableConv2D(int(s[0][-1]), node.attrs),
    "max_pool1d": lambda node, s: L.Pool(1, "max", node.attrs),
    "avg_pool1d": lambda node, s: L.Pool(1, "avg", node.attrs),
    "max_pool2d": lambda node, s: L.Pool(2, "max", node.attrs),
    "avg_pool2d": lambda node, s: L.Pool(2, "avg", node.attrs),
    "max_pool3d": lambda node, s: L.Pool(3, "max", node.attrs),
    "avg_pool3d": lambda node, s: L.Pool(3, "avg", node.attrs),
    "global_max_pool1d": lambda node, s: L.GlobalPool("max", node.attrs["keepdims"]),
    "global_avg_pool1d": lambda node, s: L.GlobalPool("avg", node.attrs["keepdims"]),
    "global_max_pool2d": lambda node, s: L.GlobalPool("max", node.attrs["keepdims"]),
    "global_avg_pool2d": lambda node, s: L.GlobalPool("avg", node.attrs["keepdims"]),
    "global_max_pool3d": lambda node, s: L.GlobalPool("max", node.attrs["keepdims"]),
    "global_avg_pool3d": lambda node, s: L.GlobalPool("avg", node.attrs["keepdims"]),
    "batch_norm": lambda node, s: L.BatchNorm(_channels(s[0], node.attrs["axis"]), node.attrs),
    "layer_norm": lambda node, s: L.LayerNorm(_channels(s[0], node.attrs["axis"]), node.attrs),
    "group_norm": lambda node, s: L.GroupNorm(_channels(s[0], node.attrs["axis"]), node.attrs),
    "simple_rnn": lambda node, s: L.Recurrent("simple_rnn", int(s[0][-1]), node.attrs),
    "lstm": lambda node, s: L.Recurrent("lstm", int(s[0][-1]), node.attrs),
    "gru": lambda node, s: L.Recurrent("gru", int(s[0][-1]), node.attrs),
    "bidirectional": lambda node, s: L.Bidirectional(int(s[0][-1]), node.attrs),
    "multi_head_attention": lambda node, s: L.MultiHeadAttention(
        int(s[0][-1]), int(s[1 if len(s) > 1 else 0][-1]), int(s[-1][-1]), node.attrs
    ),
    "add": lambda node, s: L.Lambda(_add, "add"),
    "subtract": lambda node, s: L.Lambda(_fold(torch.sub), "subtract"),
    "multiply": lambda node, s: L.Lambda(_fold(torch.mul), "multiply"),
    "average": lambda node, s: L.Lambda(_average, "average"),
    "maximum": lambda node, s: L.Lambda(_fold(torch.maximum), "maximum"),
    "minimum": lambda node, s: L.Lambda(_fold(torch.minimum), "minimum"),
    "concatenate": _concatenate,
    "activation": _activation_layer("activation"),
    "relu": _relu,
    "relu6": lambda node, s: L.Lambda(lambda x: torch.clamp(x, 0.0, 6.0), "relu6"),
    "leaky_relu": _leaky,
    "elu": _elu,
    "softmax": _softmax,
    "prelu": _prelu,
    **{
        name: _activation_layer(name)
        for name in ("sigmoid", "tanh", "softplus", "swish", "silu", "gelu", "linear", "hard_sigmoid", "hard_silu",
                     "hard_swish")
    },
}

# catalog parameter name -> dotted torch path, for modules that wrap a native torch layer
TORCH_NAMES = {
    "dense": {"kernel": "weight", "bias": "bias"},
    "embedding": {"embeddings": "weight"},
    "conv1d": {"kernel": "conv.weight", "bias": "conv.bias"},
    "conv2d": {"kernel": "conv.weight", "bias": "conv.bias"},
    "conv3d": {"kernel": "conv.weight", "bias": "conv.bias"},
    "depthwise_conv2d": {"kernel": "conv.weight", "bias": "conv.bias"},
    "conv2d_transpose": {"kernel": "deconv.weight", "bias": "deconv.bias"},
    "separable_conv2d": {
        "depthwise_kernel": "depthwise.weight",
        "pointwise_kernel": "pointwise.weight",
        "bias": "pointwise.bias",
    },
}


def torch_path(layer_type: str, param: str) -> str:
    """Where a catalog parameter lives inside the layer's torch module."""
    return TORCH_NAMES.get(layer_type, {}).get(param, param.replace("/", "."))
