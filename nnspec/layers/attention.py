"""Multi-head attention (Keras's MultiHeadAttention parameter layout)."""

from __future__ import annotations

from nnspec.errors import ShapeProblem
from nnspec.layers.base import WEIGHT_ATTRS, Attr, LayerType, Param, format_shape, known
from nnspec.layers.registry import register


@register
class MultiHeadAttention(LayerType):
    call_style = "attention"
    name = "multi_head_attention"
    keras_class = "MultiHeadAttention"
    summary = (
        "Scaled dot-product attention with num_heads heads. inputs: [query] (self-attention), "
        "[query, value] or [query, value, key]. The output has the query's shape."
    )
    family = "attention"
    ranks = (3,)
    min_inputs = 1
    max_inputs = 3
    key_attrs = ("num_heads", "key_dim")
    attributes = {
        "num_heads": Attr("int", "Number of heads.", required=True, minimum=1),
        "key_dim": Attr("int", "Size of each head for query and key.", required=True, minimum=1),
        "value_dim": Attr("int", "Size of each head for value; defaults to key_dim.", minimum=1, nullable=True),
        "dropout": Attr("float", "Dropout on the attention weights.", default=0.0, minimum=0, exclusive_maximum=1),
        **WEIGHT_ATTRS,
    }

    def _dims(self, shapes):
        q = shapes[0]
        v = shapes[1] if len(shapes) > 1 else q
        k = shapes[2] if len(shapes) > 2 else v
        for s in (q, v, k):
            if len(s) != 3 or not known(s[-1]):
                raise ShapeProblem(
                    f"multi_head_attention expects 3-D inputs (batch, steps, features) with known features, got {format_shape(s)}"
                )
        return q[-1], v[-1], k[-1]

    def output_shape(self, shapes, a):
        self._dims(shapes)
        if len(shapes) > 2 and shapes[1][1] != shapes[2][1] and known(shapes[1][1]) and known(shapes[2][1]):
            raise ShapeProblem(
                f"multi_head_attention value and key need the same number of steps, got {format_shape(shapes[1])} and {format_shape(shapes[2])}"
            )
        return shapes[0]

    def param_shapes(self, shapes, a):
        dq, dv, dk = self._dims(shapes)
        h, kd = a["num_heads"], a["key_dim"]
        vd = a.get("value_dim") or kd
        b = a["use_bias"]
        params = [Param("query/kernel", (dq, h, kd))] + ([Param("query/bias", (h, kd))] if b else [])
        params += [Param("key/kernel", (dk, h, kd))] + ([Param("key/bias", (h, kd))] if b else [])
        params += [Param("value/kernel", (dv, h, vd))] + ([Param("value/bias", (h, vd))] if b else [])
        params += [Param("attention_output/kernel", (h, vd, dq))] + ([Param("attention_output/bias", (dq,))] if b else [])
        return params

    def macs(self, shapes, out, a):
        dq, dv, dk = self._dims(shapes)
        tq = shapes[0][1] if known(shapes[0][1]) else 1
        tv = shapes[1][1] if len(shapes) > 1 and known(shapes[1][1]) else tq
        h, kd = a["num_heads"], a["key_dim"]
        vd = a.get("value_dim") or kd
        proj = tq * dq * h * kd + tv * dk * h * kd + tv * dv * h * vd + tq * h * vd * dq
        return proj + h * tq * tv * (kd + vd)
