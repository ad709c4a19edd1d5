"""Layers that merge several inputs: add, multiply, average, concatenate."""

from __future__ import annotations

from nnspec.errors import ShapeProblem
from nnspec.layers.base import Attr, LayerType, format_shape
from nnspec.layers.registry import register


class _Elementwise(LayerType):
    family = "merge"
    min_inputs = 2
    max_inputs = 64

    def output_shape(self, shapes, a):
        first = shapes[0]
        for other in shapes[1:]:
            if len(other) != len(first) or any(
                x is not None and y is not None and x != y for x, y in zip(first, other, strict=False)
            ):
                listing = ", ".join(format_shape(s) for s in shapes)
                raise ShapeProblem(
                    f"{self.name} needs inputs of the same shape, got {listing}",
                    hint="project the smaller branch with a 1x1 conv2d or a dense layer so the shapes match",
                )
        return tuple(x if x is not None else y for x, y in zip(first, shapes[-1], strict=False))


@register
class Add(_Elementwise):
    name = "add"
    keras_class = "Add"
    summary = "Element-wise sum of its inputs (skip connections)."


@register
class Multiply(_Elementwise):
    name = "multiply"
    keras_class = "Multiply"
    summary = "Element-wise product of its inputs (gating)."


@register
class Average(_Elementwise):
    name = "average"
    keras_class = "Average"
    summary = "Element-wise mean of its inputs."


@register
class Concatenate(LayerType):
    name = "concatenate"
    keras_class = "Concatenate"
    summary = "Joins its inputs along an axis (default the last, the channels)."
    family = "merge"
    min_inputs = 2
    max_inputs = 64
    key_attrs = ("axis",)
    attributes = {"axis": Attr("int", "Axis to join along.", default=-1)}

    def output_shape(self, shapes, a):
        rank = len(shapes[0])
        axis = a["axis"] if a["axis"] >= 0 else rank + a["axis"]
        listing = ", ".join(format_shape(s) for s in shapes)
        if not 1 <= axis < rank:
            raise ShapeProblem(f"concatenate axis {a['axis']} is out of range for {listing}", attr="axis")
        for s in shapes[1:]:
            if len(s) != rank or any(
                i != axis and x is not None and y is not None and x != y for i, (x, y) in enumerate(zip(shapes[0], s, strict=False))
            ):
                raise ShapeProblem(
                    f"concatenate along axis {a['axis']} needs all other dimensions equal, got {listing}",
                    hint="resize or pool one branch so the shapes agree except on the joined axis",
                )
        sizes = [s[axis] for s in shapes]
        joined = None if any(v is None or isinstance(v, str) for v in sizes) else sum(sizes)
        out = list(shapes[0])
        out[axis] = joined
        return tuple(out)
