"""Recurrent layers, in Keras's variants: one bias vector per gate set; GRU reset_after chosen explicitly."""

from __future__ import annotations

from nnspec.errors import ShapeProblem
from nnspec.layers.base import WEIGHT_ATTRS, Attr, LayerType, Param, format_shape, known
from nnspec.layers.registry import register


class _RNN(LayerType):
    family = "recurrent"
    ranks = (3,)
    gates = 1
    key_attrs = ("units", "return_sequences")

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
