"""Activation layers. Each also exists as the `activation:` option of dense and conv layers."""

from __future__ import annotations

from nnspec.errors import ShapeProblem
from nnspec.layers.base import WEIGHT_ATTRS, Attr, LayerType, Param, format_shape, known
from nnspec.layers.registry import register


class _ActivationBase(LayerType):
    family = "activation"


@register
class Activation(_ActivationBase):
    name = "activation"
    keras_class = "Activation"
    summary = "Applies a named activation function (`- activation: relu`)."
    primary = "activation"
    key_attrs = ("activation",)
    attributes = {"activation": Attr("activation", "The activation function.", required=True)}


@register
class ReLU(_ActivationBase):
    name = "relu"
    keras_class = "ReLU"
    summary = "Rectified linear unit, optionally capped (max_value) or leaky below threshold."
    key_attrs = ("max_value",)
    attributes = {
        "max_value": Attr("float", "Upper cap (6 gives ReLU6, the clipped ReLU).", minimum=0, nullable=True),
        "negative_slope": Attr("float", "Slope below the threshold.", default=0.0, minimum=0),
        "threshold": Attr("float", "Values below it are zeroed (or scaled by negative_slope).", default=0.0),
    }


@register
class ReLU6(_ActivationBase):
    name = "relu6"
    keras_class = "ReLU"
    summary = "Clipped ReLU: min(max(x, 0), 6) (Keras ReLU(max_value=6))."


@register
class LeakyReLU(_ActivationBase):
    name = "leaky_relu"
    keras_class = "LeakyReLU"
    summary = "x if x > 0 else negative_slope * x (Keras default slope 0.3)."
    key_attrs = ("negative_slope",)
    primary = "negative_slope"
    attributes = {"negative_slope": Attr("float", "Slope for x < 0.", default=0.3, minimum=0)}


@register
class ELU(_ActivationBase):
    name = "elu"
    keras_class = "ELU"
    summary = "Exponential linear unit: x if x > 0 else alpha * (exp(x) - 1)."
    key_attrs = ("alpha",)
    primary = "alpha"
    attributes = {"alpha": Attr("float", "Scale for x < 0.", default=1.0)}


@register
class Softmax(_ActivationBase):
    name = "softmax"
    keras_class = "Softmax"
    summary = "Softmax over an axis (default the last)."
    key_attrs = ("axis",)
    attributes = {"axis": Attr("int", "Axis to normalise over.", default=-1)}


def _plain(function: str, text: str) -> type[LayerType]:
    """A parameterless activation built as Keras's Activation(function)."""
    cls = type(
        function.title().replace("_", "") + "Layer",
        (_ActivationBase,),
        {"name": function, "keras_class": "Activation", "summary": text, "attributes": {}, "__doc__": text},
    )
    return register(cls)


Sigmoid = _plain("sigmoid", "Logistic sigmoid: 1 / (1 + exp(-x)).")
Tanh = _plain("tanh", "Hyperbolic tangent.")
Softplus = _plain("softplus", "log(1 + exp(x)).")
Swish = _plain("swish", "x * sigmoid(x) (same as silu).")
Silu = _plain("silu", "x * sigmoid(x) (same as swish).")
Gelu = _plain("gelu", "Gaussian error linear unit (exact, erf form).")
Linear = _plain("linear", "Identity.")
HardSigmoid = _plain("hard_sigmoid", "Piecewise-linear sigmoid: relu6(x + 3) / 6 (Keras 3).")
HardSilu = _plain("hard_silu", "x * hard_sigmoid(x) = x * relu6(x + 3) / 6 (same as hard_swish; MobileNetV3).")
HardSwish = _plain("hard_swish", "x * hard_sigmoid(x) = x * relu6(x + 3) / 6 (same as hard_silu; MobileNetV3).")


@register
class PReLU(_ActivationBase):
    name = "prelu"
    keras_class = "PReLU"
    summary = (
        "Parametric ReLU: x if x >= 0 else alpha * x, with a learned alpha per element of the input "
        "(batch excluded); shared_axes share one alpha along those axes (e.g. [1, 2] for one per channel)."
    )
    key_attrs = ("shared_axes",)
    attributes = {
        "alpha_initializer": Attr("initializer", "Initializer of alpha.", default="zeros"),
        "alpha_regularizer": WEIGHT_ATTRS["kernel_regularizer"],
        "shared_axes": Attr("int_list", "Axes (1-based, batch is 0) along which one alpha is shared.", minimum=1,
                            nullable=True),
    }

    def _alpha_shape(self, x, a) -> tuple[int, ...]:
        shared = set(a.get("shared_axes") or ())
        bad = sorted(i for i in shared if i >= len(x))
        if bad:
            raise ShapeProblem(f"prelu shared_axes {bad} are out of range for input {format_shape(x)} "
                               f"(axes 1..{len(x) - 1})", attr="shared_axes")
        shape = [1 if i in shared else d for i, d in enumerate(x) if i > 0]
        if not all(known(d) for d in shape):
            raise ShapeProblem(f"prelu needs known sizes on the axes that are not shared, got {format_shape(x)}",
                               hint="share the unknown axes (shared_axes: [1]) or give the input a fixed shape",
                               attr="shared_axes")
        return tuple(shape)

    def output_shape(self, shapes, a):
        self._alpha_shape(shapes[0], a)
        return shapes[0]

    def param_shapes(self, shapes, a):
        return [Param("alpha", self._alpha_shape(shapes[0], a), initializer=a["alpha_initializer"],
                      regularizer_attr="alpha_regularizer")]
