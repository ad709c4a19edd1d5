"""Layers that merge several inputs: add, subtract, multiply, average, maximum, minimum, concatenate."""

from __future__ import annotations

from nnspec.errors import ShapeProblem
from nnspec.layers.base import Attr, LayerType, format_shape
from nnspec.layers.registry import register


def broadcast_dims(first: tuple, second: tuple) -> tuple | None:
    """Keras's element-wise merge shape (``Merge._compute_elemwise_op_output_shape``), batch excluded.

    Shapes align at their last axis; the shorter one is treated as if it had leading 1s (Keras
    inserts the missing axes right after the batch axis). Two sizes combine when they are equal or
    one of them is 1. An unknown size makes the result unknown, as in Keras; equal symbolic sizes
    (``seq`` and ``seq``) and a symbolic size against 1 keep the symbol. None when they do not fit.
    """
    if len(first) < len(second):
        first, second = second, first
    if not second:
        return tuple(first)
    out = list(first[: len(first) - len(second)])
    for i, j in zip(first[len(first) - len(second) :], second, strict=True):
        if i is None or j is None:
            out.append(None)
        elif isinstance(i, str) or isinstance(j, str):
            out.append(i if i == j or j == 1 else j if i == 1 else None)
        elif i == 1:
            out.append(j)
        elif j == 1 or i == j:
            out.append(i)
        else:
            return None
    return tuple(out)


class _Elementwise(LayerType):
    """Element-wise merges; shapes broadcast as in Keras (equal sizes or 1, aligned at the last axis)."""

    family = "merge"
    call_style = "list"
    min_inputs = 2
    max_inputs = 64

    def output_shape(self, shapes, a):
        out: tuple | None = tuple(shapes[0][1:])
        for other in shapes[1:]:
            out = broadcast_dims(out, tuple(other[1:])) if out is not None else None
            if out is None:
                listing = ", ".join(format_shape(s) for s in shapes)
                raise ShapeProblem(
                    f"{self.name} needs inputs whose shapes broadcast (each size equal or 1, aligned at the "
                    f"last axis, as in Keras), got {listing}",
                    hint="project the smaller branch with a 1x1 conv2d or a dense layer so the sizes match",
                )
        return (shapes[0][0], *out)


@register
class Add(_Elementwise):
    name = "add"
    keras_class = "Add"
    summary = "Element-wise sum of its inputs (skip connections); shapes broadcast as in Keras."


@register
class Subtract(_Elementwise):
    name = "subtract"
    keras_class = "Subtract"
    summary = "Element-wise difference of exactly two inputs: first minus second; shapes broadcast as in Keras."
    max_inputs = 2


@register
class Multiply(_Elementwise):
    name = "multiply"
    keras_class = "Multiply"
    summary = "Element-wise product of its inputs (gating, squeeze-and-excitation); shapes broadcast as in Keras."


@register
class Average(_Elementwise):
    name = "average"
    keras_class = "Average"
    summary = "Element-wise mean of its inputs; shapes broadcast as in Keras."


@register
class Maximum(_Elementwise):
    name = "maximum"
    keras_class = "Maximum"
    summary = "Element-wise maximum of its inputs; shapes broadcast as in Keras."


@register
class Minimum(_Elementwise):
    name = "minimum"
    keras_class = "Minimum"
    summary = "Element-wise minimum of its inputs; shapes broadcast as in Keras."


@register
class Concatenate(LayerType):
    call_style = "list"
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
