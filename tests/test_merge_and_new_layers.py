"""Issue 12 layers: Keras's merge broadcasting (bug 3), `normalization` (bug 6) and the training-time
behaviour of the new layers that parity tests (inference mode) cannot see."""

from __future__ import annotations

import numpy as np
import pytest

import nnspec
from nnspec.layers.merge import broadcast_dims


def _spec(text: str):
    return nnspec.load("case.yaml", text=text)


# --- bug 3: merges broadcast as Keras's do ---------------------------------------------------------
@pytest.mark.parametrize(
    "first,second,expected",
    [
        ((8, 8, 16), (1, 1, 16), (8, 8, 16)),  # squeeze-and-excitation
        ((1, 1, 16), (8, 8, 16), (8, 8, 16)),
        ((8, 8, 16), (16,), (8, 8, 16)),  # lower rank: axes inserted after the batch
        ((3, 1), (1, 4), (3, 4)),  # both sides stretch
        ((8, 8, 16), (8, 8, 3), None),
        ((4, 3), (3, 3), None),
        ((None, 16), (5, 16), (None, 16)),  # unknown stays unknown, as in Keras
        (("seq", 4), ("seq", 1), ("seq", 4)),
        (("seq", 4), (1, 4), ("seq", 4)),
        (("seq", 4), ("len", 4), (None, 4)),
        ((), (3,), (3,)),
    ],
)
def test_broadcast_rule_follows_keras(first, second, expected):
    assert broadcast_dims(first, second) == expected


@pytest.mark.parametrize("merge", ["add", "subtract", "multiply", "average", "maximum", "minimum"])
def test_every_elementwise_merge_broadcasts_a_squeeze_and_excitation_gate(merge):
    spec = _spec(
        "inputs:\n  feat: {shape: [8, 8, 16]}\n  pooled: {shape: [1, 1, 16]}\n"
        f"encoder:\n  - {merge}: {{inputs: [feat, pooled]}}\n"
    )
    assert spec.analysis.nodes[merge].output_shape == (None, 8, 8, 16)


def test_merge_of_shapes_that_do_not_broadcast_is_a_located_error():
    with pytest.raises(nnspec.SpecError) as info:
        _spec("inputs:\n  a: {shape: [8, 8, 16]}\n  b: {shape: [8, 8, 3]}\nencoder:\n  - add: {inputs: [a, b]}\n")
    diag = info.value.diagnostics[0]
    assert diag.line == 5
    assert "(None, 8, 8, 16), (None, 8, 8, 3)" in diag.message and "broadcast" in diag.message
    assert diag.hint


def test_subtract_takes_exactly_two_inputs():
    with pytest.raises(nnspec.SpecError, match="subtract"):
        _spec("inputs:\n  a: {shape: [4]}\n  b: {shape: [4]}\n  c: {shape: [4]}\n"
              "encoder:\n  - subtract: {inputs: [a, b, c]}\n")


# --- bug 6 and normalization ------------------------------------------------------------------------
def test_normalization_is_a_catalog_type_and_typos_point_at_it():
    spec = _spec("inputs: {x: {shape: [4]}}\nencoder:\n  - normalization\n")
    assert [p.name for p in spec.analysis.nodes["normalization"].params] == ["mean", "variance", "count"]
    assert spec.trainable_params == 0 and spec.total_params == 9
    with pytest.raises(nnspec.SpecError) as info:
        _spec("inputs: {x: {shape: [4]}}\nencoder:\n  - normalizaton\n")
    assert info.value.diagnostics[0].hint == "did you mean `normalization`?"


@pytest.mark.parametrize(
    "attrs,message",
    [
        ("{mean: [1, 2, 3]}", "sets mean but not variance"),
        ("{mean: [1, 2, 3, 4], variance: [1, 2]}", "variance must be a number or a list broadcastable to [4]"),
        ("{axis: 5}", "axis 5 is out of range"),
    ],
)
def test_normalization_statistics_are_checked(attrs, message):
    with pytest.raises(nnspec.SpecError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _spec(f"inputs: {{x: {{shape: [4]}}}}\nencoder:\n  - normalization: {attrs}\n")


NORM_SPEC = """
name: norm
inputs:
  x: {shape: [3, 4]}
encoder:
  - normalization: {mean: [0.5, -1.0, 2.0, 0.0], variance: [4.0, 0.25, 1.0, 2.0]}
"""


@pytest.mark.torch
@pytest.mark.keras
@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_statistics_set_in_the_spec_are_used_by_every_build(backend):
    spec = _spec(NORM_SPEC)
    model = nnspec.build(spec, backend=backend)  # no seed: the spec's values still apply
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    if backend == "torch":
        import torch

        y = model(torch.from_numpy(x)).detach().numpy()
    else:
        y = np.asarray(model(x, training=False))
    expected = (x - np.array([0.5, -1.0, 2.0, 0.0])) / np.sqrt([4.0, 0.25, 1.0, 2.0])
    assert np.max(np.abs(y - expected)) < 1e-6


# --- training-time behaviour of dropout noise_shape and gaussian_noise --------------------------------
NOISE_SPEC = """
name: noise
inputs:
  x: {shape: [6, 50]}
encoder:
  - dropout: {rate: 0.5, noise_shape: [null, 1, null], name: drop}
  - gaussian_noise: {stddev: 0.5, name: noise, inputs: x}
  - add: {inputs: [drop, noise]}
"""


def _run(backend: str, model, x: np.ndarray, layer: str, training: bool) -> np.ndarray:
    if backend == "torch":
        import torch

        model.train(training)
        with torch.no_grad():
            return model.layers[layer](torch.from_numpy(x)).numpy()
    return np.asarray(model.get_layer(layer)(x, training=training))


@pytest.mark.torch
@pytest.mark.keras
@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_dropout_noise_shape_shares_the_mask_and_noise_only_acts_while_training(backend):
    model = nnspec.build(_spec(NOISE_SPEC), backend=backend)
    x = np.ones((4, 6, 50), dtype=np.float32)
    dropped = _run(backend, model, x, "drop", training=True)
    assert set(np.unique(dropped)) <= {0.0, 2.0}
    assert (dropped == dropped[:, :1, :]).all(), "one mask value for every step"
    assert 0.3 < (dropped == 0).mean() < 0.7
    noisy = _run(backend, model, x, "noise", training=True)
    assert 0.4 < float(np.std(noisy - x)) < 0.6
    assert (_run(backend, model, x, "drop", training=False) == x).all()
    assert (_run(backend, model, x, "noise", training=False) == x).all()


@pytest.mark.keras
@pytest.mark.parametrize("axis,keras_axis", [("-1", -1), ("[1, 2]", (1, 2)), ("null", None)])
def test_normalization_statistics_equal_keras_adapt(axis, keras_axis):
    import keras

    from nnspec.backends.common import normalization_statistics

    spec = _spec(f"inputs: {{x: {{shape: [3, 4]}}}}\nencoder:\n  - normalization: {{axis: {axis}}}\n")
    rng = np.random.default_rng(0)
    data = (rng.standard_normal((20, 3, 4)) * 3 + 1).astype(np.float32)
    layer = keras.layers.Normalization(axis=keras_axis)
    layer.adapt(data)
    whole = normalization_statistics(spec, "normalization", data)
    batched = normalization_statistics(spec, "normalization", [data[:7], data[7:15], data[15:]])
    for stats in (whole, batched):
        assert np.max(np.abs(stats["mean"] - np.asarray(layer.adapt_mean))) < 1e-5
        assert np.max(np.abs(stats["variance"] - np.asarray(layer.adapt_variance))) < 1e-4
    assert int(whole["count"]) == data.size // whole["mean"].size


ADAPT_SPEC = """
name: adapt
inputs:
  img: {shape: [28, 28, 1]}
encoder:
  - normalization
  - flatten
  - dense: {units: 10, activation: softmax}
loss: categorical_crossentropy
train: {optimizer: adam, lr: 0.001, batch_size: 64, epochs: 1, seed: 0, validation_split: 0.1}
data: {dataset: fashion_mnist, test_limit: 100}
"""


@pytest.mark.data
@pytest.mark.torch
@pytest.mark.keras
def test_training_adapts_normalization_to_the_training_split_on_both_backends(write_spec, fashion_mnist_dir, tmp_path):
    from nnspec.backends.weights import read_weights
    from nnspec.training.run import train

    spec = nnspec.load(write_spec(ADAPT_SPEC))
    stats = {}
    for backend in ("torch", "keras"):
        result = train(spec, backend=backend, limit=300, out=str(tmp_path / backend), progress=False)
        w = read_weights(f"{result.run_dir}/weights/last.safetensors")
        stats[backend] = {k.split("/")[1]: np.asarray(v) for k, v in w.items() if k.startswith("normalization/")}
    torch_stats, keras_stats = stats["torch"], stats["keras"]
    assert int(torch_stats["count"]) == int(keras_stats["count"]) == 270 * 28 * 28  # the training split only
    assert 0.2 < float(torch_stats["mean"][0]) < 0.4 and 0.05 < float(torch_stats["variance"][0]) < 0.2
    for key in ("mean", "variance"):
        assert np.max(np.abs(torch_stats[key] - keras_stats[key])) < 1e-6
