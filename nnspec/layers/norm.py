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


@register
class GroupNorm(LayerType):
    name = "group_norm"
    keras_class = "GroupNormalization"
    aliases = ("group_normalization", "groupnorm")
    summary = (
        "Normalises each example over groups of channels (mean and variance per group, over every other "
        "non-batch axis); groups: 1 is layer normalisation over all axes, groups = channels is instance "
        "normalisation. Keras epsilon 1e-3."
    )
    family = "normalization"
    key_attrs = ("groups", "epsilon")
    attributes = {
        "groups": Attr("int", "Number of channel groups; must divide the channels (-1: one per channel).",
                       default=32, minimum=-1),
        "axis": Attr("int", "The channel axis.", default=-1),
        "epsilon": Attr("float", "Added to the variance.", default=0.001, minimum=0),
        "center": Attr("bool", "Learn an offset (beta).", default=True),
        "scale": Attr("bool", "Learn a scale (gamma).", default=True),
    }

    def output_shape(self, shapes, a):
        c = _axis_size("group_norm", shapes[0], a["axis"])
        g = c if a["groups"] == -1 else a["groups"]
        if g == 0 or g > c or c % g:
            raise ShapeProblem(
                f"group_norm groups={a['groups']} must divide the {c} channels of {format_shape(shapes[0])}",
                hint=f"use a divisor of {c}", attr="groups",
            )
        return shapes[0]

    def param_shapes(self, shapes, a):
        c = _axis_size("group_norm", shapes[0], a["axis"])
        params = []
        if a["scale"]:
            params.append(Param("gamma", (c,)))
        if a["center"]:
            params.append(Param("beta", (c,)))
        return params


def _nested_shape(value) -> tuple[int, ...] | None:
    """The shape of a number or a rectangular nested list of numbers; None when ragged or not numeric."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return ()
    if isinstance(value, list) and value:
        inner = {_nested_shape(v) for v in value}
        first = inner.pop() if len(inner) == 1 else None
        if first is not None:
            return (len(value), *first)
    return None


@register
class Normalization(LayerType):
    name = "normalization"
    keras_class = "Normalization"
    summary = (
        "Standardises inputs with a fixed mean and variance: (x - mean) / sqrt(variance) (Keras "
        "Normalization; invert: true undoes it). Set mean and variance in the spec (a number or a list) and "
        "they are constants, as Keras's Normalization(mean=..., variance=...) keeps them (no weights); leave "
        "them out and mean, variance and count are non-trainable weights, one value per position of the kept "
        "axes, loaded or adapted to the training data."
    )
    family = "preprocessing"
    key_attrs = ("axis",)
    attributes = {
        "axis": Attr("axes", "Axes kept (one statistic per position); null: one statistic for everything.",
                     default=-1, nullable=True),
        "mean": Attr("numbers", "Mean: a number (for every position) or a list shaped like the kept axes; "
                     "with variance, a constant (no weights), else a weight.", nullable=True),
        "variance": Attr("numbers", "Variance, shaped like mean.", nullable=True),
        "invert": Attr("bool", "Apply the inverse: x * sqrt(variance) + mean.", default=False),
    }

    def _kept(self, x, a) -> tuple[int, ...]:
        axis = a.get("axis")
        axes = () if axis is None else (axis,) if isinstance(axis, int) else tuple(axis)
        kept = []
        for ax in axes:
            if not -len(x) <= ax < len(x) or ax % len(x) == 0:
                raise ShapeProblem(f"normalization axis {ax} is out of range for input {format_shape(x)}", attr="axis")
            if not known(x[ax]):
                raise ShapeProblem(f"normalization needs a known size on kept axis {ax}, got {format_shape(x)}",
                                   attr="axis")
            kept.append(ax % len(x))
        return tuple(x[d] for d in sorted(set(kept)))

    def output_shape(self, shapes, a):
        shape = self._kept(shapes[0], a)
        given = [k for k in ("mean", "variance") if a.get(k) is not None]
        if len(given) == 1:
            missing = "variance" if given == ["mean"] else "mean"
            raise ShapeProblem(f"normalization sets {given[0]} but not {missing}", attr=given[0],
                               hint="set both mean and variance, or neither (then load or adapt them)")
        for key in given:
            s = _nested_shape(a[key])
            # Keras aligns a shorter statistic with the last kept axes and broadcasts size-1 entries.
            if s is None or len(s) > len(shape) or any(
                d not in (1, k) for d, k in zip(reversed(s), reversed(shape), strict=False)
            ):
                raise ShapeProblem(
                    f"normalization {key} must be a number or a list broadcastable to {list(shape)} "
                    f"(the kept axes of {format_shape(shapes[0])})", attr=key,
                )
        return shapes[0]

    def param_shapes(self, shapes, a):
        shape = self._kept(shapes[0], a)
        if a.get("mean") is not None and a.get("variance") is not None:
            return []  # constants of the model, as in Keras: nothing to load, adapt or count
        return [
            Param("mean", shape, trainable=False, initializer="zeros"),
            Param("variance", shape, trainable=False, initializer="ones"),
            Param("count", (), trainable=False, initializer="zeros"),
        ]
