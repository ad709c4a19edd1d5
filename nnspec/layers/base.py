"""The layer contract.

A layer type is defined once, as a subclass of :class:`LayerType`: its name, its attributes
(from which the JSON Schema fragment is generated), the input ranks it accepts, and three
pure rules: ``output_shape``, ``param_shapes`` (each parameter trainable or not) and ``macs``.
Backends find their builder for it by ``name``. Nothing here imports a framework.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from nnspec.errors import ShapeProblem

Dim = "int | str | None"  # a dimension: a size, a symbolic name, or unknown (None)
Shape = tuple  # channels-last, batch first: (None, 28, 28, 1)

ACTIVATIONS = (
    "linear",
    "relu",
    "relu6",
    "leaky_relu",
    "elu",
    "selu",
    "sigmoid",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "tanh",
    "softmax",
    "log_softmax",
    "softplus",
    "softsign",
    "swish",
    "silu",
    "gelu",
    "exponential",
    "mish",
)
INITIALIZERS = (
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "orthogonal",
    "zeros",
    "ones",
    "random_normal",
    "random_uniform",
    "truncated_normal",
)
# Initializers written with their settings, `{variance_scaling: {scale: 2.0, mode: fan_out}}`: each one's
# settings with their schema and default (Keras's).
CONFIGURED_INITIALIZERS: dict[str, dict[str, tuple[dict, Any]]] = {
    "variance_scaling": {
        "scale": ({"type": "number", "exclusiveMinimum": 0}, 1.0),
        "mode": ({"enum": ["fan_in", "fan_out", "fan_avg"]}, "fan_in"),
        "distribution": ({"enum": ["truncated_normal", "untruncated_normal", "uniform"]}, "truncated_normal"),
    },
    "random_normal": {"mean": ({"type": "number"}, 0.0), "stddev": ({"type": "number", "minimum": 0}, 0.05)},
    "truncated_normal": {"mean": ({"type": "number"}, 0.0), "stddev": ({"type": "number", "minimum": 0}, 0.05)},
    "random_uniform": {"minval": ({"type": "number"}, -0.05), "maxval": ({"type": "number"}, 0.05)},
    "constant": {"value": ({"type": "number"}, 0.0)},
    "orthogonal": {"gain": ({"type": "number"}, 1.0)},
}
# An initializer: a name from INITIALIZERS, or one CONFIGURED_INITIALIZERS entry with its settings.
Initializer = str | dict[str, dict[str, Any]]


def initializer_settings(initializer: Initializer) -> tuple[str, dict[str, Any]]:
    """(name, settings) of an initializer, every setting it leaves out at Keras's default
    (``random_normal`` alone is mean 0, stddev 0.05; ``he_normal`` has no settings)."""
    name, given = next(iter(initializer.items())) if isinstance(initializer, dict) else (initializer, None)
    defaults = {key: default for key, (_, default) in CONFIGURED_INITIALIZERS.get(name, {}).items()}
    return name, defaults | dict(given or {})

REGULARIZERS = ("l1", "l2", "l1_l2")


def initializer_schema() -> dict:
    """The JSON Schema of an initializer: a name, or one configured initializer with its settings."""
    return {
        "anyOf": [
            {"enum": list(INITIALIZERS)},
            {
                "type": "object",
                "properties": {
                    name: {
                        "type": "object",
                        "properties": {key: schema for key, (schema, _) in settings.items()},
                        "additionalProperties": False,
                    }
                    for name, settings in CONFIGURED_INITIALIZERS.items()
                },
                "additionalProperties": False,
                "minProperties": 1,
                "maxProperties": 1,
            },
        ]
    }
DTYPES = ("float32", "float64", "float16", "bfloat16", "int32", "int64", "uint8", "bool")


@dataclass(frozen=True)
class Attr:
    """One attribute of a layer type: its JSON Schema, default and description."""

    # int, float, bool, str, name, enum, ints, int_list, activation, initializer, regularizer, padding2d,
    # noise_shape, axes, numbers, any
    kind: str
    doc: str
    default: Any = None
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    exclusive_maximum: float | None = None
    choices: tuple = ()
    length: int = 0  # for 'ints': how many values a list form takes
    nullable: bool = False

    def schema(self) -> dict:
        """The JSON Schema of this attribute's value (strict: no expressions)."""
        kind = self.kind
        num: dict = {}
        if self.minimum is not None:
            num["minimum"] = self.minimum
        if self.maximum is not None:
            num["maximum"] = self.maximum
        if self.exclusive_maximum is not None:
            num["exclusiveMaximum"] = self.exclusive_maximum
        if kind == "int":
            s: dict = {"type": "integer", **num}
        elif kind == "float":
            s = {"type": "number", **num}
        elif kind == "bool":
            s = {"type": "boolean"}
        elif kind == "str":
            s = {"type": "string", "minLength": 1}
        elif kind == "name":
            s = {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "maxLength": 100}
        elif kind == "enum":
            s = {"enum": list(self.choices)}
        elif kind == "activation":
            s = {"enum": list(ACTIVATIONS)}
        elif kind == "initializer":
            s = initializer_schema()
        elif kind == "ints":
            one = {"type": "integer", **num}
            s = {
                "anyOf": [
                    one,
                    {"type": "array", "items": one, "minItems": self.length, "maxItems": self.length},
                ]
            }
        elif kind == "int_list":
            s = {"type": "array", "items": {"type": "integer", **num}, "minItems": 1}
        elif kind == "regularizer":
            factor = {"type": "number", "minimum": 0}
            s = {
                "anyOf": [
                    {"enum": list(REGULARIZERS)},
                    {
                        "type": "object",
                        "properties": {"l1": factor, "l2": factor},
                        "additionalProperties": False,
                        "minProperties": 1,
                    },
                ]
            }
        elif kind == "padding2d":
            pair = {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 2, "maxItems": 2}
            s = {
                "anyOf": [
                    {"type": "integer", "minimum": 0},
                    pair,
                    {"type": "array", "items": pair, "minItems": 2, "maxItems": 2},
                ]
            }
        elif kind == "noise_shape":
            entry = {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]}
            s = {"type": "array", "items": entry, "minItems": 1}
        elif kind == "axes":
            one = {"type": "integer"}
            s = {"anyOf": [one, {"type": "array", "items": one, "minItems": 1}]}
        elif kind == "numbers":
            s = {"anyOf": [{"type": "number"}, {"type": "array", "minItems": 1}]}
        elif kind == "any":
            s = {}
        else:  # pragma: no cover - a catalog bug, caught by the conformance test
            raise ValueError(f"unknown attribute kind {kind!r}")
        if self.nullable:
            s = {"anyOf": [s, {"type": "null"}]}
        s["description"] = self.doc + (f" Default: {self.default!r}." if self.default is not None else "")
        if self.default is not None:
            s["default"] = self.default
        return s

    def expects(self) -> str:
        """Plain words for what a value must be, used in type errors."""
        words = {
            "int": "an integer",
            "float": "a number",
            "bool": "true or false",
            "str": "a text",
            "enum": "one of " + ", ".join(map(str, self.choices)),
            "activation": "an activation name (relu, sigmoid, softmax, ...)",
            "initializer": "an initializer name (glorot_uniform, he_normal, ...) or one with settings, "
                           "e.g. {variance_scaling: {scale: 2.0, mode: fan_out}}",
            "ints": f"an integer or a list of {self.length} integers",
            "int_list": "a list of integers",
            "regularizer": "l1, l2, l1_l2 or a mapping like {l2: 0.001}",
            "padding2d": "an integer, [height, width] or [[top, bottom], [left, right]]",
            "noise_shape": "a list with one entry per input axis (batch included): an integer or null",
            "axes": "an axis or a list of axes",
            "numbers": "a number or a (nested) list of numbers",
        }.get(self.kind, "a value")
        if self.minimum is not None and self.kind in ("int", "ints"):
            words += f" >= {self.minimum:g}"
        return words + (" or null" if self.nullable else "")


# Attributes every layer accepts; the expander consumes them, layer rules never see them.
COMMON_ATTRS: dict[str, Attr] = {
    "name": Attr("name", "Layer name (letters, digits, _); defaults to Keras's automatic name (conv2d, conv2d_1, ...)."),
    "inputs": Attr(
        "any",
        "Earlier layers or graph inputs this layer reads, by name (or a name computed: `\"conv_${i}\"`); defaults "
        "to the previous layer.",
    ),
    "trainable": Attr("bool", "false freezes the layer's weights.", default=True),
    "when": Attr("bool", "Include the layer only when this holds, e.g. `\"${stride == 2}\"`; a skipped layer's "
                 "name stands for its input."),
}

WEIGHT_ATTRS: dict[str, Attr] = {
    "use_bias": Attr("bool", "Whether the layer has a bias vector.", default=True),
    "kernel_initializer": Attr("initializer", "Initializer of the kernel.", default="glorot_uniform"),
    "bias_initializer": Attr("initializer", "Initializer of the bias.", default="zeros"),
    "kernel_regularizer": Attr("regularizer", "Penalty on the kernel weights added to the loss."),
    "bias_regularizer": Attr("regularizer", "Penalty on the bias added to the loss."),
    "activity_regularizer": Attr("regularizer", "Penalty on the layer's output added to the loss."),
}


# Keras's usual weight names -> (fixed initializer, initializer attribute, its default, regularizer attribute)
CONVENTIONAL_WEIGHTS: dict[str, tuple[str | None, str | None, str | None, str | None]] = {
    "kernel": (None, "kernel_initializer", "glorot_uniform", "kernel_regularizer"),
    "bias": (None, "bias_initializer", "zeros", "bias_regularizer"),
    "recurrent_kernel": (None, "recurrent_initializer", "orthogonal", "recurrent_regularizer"),
    "embeddings": (None, "embeddings_initializer", "random_uniform", "embeddings_regularizer"),
    "depthwise_kernel": (None, "depthwise_initializer", "glorot_uniform", "depthwise_regularizer"),
    "pointwise_kernel": (None, "pointwise_initializer", "glorot_uniform", "pointwise_regularizer"),
    "gamma": ("ones", None, None, None),
    "beta": ("zeros", None, None, None),
    "moving_mean": ("zeros", None, None, None),
    "moving_variance": ("ones", None, None, None),
}


@dataclass(frozen=True)
class Param:
    """One weight tensor of a layer, in Keras's layout and naming, with where its initialiser and
    regulariser come from.

    The initial values are drawn by ``initializer`` when it is set (a Keras initialiser name, fixed:
    ``"ones"`` for a batch-norm scale), else by the layer attribute ``initializer_attr`` (default
    ``default_initializer``). ``regularizer_attr`` names the attribute holding its penalty. The
    conventional Keras weight names (kernel, bias, recurrent_kernel, embeddings, depthwise_kernel,
    pointwise_kernel, gamma, beta, moving_mean, moving_variance) fill these in by themselves; any
    other name must declare them, or building it is an error (never a silent zeros).
    """

    name: str
    shape: tuple[int, ...]
    trainable: bool = True
    initializer: Initializer | None = None
    initializer_attr: str | None = None
    default_initializer: Initializer | None = None
    regularizer_attr: str | None = None
    # A fixed initial value from the spec (a number or nested tuples, broadcast to ``shape``), used
    # instead of the initializer: e.g. normalization's mean and variance.
    value: Any = None

    def __post_init__(self) -> None:
        leaf = self.name.rsplit("/", 1)[-1]
        known = CONVENTIONAL_WEIGHTS.get(leaf)
        if known is None or self.initializer or self.initializer_attr:
            return
        fixed, attr, default, regularizer = known
        object.__setattr__(self, "initializer", fixed)  # frozen: fill in the conventional defaults once
        object.__setattr__(self, "initializer_attr", attr)
        object.__setattr__(self, "default_initializer", default)
        if self.regularizer_attr is None:
            object.__setattr__(self, "regularizer_attr", regularizer)

    def initializer_for(self, attrs: dict) -> Initializer | None:
        """The Keras initialiser (a name, or one with settings) that draws this parameter for a node
        with ``attrs``."""
        if self.initializer:
            return self.initializer
        if self.initializer_attr:
            return attrs.get(self.initializer_attr) or self.default_initializer
        return self.default_initializer

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass
class LayerType:
    """Base of every catalog entry. Subclasses set the class attributes and rules."""

    name: ClassVar[str]
    keras_class: ClassVar[str]
    keras_name: ClassVar[str] = ""  # auto-name base; derived from keras_class when empty
    summary: ClassVar[str] = ""
    family: ClassVar[str] = "core"
    aliases: ClassVar[tuple[str, ...]] = ()
    attributes: ClassVar[dict[str, Attr]] = {}
    # The main attribute, set by the shorthand `- dropout: 0.5`. When None, a type with exactly one
    # required attribute takes that one (see main_attribute), so every such type has the shorthand.
    primary: ClassVar[str | None] = None
    ranks: ClassVar[tuple[int, ...] | None] = None  # accepted input ranks, batch included
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int] = 1
    # What the backends and the diagram need, declared instead of guessed from the type's name:
    spatial_rank: ClassVar[int] = 0  # spatial axes a window slides over (conv/pool 1d: 1, 2d: 2), else 0
    call_style: ClassVar[str] = "single"  # Keras call: "single" tensor, "list" (merges), "attention" (q, v[, k])
    # Attributes whose values are shown in diagrams and summaries of key settings.
    key_attrs: ClassVar[tuple[str, ...]] = ()
    extra: dict = field(default_factory=dict)

    # --- the rules -------------------------------------------------------------------
    def output_shape(self, shapes: list[Shape], a: dict) -> Shape:
        return shapes[0]

    def param_shapes(self, shapes: list[Shape], a: dict) -> list[Param]:
        return []

    def macs(self, shapes: list[Shape], out: Shape, a: dict) -> int:
        return 0

    # Plugin layer types may also define, as classmethods, ``build_torch(node, input_shapes)``
    # returning a torch module with ``keras_weights()`` / ``load_keras_weights(dict)``, and
    # ``build_keras(node)`` returning a Keras layer whose weights follow ``param_shapes``. The
    # backends use them when their own builder table has no entry for the type.

    # --- helpers ---------------------------------------------------------------------
    @classmethod
    def all_attributes(cls) -> dict[str, Attr]:
        return {**cls.attributes, **COMMON_ATTRS}

    @classmethod
    def defaults(cls) -> dict:
        return {k: v.default for k, v in cls.all_attributes().items() if k not in ("name", "inputs", "when")}

    @classmethod
    def main_attribute(cls) -> str | None:
        """The attribute the shorthand `- TYPE: VALUE` sets: ``primary``, else the only required one."""
        if cls.primary is not None:
            return cls.primary
        required = [k for k, a in cls.attributes.items() if a.required]
        return required[0] if len(required) == 1 else None

    @classmethod
    def auto_name(cls) -> str:
        return cls.keras_name or to_snake_case(cls.keras_class)

    @classmethod
    def schema(cls, strict: bool = True) -> dict:
        """The JSON Schema fragment of this layer's attribute mapping."""
        props = {}
        for key, attr in cls.all_attributes().items():
            s = attr.schema()
            if key == "inputs":
                s = {
                    "description": attr.doc,
                    "anyOf": [
                        {"type": "string"},
                        {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    ],
                }
            if not strict and key == "name":
                template = {"type": "string", "pattern": r"\$\{", "description": "A name template: `conv${stage}_1`."}
                s = {"anyOf": [s, template], "description": s.get("description", "")}
            if not strict and attr.kind == "initializer":  # one shared definition in the published schema
                s = {"$ref": "#/$defs/initializer", **{k: s[k] for k in ("description", "default") if k in s}}
            if not strict and key not in ("name", "inputs"):
                s = {"anyOf": [s, {"$ref": "#/$defs/expression"}], "description": s.get("description", "")}
            props[key] = s
        obj = {
            "type": "object",
            "description": cls.summary,
            "properties": props,
            "additionalProperties": False,
        }
        required = [k for k, v in cls.attributes.items() if v.required]
        if required:
            obj["required"] = required
        return obj


def to_snake_case(name: str) -> str:
    """Keras's automatic layer-name base: Conv2D -> conv2d, ReLU -> re_lu."""
    import re

    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    s = re.sub(r"([a-z])([A-Z])", r"\1_\2", s)
    return s.lower()


def rank_error(layer: str, got: Shape, ranks: tuple[int, ...], hint: str = "") -> ShapeProblem:
    want = " or ".join(f"{r}-D" for r in ranks)
    return ShapeProblem(
        f"{layer} expects a {want} input (batch included), got {len(got)}-D {format_shape(got)}",
        hint=hint,
    )


def format_shape(shape: Shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def known(d) -> bool:
    return isinstance(d, int) and not isinstance(d, bool)


def prod(dims) -> int | None:
    """Product of dimensions, or None when any is unknown or symbolic."""
    total = 1
    for d in dims:
        if not known(d):
            return None
        total *= d
    return total
