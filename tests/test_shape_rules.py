"""Shape arithmetic tables (Keras conventions) and expansion rules."""

from __future__ import annotations

import pytest

import nnspec
from nnspec.layers.shape_utils import conv_output_length, deconv_output_length, same_padding
from nnspec.spec.expr import ExpressionError, evaluate


@pytest.mark.parametrize(
    "length,kernel,stride,padding,dilation,expected",
    [
        (28, 3, 1, "valid", 1, 26),
        (28, 3, 1, "same", 1, 28),
        (28, 3, 2, "same", 1, 14),
        (27, 3, 2, "same", 1, 14),
        (27, 3, 2, "valid", 1, 13),
        (28, 3, 1, "valid", 2, 24),
        (13, 2, 2, "valid", 1, 6),
        (5, 5, 1, "valid", 1, 1),
        (4, 5, 1, "valid", 1, 0),
        (None, 3, 1, "valid", 1, None),
    ],
)
def test_conv_output_length(length, kernel, stride, padding, dilation, expected):
    assert conv_output_length(length, kernel, stride, padding, dilation) == expected


@pytest.mark.parametrize(
    "length,kernel,stride,padding,output_padding,expected",
    [(7, 3, 2, "same", None, 14), (7, 3, 2, "valid", None, 15), (7, 3, 2, "same", 1, 14), (7, 3, 2, "valid", 1, 16),
     (4, 2, 2, "valid", None, 8)],
)
def test_deconv_output_length(length, kernel, stride, padding, output_padding, expected):
    assert deconv_output_length(length, kernel, stride, padding, output_padding) == expected


@pytest.mark.parametrize("length,kernel,stride,expected", [(28, 3, 2, (0, 1)), (28, 3, 1, (1, 1)), (5, 4, 1, (1, 2)), (7, 3, 2, (1, 1))])
def test_tensorflow_same_padding_puts_the_extra_pixel_after(length, kernel, stride, expected):
    assert same_padding(length, kernel, stride) == expected


def spec(layers: str, shape="[28, 28, 1]") -> nnspec.pipeline.Spec:
    return nnspec.load(None, text=f"inputs: {{x: {{shape: {shape}}}}}\nencoder:\n{layers}")


@pytest.mark.parametrize(
    "layer,shape,out,params",
    [
        ("conv2d: {filters: 4, kernel_size: 3, strides: 2, padding: same}", "[28, 28, 1]", (None, 14, 14, 4), 40),
        ("conv2d: {filters: 4, kernel_size: [3, 5], groups: 2}", "[10, 10, 2]", (None, 8, 6, 4), 4 * 15 + 4),
        ("conv1d: {filters: 4, kernel_size: 3, dilation_rate: 2}", "[20, 3]", (None, 16, 4), 40),
        ("conv2d_transpose: {filters: 2, kernel_size: 3, strides: 2}", "[7, 7, 4]", (None, 15, 15, 2), 74),
        ("depthwise_conv2d: {kernel_size: 3, depth_multiplier: 2}", "[8, 8, 3]", (None, 6, 6, 6), 60),
        ("separable_conv2d: {filters: 5, kernel_size: 3}", "[8, 8, 3]", (None, 6, 6, 5), 27 + 15 + 5),
        ("batch_norm", "[4, 4, 3]", (None, 4, 4, 3), 12),
        ("layer_norm", "[6, 3]", (None, 6, 3), 6),
        ("embedding: {input_dim: 10, output_dim: 4}", "[7]", (None, 7, 4), 40),
        ("simple_rnn: {units: 3}", "[5, 2]", (None, 3), 6 + 9 + 3),
        ("lstm: {units: 3, return_sequences: true}", "[5, 2]", (None, 5, 3), 4 * (6 + 9 + 3)),
        ("gru: {units: 3}", "[5, 2]", (None, 3), 3 * (6 + 9) + 18),
        ("gru: {units: 3, reset_after: false}", "[5, 2]", (None, 3), 3 * (6 + 9 + 3)),
        ("multi_head_attention: {num_heads: 2, key_dim: 3}", "[5, 4]", (None, 5, 4), 3 * (4 * 6 + 6) + 6 * 4 + 4),
        ("global_avg_pool2d", "[5, 5, 3]", (None, 3), 0),
        ("global_max_pool1d: {keepdims: true}", "[5, 3]", (None, 1, 3), 0),
        ("upsampling2d: {size: [2, 3]}", "[4, 4, 1]", (None, 8, 12, 1), 0),
        ("zero_padding2d: {padding: [[1, 2], [3, 4]]}", "[4, 4, 1]", (None, 7, 11, 1), 0),
        ("reshape: [-1, 2]", "[4, 4, 1]", (None, 8, 2), 0),
        ("permute: [2, 1]", "[4, 3]", (None, 3, 4), 0),
        ("avg_pool1d: {pool_size: 2, strides: 1}", "[5, 3]", (None, 4, 3), 0),
        ("conv3d: {filters: 4, kernel_size: [1, 3, 3], strides: 2, padding: same}", "[5, 8, 8, 2]", (None, 3, 4, 4, 4),
         4 * 18 + 4),
        ("max_pool3d: {pool_size: 2}", "[5, 8, 8, 2]", (None, 2, 4, 4, 2), 0),
        ("avg_pool3d: {pool_size: 3, strides: 2, padding: same}", "[5, 8, 8, 2]", (None, 3, 4, 4, 2), 0),
        ("global_max_pool3d", "[5, 8, 8, 2]", (None, 2), 0),
        ("global_avg_pool3d: {keepdims: true}", "[5, 8, 8, 2]", (None, 1, 1, 1, 2), 0),
        ("cropping1d: [1, 2]", "[6, 3]", (None, 3, 3), 0),
        ("cropping2d: [[1, 0], [2, 1]]", "[6, 6, 3]", (None, 5, 3, 3), 0),
        ("upsampling1d: 3", "[4, 2]", (None, 12, 2), 0),
        ("group_norm: {groups: 2}", "[4, 4, 6]", (None, 4, 4, 6), 12),
        ("normalization", "[4, 4, 6]", (None, 4, 4, 6), 6 + 6 + 1),
        ("normalization: {axis: [1, -1]}", "[4, 5, 6]", (None, 4, 5, 6), 24 + 24 + 1),
        ("normalization: {mean: [1, 2, 3, 4, 5, 6], variance: 4.0}", "[4, 4, 6]", (None, 4, 4, 6), 0),  # constants
        ("prelu", "[4, 6]", (None, 4, 6), 24),
        ("prelu: {shared_axes: [1, 2]}", "[4, 4, 6]", (None, 4, 4, 6), 6),
        ("bidirectional: {layer: lstm, units: 3}", "[5, 2]", (None, 6), 2 * 4 * (6 + 9 + 3)),
        ("bidirectional: {layer: gru, units: 3, merge_mode: sum, return_sequences: true}", "[5, 2]", (None, 5, 3),
         2 * (3 * (6 + 9) + 18)),
        ("dropout: {rate: 0.3, noise_shape: [null, 1, 6]}", "[4, 6]", (None, 4, 6), 0),
        ("rescaling: 0.5", "[4, 6]", (None, 4, 6), 0),
        ("gaussian_noise: 0.5", "[4, 6]", (None, 4, 6), 0),
        ("hard_swish", "[4, 6]", (None, 4, 6), 0),
    ],
)
def test_layer_shapes_and_counts(layer, shape, out, params):
    s = spec(f"  - {layer}\n", shape)
    last = list(s.analysis.nodes.values())[-1]
    assert last.output_shape == out
    assert s.total_params == params


def test_symbolic_dimension_is_carried():
    s = spec("  - embedding: {input_dim: 10, output_dim: 4}\n  - lstm: {units: 3, return_sequences: true}\n", "[seq]")
    assert list(s.analysis.nodes.values())[-1].output_shape == (None, "seq", 3)


def test_blocks_repeat_and_naming():
    text = """
inputs: {x: {shape: [8]}}
blocks:
  mlp:
    params: {units: 4}
    layers:
      - dense: {units: $units, name: fc}
      - dense: {units: "${units * 2}"}
encoder:
  - block: {use: mlp, repeat: 3, with: {units: 5}}
"""
    s = nnspec.load(None, text=text)
    assert list(s.graph.nodes) == ["x", "mlp1_fc", "dense", "mlp2_fc", "dense_1", "mlp3_fc", "dense_2"]
    assert s.graph.nodes["dense_2"].attrs["units"] == 10
    assert {s.graph.nodes[n].repeat for n in ("mlp1_fc", "mlp3_fc")} == {0, 2}


def test_expressions_are_safe():
    env = {"base": 8, "classes": 10}
    assert evaluate("$base", env) == 8
    assert evaluate("${2 * base + 1}", env) == 17
    assert evaluate("${base / 2}", env) == 4 and isinstance(evaluate("${base / 2}", env), int)
    assert evaluate("${max(base, classes) // 3}", env) == 3
    for bad in ("${__import__('os').system('true')}", "${base.__class__}", "${[x for x in [1, 2]]}", "${'a' * 3}", "${lambda: 1}"):
        with pytest.raises(ExpressionError):
            evaluate(bad, env)
    with pytest.raises(ExpressionError, match="did you mean `base`"):
        evaluate("$bas", env)


def test_frozen_layer_counts_as_non_trainable():
    s = spec("  - flatten\n  - dense: {units: 4, trainable: false}\n  - dense: 2\n", "[3]")
    assert (s.trainable_params, s.non_trainable_params) == (10, 16)


def test_five_thousand_layer_spec_checks_linearly():
    import time

    layers = "".join("  - dense: 8\n" for _ in range(5000))
    start = time.perf_counter()
    s = spec(layers, "[8]")
    assert len(s.graph.nodes) == 5001
    assert time.perf_counter() - start < 10  # generous bound for slow CI; the benchmark measures it
