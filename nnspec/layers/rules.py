"""Applying a layer type's shape rule to concrete input shapes, in one place.

Both the analysis (every node, after expansion) and the expander (a block that reads its
input's shape, ``${channels(input)}``) call :func:`output_shape`, so a shape inside a block is
computed by exactly the rules the summary reports, never by a second copy.
"""

from __future__ import annotations

from nnspec.errors import ShapeProblem
from nnspec.layers import registry
from nnspec.layers.base import Shape, format_shape, rank_error


def check_ranks(type_name: str, shapes: list[Shape]) -> None:
    """Raise the one rank error when an input's rank is not one the layer type accepts."""
    cls = registry.get(type_name)
    if cls.ranks is None:
        return
    for s in shapes:
        if len(s) not in cls.ranks:
            hint = ""
            if len(s) > max(cls.ranks):
                hint = "add a `flatten` or global pooling layer before it"
            elif len(s) < min(cls.ranks):
                hint = "add a `reshape` layer before it (e.g. target_shape: [28, 28, 1])"
            raise rank_error(type_name, s, cls.ranks, hint)


def output_shape(type_name: str, shapes: list[Shape], attrs: dict) -> Shape:
    """The output shape of a ``type_name`` layer with ``attrs`` (defaults filled) reading ``shapes``.

    Raises:
        ShapeProblem: the ranks do not fit, the rule refuses the inputs, or the output is empty.
    """
    check_ranks(type_name, shapes)
    out = tuple(registry.get(type_name)().output_shape(shapes, attrs))
    for d in out[1:]:
        if isinstance(d, int) and d <= 0:
            raise ShapeProblem(f"{type_name} produces an empty output {format_shape(out)}")
    return out
