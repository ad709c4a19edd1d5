"""Parity of the torch and Keras backends for every catalog layer type and every shipped spec.

For each tiny spec: the frameworks' own per-layer and total counts equal nnspec's, every layer's
output shape equals nnspec's, and after copying weights Keras -> torch and torch -> Keras the
outputs on random inputs agree within 1e-5 (float32, inference mode).
Set NNSPEC_PARITY_REPORT=path to write the measured table as JSON.
"""

from __future__ import annotations

import json
import os
import pathlib

import pytest

from nnspec.backends.torch.layers import ACTIVATIONS

pytestmark = [pytest.mark.torch, pytest.mark.keras]

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOLERANCE = 1e-5


def one(shape, *layers, dtype="float32") -> str:
    body = "\n".join(f"  - {layer}" for layer in layers)
    return f"name: case\ninputs:\n  x: {{shape: {list(shape)}, dtype: {dtype}}}\nencoder:\n{body}\n"


def two(shape_a, shape_b, *layers, shape_c=None) -> str:
    extra = f"  c: {{shape: {list(shape_c)}}}\n" if shape_c else ""
    body = "\n".join(f"  - {layer}" for layer in layers)
    return f"name: case\ninputs:\n  a: {{shape: {list(shape_a)}}}\n  b: {{shape: {list(shape_b)}}}\n{extra}encoder:\n{body}\n"


# (case id, catalog type it covers, spec text)
CASES = [
    ("dense", "dense", one([5], "dense: {units: 3, activation: tanh}")),
    ("dense_3d_nobias", "dense", one([4, 5], "dense: {units: 3, use_bias: false}")),
    ("embedding", "embedding", one([6], "embedding: {input_dim: 10, output_dim: 4}", dtype="int32")),
    ("flatten_after_conv", "flatten", one([5, 5, 2], "conv2d: {filters: 3, kernel_size: 3}", "flatten", "dense: 2")),
    ("reshape", "reshape", one([12], "reshape: [3, 4]", "dense: 2")),
    ("permute", "permute", one([3, 4], "permute: [2, 1]", "dense: 2")),
    ("dropout", "dropout", one([6], "dense: 4", "dropout: 0.5")),
    ("dropout_noise_shape", "dropout", one([4, 6], "dropout: {rate: 0.5, noise_shape: [null, 1, null]}")),
    ("gaussian_noise", "gaussian_noise", one([6], "gaussian_noise: 0.3")),
    ("rescaling", "rescaling", one([6], "rescaling: {scale: 0.5, offset: -1.0}")),
    ("normalization_set", "normalization",
     one([3, 4], "normalization: {mean: [0.5, -1.0, 2.0, 0.0], variance: [4.0, 0.25, 1.0, 2.0]}")),
    ("normalization_axes_invert", "normalization", one([3, 4], "normalization: {axis: [1, 2], invert: true}")),
    ("normalization_all", "normalization", one([3, 4], "normalization: {axis: null, mean: 1.5, variance: 9}")),
    ("upsampling1d", "upsampling1d", one([3, 2], "upsampling1d: 3")),
    ("cropping1d", "cropping1d", one([6, 2], "cropping1d: [1, 2]")),
    ("cropping2d", "cropping2d", one([5, 6, 2], "cropping2d: [[1, 0], [2, 1]]")),
    ("cropping2d_symmetric", "cropping2d", one([5, 6, 2], "cropping2d: [1, 2]")),
    ("spatial_dropout2d", "spatial_dropout2d", one([4, 4, 3], "spatial_dropout2d: 0.3")),
    ("upsampling2d_nearest", "upsampling2d", one([3, 3, 2], "upsampling2d: {size: [2, 3]}")),
    ("upsampling2d_bilinear", "upsampling2d", one([3, 4, 2], "upsampling2d: {size: 2, interpolation: bilinear}")),
    ("zero_padding2d", "zero_padding2d", one([3, 3, 2], "zero_padding2d: [[1, 2], [0, 1]]")),
    ("conv1d_valid", "conv1d", one([7, 3], "conv1d: {filters: 4, kernel_size: 3, activation: relu}")),
    ("conv1d_same_stride2", "conv1d", one([8, 3], "conv1d: {filters: 4, kernel_size: 4, strides: 2, padding: same}")),
    ("conv1d_dilation", "conv1d", one([9, 2], "conv1d: {filters: 3, kernel_size: 3, dilation_rate: 2, padding: same}")),
    ("conv2d_same_stride2", "conv2d", one([7, 6, 3], "conv2d: {filters: 4, kernel_size: 3, strides: 2, padding: same}")),
    ("conv2d_same_even_kernel", "conv2d", one([5, 5, 2], "conv2d: {filters: 3, kernel_size: 4, padding: same}")),
    ("conv2d_dilation", "conv2d", one([7, 7, 2], "conv2d: {filters: 3, kernel_size: 3, dilation_rate: 2}")),
    ("conv2d_groups", "conv2d", one([5, 5, 4], "conv2d: {filters: 6, kernel_size: 3, groups: 2, padding: same}")),
    ("conv2d_strides_2x1", "conv2d", one([6, 5, 2], "conv2d: {filters: 3, kernel_size: [3, 2], strides: [2, 1]}")),
    ("conv3d_valid", "conv3d", one([4, 5, 3, 2], "conv3d: {filters: 3, kernel_size: [2, 3, 2], activation: relu}")),
    ("conv3d_same_stride2", "conv3d", one([5, 4, 4, 2], "conv3d: {filters: 2, kernel_size: 3, strides: 2, padding: same}")),
    ("conv3d_groups_dilation", "conv3d",
     one([5, 5, 5, 4], "conv3d: {filters: 2, kernel_size: 2, groups: 2, dilation_rate: 2, use_bias: false}")),
    ("conv2d_transpose_valid", "conv2d_transpose", one([3, 4, 2], "conv2d_transpose: {filters: 3, kernel_size: 3, strides: 2}")),
    ("conv2d_transpose_same", "conv2d_transpose",
     one([3, 4, 2], "conv2d_transpose: {filters: 3, kernel_size: 3, strides: 2, padding: same}")),
    ("conv2d_transpose_same_k4", "conv2d_transpose",
     one([3, 3, 2], "conv2d_transpose: {filters: 2, kernel_size: 4, strides: 2, padding: same}")),
    ("conv2d_transpose_output_padding", "conv2d_transpose",
     one([3, 4, 2], "conv2d_transpose: {filters: 3, kernel_size: 3, strides: 2, padding: same, output_padding: 1}")),
    ("conv2d_transpose_valid_output_padding", "conv2d_transpose",
     one([3, 3, 2], "conv2d_transpose: {filters: 2, kernel_size: 3, strides: 3, output_padding: [1, 2]}")),
    ("conv2d_transpose_kernel_below_stride", "conv2d_transpose",
     one([3, 3, 2], "conv2d_transpose: {filters: 2, kernel_size: 2, strides: 3}")),
    ("depthwise_conv2d", "depthwise_conv2d",
     one([6, 5, 3], "depthwise_conv2d: {kernel_size: 3, depth_multiplier: 2, strides: 2, padding: same}")),
    ("separable_conv2d", "separable_conv2d",
     one([5, 5, 3], "separable_conv2d: {filters: 4, kernel_size: 3, depth_multiplier: 2, padding: same}")),
    ("max_pool1d_same", "max_pool1d", one([7, 2], "max_pool1d: {pool_size: 3, strides: 2, padding: same}")),
    ("avg_pool1d_same", "avg_pool1d", one([7, 2], "avg_pool1d: {pool_size: 3, strides: 2, padding: same}")),
    ("max_pool2d", "max_pool2d", one([5, 5, 2], "max_pool2d: 2")),
    ("max_pool2d_same", "max_pool2d", one([5, 5, 2], "max_pool2d: {pool_size: 3, strides: 2, padding: same}")),
    ("avg_pool2d_same", "avg_pool2d", one([5, 4, 2], "avg_pool2d: {pool_size: 3, strides: 2, padding: same}")),
    ("avg_pool2d_strides", "avg_pool2d", one([6, 6, 2], "avg_pool2d: {pool_size: 3, strides: 1}")),
    ("max_pool3d", "max_pool3d", one([4, 4, 5, 2], "max_pool3d: 2")),
    ("max_pool3d_same", "max_pool3d", one([5, 4, 3, 2], "max_pool3d: {pool_size: 3, strides: 2, padding: same}")),
    ("avg_pool3d_same", "avg_pool3d", one([5, 4, 3, 2], "avg_pool3d: {pool_size: [3, 2, 2], strides: 2, padding: same}")),
    ("global_max_pool3d", "global_max_pool3d", one([3, 3, 2, 2], "global_max_pool3d")),
    ("global_avg_pool3d_keepdims", "global_avg_pool3d", one([3, 3, 2, 2], "global_avg_pool3d: {keepdims: true}")),
    ("global_max_pool1d", "global_max_pool1d", one([5, 3], "global_max_pool1d")),
    ("global_avg_pool1d_keepdims", "global_avg_pool1d", one([5, 3], "global_avg_pool1d: {keepdims: true}")),
    ("global_max_pool2d", "global_max_pool2d", one([4, 4, 3], "global_max_pool2d")),
    ("global_avg_pool2d", "global_avg_pool2d", one([4, 4, 3], "global_avg_pool2d")),
    ("batch_norm", "batch_norm", one([4, 4, 3], "batch_norm")),
    ("batch_norm_axis1_no_center", "batch_norm", one([3, 5], "batch_norm: {axis: 1, center: false}")),
    ("layer_norm", "layer_norm", one([4, 6], "layer_norm")),
    ("layer_norm_no_scale", "layer_norm", one([4, 6], "layer_norm: {scale: false, epsilon: 0.01}")),
    ("group_norm", "group_norm", one([3, 3, 4], "group_norm: {groups: 2}")),
    ("group_norm_instance_no_center", "group_norm", one([5, 6], "group_norm: {groups: -1, center: false}")),
    ("group_norm_axis1", "group_norm", one([4, 3], "group_norm: {groups: 2, axis: 1, epsilon: 0.01}")),
    ("bidirectional_lstm", "bidirectional", one([4, 3], "bidirectional: {layer: lstm, units: 3}")),
    ("bidirectional_gru_sequences_sum", "bidirectional",
     one([4, 3], "bidirectional: {layer: gru, units: 3, return_sequences: true, merge_mode: sum}")),
    ("bidirectional_gru_reset_before_ave", "bidirectional",
     one([4, 3], "bidirectional: {layer: gru, units: 2, reset_after: false, merge_mode: ave}")),
    ("bidirectional_simple_rnn_sequences_mul", "bidirectional",
     one([4, 3], "bidirectional: {layer: simple_rnn, units: 3, return_sequences: true, merge_mode: mul}")),
    ("simple_rnn", "simple_rnn", one([4, 3], "simple_rnn: {units: 5}")),
    ("simple_rnn_sequences_backwards", "simple_rnn",
     one([4, 3], "simple_rnn: {units: 5, return_sequences: true, go_backwards: true}")),
    ("lstm", "lstm", one([4, 3], "lstm: {units: 5}")),
    ("lstm_return_sequences", "lstm", one([4, 3], "lstm: {units: 5, return_sequences: true}")),
    ("lstm_go_backwards_nobias", "lstm", one([4, 3], "lstm: {units: 4, go_backwards: true, use_bias: false}")),
    ("gru_reset_after", "gru", one([4, 3], "gru: {units: 5}")),
    ("gru_reset_before", "gru", one([4, 3], "gru: {units: 5, reset_after: false}")),
    ("gru_sequences_reset_before", "gru", one([4, 3], "gru: {units: 4, reset_after: false, return_sequences: true}")),
    ("mha_self", "multi_head_attention", one([4, 6], "multi_head_attention: {num_heads: 2, key_dim: 3}")),
    ("mha_query_value", "multi_head_attention",
     two([4, 6], [5, 3], "multi_head_attention: {num_heads: 2, key_dim: 3, value_dim: 4, inputs: [a, b]}")),
    ("mha_query_value_key_nobias", "multi_head_attention",
     two([4, 6], [5, 3], "multi_head_attention: {num_heads: 3, key_dim: 2, use_bias: false, inputs: [a, b, c]}",
         shape_c=[5, 2])),
    ("add", "add", two([4, 3], [4, 3], "add: {inputs: [a, b]}")),
    ("multiply", "multiply", two([4, 3], [4, 3], "multiply: {inputs: [a, b]}")),
    ("average", "average", two([4, 3], [4, 3], "average: {inputs: [a, b]}")),
    ("concatenate_axis1", "concatenate", two([4, 3], [2, 3], "concatenate: {inputs: [a, b], axis: 1}")),
    ("subtract", "subtract", two([4, 3], [4, 3], "subtract: {inputs: [a, b]}")),
    ("maximum", "maximum", two([4, 3], [4, 3], "maximum: {inputs: [a, b]}")),
    ("minimum", "minimum", two([4, 3], [4, 3], "minimum: {inputs: [a, b]}")),
    # Keras's broadcasting: size-1 axes stretch; a lower-rank input gets its axes inserted after the batch
    *[(f"{m}_broadcast_se", m, two([3, 3, 4], [1, 1, 4], f"{m}: {{inputs: [a, b]}}"))
      for m in ("add", "subtract", "multiply", "average", "maximum", "minimum")],
    ("multiply_broadcast_lower_rank", "multiply", two([3, 2, 4], [4], "multiply: {inputs: [a, b]}")),
    ("add_broadcast_both_ways_three", "add",
     two([1, 4], [3, 1], "add: {inputs: [a, b, c]}", shape_c=[3, 4])),
    ("relu", "relu", one([8], "relu")),
    ("relu_max_value", "relu", one([8], "relu: {max_value: 0.5}")),
    ("relu_threshold_slope_cap", "relu", one([8], "relu: {max_value: 1.0, negative_slope: 0.1, threshold: 0.3}")),
    ("relu_slope", "relu", one([8], "relu: {negative_slope: 0.2}")),
    ("relu6", "relu6", one([8], "dense: {units: 6, kernel_initializer: ones}", "relu6")),
    ("leaky_relu", "leaky_relu", one([8], "leaky_relu")),
    ("leaky_relu_slope", "leaky_relu", one([8], "leaky_relu: 0.1")),
    ("elu", "elu", one([8], "elu: 0.5")),
    ("softmax_axis1", "softmax", one([3, 4], "softmax: {axis: 1}")),
    *[(name, name, one([8], name)) for name in ("sigmoid", "tanh", "softplus", "swish", "silu", "gelu", "linear",
                                                  "hard_sigmoid", "hard_silu", "hard_swish")],
    ("prelu", "prelu", one([3, 4], "prelu")),
    ("prelu_shared_regularised", "prelu",
     one([3, 3, 4], "prelu: {shared_axes: [1, 2], alpha_initializer: ones, alpha_regularizer: l2}")),
    # each activation function both as a dense layer's option and as an `activation` layer
    *[(f"activation_{fn}", "activation",
       one([8], f"dense: {{units: 4, activation: {fn}, name: d}}", f"activation: {{activation: {fn}, inputs: x, name: act}}",
           "concatenate: {inputs: [d, act]}"))
      for fn in ACTIVATIONS],
    ("regularised_frozen", "dense",
     one([5], "dense: {units: 4, kernel_regularizer: l1_l2, bias_regularizer: {l2: 0.5}, activity_regularizer: l1}",
         "dense: {units: 2, trainable: false}")),
    ("two_heads", "dense",
     "name: case\ninputs:\n  x: {shape: [5]}\nencoder:\n  - dense: 4\nheads:\n  a:\n    - dense: 2\n  b:\n    - dense: 3\n"),
]

SPEC_FILES = sorted((ROOT / "specs").glob("*.yaml")) + sorted((ROOT / "examples").glob("*.yaml")) + [
    ROOT / "tests" / "data" / "render" / "issue12_layers.yaml"  # every issue-12 layer type in one graph
]

_results: dict[str, dict] = {}


class Built:
    """A spec built once in both frameworks, with the measurements every test reads."""

    def __init__(self, spec):
        import backend_support as bs

        from nnspec.backends import keras as kb
        from nnspec.backends import torch as tb

        self.spec = spec
        self.torch = tb.build(spec, seed=0)
        self.keras = kb.build(spec)
        self.inputs = bs.random_inputs(spec)
        weights = bs.random_weights(spec)
        # Keras -> torch: set in Keras, read back from Keras, load into torch.
        kb.set_weights(self.keras, spec, weights)
        tb.set_weights(self.torch, spec, kb.get_weights(self.keras, spec))
        self.diff_torch_from_keras = bs.max_diff(bs.run_torch(self.torch, self.inputs), bs.run_keras(self.keras, self.inputs))
        # torch -> Keras: fresh weights set in torch, read back from torch, load into Keras.
        weights = bs.random_weights(spec, seed=2)
        tb.set_weights(self.torch, spec, weights)
        kb.set_weights(self.keras, spec, tb.get_weights(self.torch, spec))
        self.diff_keras_from_torch = bs.max_diff(bs.run_torch(self.torch, self.inputs), bs.run_keras(self.keras, self.inputs))
        self.torch_shapes = bs.torch_layer_shapes(self.torch, self.inputs)
        self.keras_shapes = bs.keras_layer_shapes(self.keras, spec)
        self.torch_counts = bs.torch_counts(self.torch, spec)
        self.keras_counts = bs.keras_counts(self.keras, spec)
        self.nnspec_counts = bs.nnspec_counts(spec)


_cache: dict[str, Built] = {}


def built(key: str, text: str | None = None, path=None) -> Built:
    if key not in _cache:
        import nnspec

        spec = nnspec.load(f"{key}.yaml", text=text) if text is not None else nnspec.load(path)
        _cache[key] = Built(spec)
    return _cache[key]


@pytest.fixture(scope="module", autouse=True)
def parity_report():
    yield
    target = os.environ.get("NNSPEC_PARITY_REPORT")
    if target:
        pathlib.Path(target).write_text(json.dumps(_results, indent=1))


def _record(key: str, layer_type: str, b: Built) -> None:
    layers = [n for n, node in b.spec.graph.nodes.items() if not node.is_input]
    counts_equal = all(b.torch_counts[n] == b.keras_counts[n] == b.nnspec_counts[n] for n in layers)
    _results[key] = {
        "type": layer_type,
        "counts_equal": counts_equal,
        "torch_from_keras": b.diff_torch_from_keras,
        "keras_from_torch": b.diff_keras_from_torch,
    }


def _check(b: Built) -> None:
    import backend_support as bs

    spec = b.spec
    layer_names = [n for n, node in spec.graph.nodes.items() if not node.is_input]
    # counts: per layer and in total, trainable split included
    for name in layer_names:
        assert b.keras_counts[name] == b.nnspec_counts[name], f"keras counts of {name}"
        assert b.torch_counts[name] == b.nnspec_counts[name], f"torch counts of {name}"
    assert sum(c[0] for c in b.torch_counts.values()) == spec.total_params
    assert b.keras.count_params() == spec.total_params
    assert sum(c[1] for c in b.keras_counts.values()) == spec.trainable_params
    # shapes: every layer
    for name in layer_names:
        assert b.keras_shapes[name] == bs.expected_shape(spec, name), f"keras shape of {name}"
        assert b.torch_shapes[name] == bs.expected_shape(spec, name, batch=bs.BATCH), f"torch shape of {name}"
    # same weights, same outputs, both directions
    assert b.diff_torch_from_keras <= TOLERANCE
    assert b.diff_keras_from_torch <= TOLERANCE


@pytest.mark.parametrize("key,layer_type,text", CASES, ids=[c[0] for c in CASES])
def test_layer_parity(key, layer_type, text):
    b = built(key, text=text)
    _record(key, layer_type, b)
    _check(b)


@pytest.mark.parametrize("path", SPEC_FILES, ids=[p.name for p in SPEC_FILES])
def test_spec_parity(path):
    b = built(str(path.relative_to(ROOT)), path=path)
    _record(path.name, "spec", b)
    _check(b)


def test_every_catalog_type_is_in_the_parity_table():
    from nnspec.layers.registry import all_types

    covered = {c[1] for c in CASES}
    missing = sorted(set(all_types()) - covered - {"input"})
    assert not missing, f"catalog types without a parity case: {missing}"
