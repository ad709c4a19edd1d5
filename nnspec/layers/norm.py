"""Normalisation layers, with Keras's conventions and counts."""

from __future__ import annotations

from nnspec.errors import ShapeProblem
from nnspec.layers.base import Attr, LayerType, Param, format_shape, known
from nnspec.layers.registry import register


def _axis_size(layer: str, x, axis: int) -> int:
    if not -len(x) < axis < len(x) or axis == 0 or axis == -len(x):
        raise ShapeProblem(f"{layer} axis {axis} is out of range for input {format_shape(x)}", attr="axis")
    size = x[axis]
    if not known(size):
        raise ShapeProblem(f"{layer} needs a known size on axis {axis}, got {format_shape(x)}", attr="axis")
    return size


@register
class BatchNorm(LayerType):
    name = "batch_norm"
    keras_class = "BatchNormalization"
    aliases = ("batch_normalization", "batchnorm")
    summary = (
        "Normalises each channel with batch statistics while training and moving averages at inference. "
        "Keras conventions: momentum 0.99 (torch's 0.01), epsilon 1e-3; the moving mean and variance "
        "count as non-trainable parameters."
    )
    family = "normalization"
    key_attrs = ("momentum", "epsilon")
    attributes = {
        "axis": Attr("int", "The channel axis.", default=-1),
        "momentum": Attr("float", "Moving-average momentum (Keras meaning).", default=0.99, minimum=0, maximum=1),
        "epsilon": Attr("float", "Added to the variance.", default=0.001, minimum=0),
        "center": Attr("bool", "Learn an offset (beta).", default=True),
        "scale": Attr("bool", "Learn a scale (gamma).", default=True),
    }

    def param_shapes(self, shapes, a):
        c = _axis_size("batch_norm", shapes[0], a["axis"])
        params = []
        if a["scale"]:
            params.append(Param("gamma", (c,)))
        if a["center"]:
            params.append(Param("beta", (c,)))
        params += [Param("moving_mean", (c,), trainable=False), Param("moving_variance", (c,), trainable=False)]
        return params

    def output_shape(self, shapes, a):
        _axis_size("batch_norm", shapes[0], a["axis"])
        return shapes[0]


@register
class LayerNorm(LayerType):
    name = "layer_norm"
    keras_class = "LayerNormalization"
    aliases = ("layer_normalization", "layernorm")
    summary = "Normalises each example over the last axis (Keras epsilon 1e-3)."
    family = "normalization"
    key_attrs = ("epsilon",)
    attributes = {
        "axis": Attr("int", "The normalised axis.", default=-1),
        "epsilon": Attr("float", "Added to the variance.", default=0.001, minimum=0),
        "center": Attr("bool", "Learn an offset (beta).", default=True),
        "scale": Attr("bool", "Learn a scale (gamma).", default=True),
    }

    def param_shapes(self, shapes, a):
        c = _axis_size("layer_norm", shapes[0], a["axis"])
        params = []
        if a["scale"]:
            params.append(Param("gamma", (c,)))
        if a["center"]:
            params.append(Param("beta", (c,)))
        return params

    def output_shape(self, shapes, a):
        _axis_size("layer_norm", shapes[0], a["axis"])
        return shapes[0]
