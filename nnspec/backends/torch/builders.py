"""Catalog layer type -> torch module builder (``BUILDERS``).

A builder receives the node and the channels-last shapes of its inputs (from nnspec's analysis)
and returns a module from :mod:`nnspec.backends.torch.layers`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nnspec.backends.torch import layers as L


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


def _add(*xs):
    out = xs[0]
    for x in xs[1:]:
        out = out + x
    return out


def _multiply(*xs):
    out = xs[0]
    for x in xs[1:]:
        out = out * x
    return out


def _concatenate(node, shapes):
    axis = node.attrs["axis"]
    return L.Lambda(lambda *xs: torch.cat(xs, dim=axis), f"concatenate(axis={axis})")


def _channels(shape, axis: int) -> int:
    return int(shape[axis])


BUILDERS = {
    "dense": lambda node, s: L.Dense(int(s[0][-1]), node.attrs),
    "embedding": lambda node, s: L.Embedding(node.attrs),
    "flatten": lambda node, s: L.Flatten(),
    "reshape": lambda node, s: L.Reshape(node.attrs["target_shape"]),
    "permute": lambda node, s: L.Permute(node.attrs["dims"]),
    "dropout": lambda node, s: L.Dropout(node.attrs["rate"]),
    "spatial_dropout2d": lambda node, s: L.SpatialDropout2D(node.attrs["rate"]),
    "upsampling2d": lambda node, s: L.UpSampling2D(node.attrs),
    "zero_padding2d": lambda node, s: L.ZeroPadding2D(node.attrs["padding"]),
    "conv1d": lambda node, s: L.Conv(1, int(s[0][-1]), node.attrs),
    "conv2d": lambda node, s: L.Conv(2, int(s[0][-1]), node.attrs),
    "conv2d_transpose": lambda node, s: L.Conv2DTranspose(int(s[0][-1]), node.attrs),
    "depthwise_conv2d": lambda node, s: L.DepthwiseConv2D(int(s[0][-1]), node.attrs),
    "separable_conv2d": lambda node, s: L.SeparableConv2D(int(s[0][-1]), node.attrs),
    "max_pool1d": lambda node, s: L.Pool(1, "max", node.attrs),
    "avg_pool1d": lambda node, s: L.Pool(1, "avg", node.attrs),
    "max_pool2d": lambda node, s: L.Pool(2, "max", node.attrs),
    "avg_pool2d": lambda node, s: L.Pool(2, "avg", node.attrs),
    "global_max_pool1d": lambda node, s: L.GlobalPool("max", node.attrs["keepdims"]),
    "global_avg_pool1d": lambda node, s: L.GlobalPool("avg", node.attrs["keepdims"]),
    "global_max_pool2d": lambda node, s: L.GlobalPool("max", node.attrs["keepdims"]),
    "global_avg_pool2d": lambda node, s: L.GlobalPool("avg", node.attrs["keepdims"]),
    "batch_norm": lambda node, s: L.BatchNorm(_channels(s[0], node.attrs["axis"]), node.attrs),
    "layer_norm": lambda node, s: L.LayerNorm(_channels(s[0], node.attrs["axis"]), node.attrs),
    "simple_rnn": lambda node, s: L.Recurrent("simple_rnn", int(s[0][-1]), node.attrs),
    "lstm": lambda node, s: L.Recurrent("lstm", int(s[0][-1]), node.attrs),
    "gru": lambda node, s: L.Recurrent("gru", int(s[0][-1]), node.attrs),
    "multi_head_attention": lambda node, s: L.MultiHeadAttention(
        int(s[0][-1]), int(s[1 if len(s) > 1 else 0][-1]), int(s[-1][-1]), node.attrs
    ),
    "add": lambda node, s: L.Lambda(_add, "add"),
    "multiply": lambda node, s: L.Lambda(_multiply, "multiply"),
    "average": lambda node, s: L.Lambda(lambda *xs: _add(*xs) / len(xs), "average"),
    "concatenate": _concatenate,
    "activation": _activation_layer("activation"),
    "relu": _relu,
    "relu6": lambda node, s: L.Lambda(lambda x: torch.clamp(x, 0.0, 6.0), "relu6"),
    "leaky_relu": _leaky,
    "elu": _elu,
    "softmax": _softmax,
    **{
        name: _activation_layer(name)
        for name in ("sigmoid", "tanh", "softplus", "swish", "silu", "gelu", "linear")
    },
}

# catalog parameter name -> dotted torch path, for modules that wrap a native torch layer
TORCH_NAMES = {
    "dense": {"kernel": "weight", "bias": "bias"},
    "embedding": {"embeddings": "weight"},
    "conv1d": {"kernel": "conv.weight", "bias": "conv.bias"},
    "conv2d": {"kernel": "conv.weight", "bias": "conv.bias"},
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
