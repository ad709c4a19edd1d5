"""Graph inputs."""

from __future__ import annotations

from nnspec.layers.base import DTYPES, Attr, LayerType
from nnspec.layers.registry import register


@register
class Input(LayerType):
    """A named graph input; ``shape`` excludes the batch dimension, channels last."""

    name = "input"
    keras_class = "InputLayer"
    summary = "A graph input: its shape (channels last, no batch dimension) and dtype."
    family = "io"
    min_inputs = 0
    max_inputs = 0
    key_attrs = ("shape", "dtype")
    attributes = {
        "shape": Attr(
            "any",
            "Shape without the batch dimension, channels last, e.g. [28, 28, 1]; "
            "null or a name (seq) marks a variable dimension; `$var` or `${...}` computes one from vars.",
            required=True,
        ),
        "dtype": Attr("enum", "Element type.", default="float32", choices=DTYPES),
    }

    @classmethod
    def schema(cls, strict: bool = True) -> dict:
        s = super().schema(strict)
        s["properties"]["shape"] = {
            "description": cls.attributes["shape"].doc,
            "type": "array",
            "minItems": 1,
            "items": {
                "anyOf": [
                    {"type": "integer", "minimum": 1},
                    {"type": "null"},
                    {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                    {"$ref": "#/$defs/expression"},
                ]
            },
        }
        for k in ("inputs", "trainable", "when"):
            s["properties"].pop(k, None)
        return s

    def output_shape(self, shapes, a):
        return (None, *a["shape"])
