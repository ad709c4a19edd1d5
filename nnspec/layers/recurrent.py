"""Recurrent layers, in Keras's variants: one bias vector per gate set; GRU reset_after chosen explicitly."""

from __future__ import annotations

from typing import ClassVar

from nnspec.errors import ShapeProblem
from nnspec.layers.base import WEIGHT_ATTRS, Attr, LayerType, Param, format_shape, known
from nnspec.layers.registry import register


class _RNN(LayerType):
    family = "recurrent"
    ranks = (3,)
    gates = 1
    key_attrs: ClassVar[tuple[str, ...]] = ("units", "return_sequences")

    @classmethod
    def rnn_attrs(cls, activation: str = "tanh") -> dict:
        return {
            "units": Attr("int", "Size of the hidden state.", required=True, minimum=1),
            "activation": Attr("activation", "Activation of the candidate state.", default=activation),
            "return_sequences": Attr("bool", "Return every step's output, not only the last.", default=False),
            "go_backwards": Attr("bool", "Process the sequence in reverse.", default=False),
            "dropout": Attr("float", "Dropout on the inputs.", default=0.0, minimum=0, exclusive_maximum=1),
            "recurrent_initializer": Attr("initializer", "Initializer of the recurrent kernel.", default="orthogonal"),
            "recurrent_regularizer": WEIGHT_ATTRS["kernel_regularizer"],
            **WEIGHT_ATTRS,
        }

    def output_shape(self, shapes, a):
        x = shapes[0]
        if not known(x[-1]):
            raise ShapeProblem(f"{self.name} needs a known feature size (last axis), got {format_shape(x)}")
        return (x[0], x[1], a["units"]) if a["return_sequences"] else (x[0], a["units"])

    def bias_shape(self, a) -> tuple[int, ...]:
        return (self.gates * a["units"],)

    def param_shapes(self, shapes, a):
        u, g = a["units"], self.gates
        params = [Param("kernel", (shapes[0][-1], g * u)), Param("recurrent_kernel", (u, g * u))]
        if a["use_bias"]:
            params.append(Param("bias", self.bias_shape(a)))
        return params

    def macs(self, shapes, out, a):
        steps = shapes[0][1] if known(shapes[0][1]) else 1
        return steps * self.gates * a["units"] * (shapes[0][-1] + a["units"])


@register
class SimpleRNN(_RNN):
    name = "simple_rnn"
    keras_class = "SimpleRNN"
    summary = "Fully connected recurrence h' = act(x W + h U + b); one bias vector (Keras)."
    attributes = _RNN.rnn_attrs()


@register
class LSTM(_RNN):
    name = "lstm"
    keras_class = "LSTM"
    summary = "Long short-term memory; Keras gate order i, f, c, o; one bias vector; forget bias starts at 1."
    gates = 4
    attributes = {
        **_RNN.rnn_attrs(),
        "recurrent_activation": Attr("activation", "Activation of the gates.", default="sigmoid"),
        "unit_forget_bias": Attr("bool", "Initialise the forget-gate bias to 1.", default=True),
    }


@register
class GRU(_RNN):
    name = "gru"
    keras_class = "GRU"
    summary = (
        "Gated recurrent unit; Keras gate order z, r, h. reset_after: true (Keras 3 default, the variant "
        "torch implements) keeps separate input and recurrent biases."
    )
    gates = 3
    attributes = {
        **_RNN.rnn_attrs(),
        "recurrent_activation": Attr("activation", "Activation of the gates.", default="sigmoid"),
        "reset_after": Attr("bool", "Apply the reset gate after the recurrent matmul.", default=True),
    }

    def bias_shape(self, a):
        return (2, 3 * a["units"]) if a["reset_after"] else (3 * a["units"],)


_WRAPPED: dict[str, type[_RNN]] = {"simple_rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}


@register
class Bidirectional(_RNN):
    name = "bidirectional"
    keras_class = "Bidirectional"
    summary = (
        "Runs a recurrent layer (`layer: lstm`, `gru` or `simple_rnn`, with that layer's attributes alongside) "
        "forwards and a second copy backwards, and merges their outputs (merge_mode concat, sum, ave or mul), "
        "as Keras's Bidirectional(LSTM(...)). Twice the wrapped layer's parameters, named "
        "forward_<layer>/<layer>_cell/... and backward_<layer>/<layer>_cell/... as in Keras."
    )
    key_attrs = ("layer", "units", "merge_mode", "return_sequences")
    attributes = {
        "layer": Attr("enum", "The wrapped recurrent layer type.", required=True, choices=tuple(_WRAPPED)),
        "merge_mode": Attr("enum", "How the two directions combine.", default="concat",
                           choices=("concat", "sum", "ave", "mul")),
        **{k: v for k, v in _RNN.rnn_attrs().items() if k != "go_backwards"},
        "recurrent_activation": Attr("activation", "Activation of the gates (lstm, gru).", default="sigmoid"),
        "unit_forget_bias": Attr("bool", "Initialise the forget-gate bias to 1 (lstm).", default=True),
        "reset_after": Attr("bool", "Apply the reset gate after the recurrent matmul (gru).", default=True),
    }

    def _wrapped(self, a) -> _RNN:
        return _WRAPPED[a["layer"]]()

    def output_shape(self, shapes, a):
        out = self._wrapped(a).output_shape(shapes, a)
        return (*out[:-1], 2 * out[-1]) if a["merge_mode"] == "concat" else out

    def param_shapes(self, shapes, a):
        t = a["layer"]
        inner = self._wrapped(a).param_shapes(shapes, a)
        return [
            Param(f"{direction}_{t}/{t}_cell/{p.name}", p.shape, p.trainable)
            for direction in ("forward", "backward")
            for p in inner
        ]

    def macs(self, shapes, out, a):
        return 2 * self._wrapped(a).macs(shapes, out, a)
