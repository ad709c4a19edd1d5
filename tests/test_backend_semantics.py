"""Training semantics mean the same on both backends: seeded initialisation, initialiser statistics,
regularisation penalties, frozen layers in a real training step, BatchNorm train/eval, dropout."""

from __future__ import annotations

import numpy as np
import pytest

import nnspec

pytestmark = [pytest.mark.torch, pytest.mark.keras]

STATS_SPEC = """
name: stats
inputs:
  x: {shape: [20, 16]}
encoder:
  - lstm: {units: 32, return_sequences: true}
  - gru: {units: 24, return_sequences: true}
  - conv1d: {filters: 64, kernel_size: 3, kernel_initializer: he_normal}
  - flatten
  - dense: {units: 50}
"""

EMBED_SPEC = """
name: embed
inputs:
  t: {shape: [4], dtype: int32}
encoder:
  - embedding: {input_dim: 200, output_dim: 40}
"""

TRAIN_SPEC = """
name: train_step
inputs:
  x: {shape: [6]}
encoder:
  - dense: {units: 8, activation: tanh, kernel_regularizer: l1_l2, bias_regularizer: {l2: 0.3},
            activity_regularizer: {l1: 0.05, l2: 0.02}, name: first}
  - batch_norm: {momentum: 0.9, name: frozen_bn, trainable: false}
  - dense: {units: 5, kernel_regularizer: l2, trainable: false, name: frozen}
  - batch_norm: {momentum: 0.8, name: bn}
  - dense: {units: 3, kernel_regularizer: {l1: 0.001}, name: last}
"""


def _load(text: str, name: str = "case.yaml"):
    return nnspec.load(name, text=text)


@pytest.fixture(scope="module")
def train_spec():
    return _load(TRAIN_SPEC)


def test_seeded_builds_are_repeatable_and_equal_across_backends(train_spec):
    from nnspec.backends import keras as kb
    from nnspec.backends import torch as tb

    a = tb.get_weights(tb.build(train_spec, seed=7), train_spec)
    b = tb.get_weights(tb.build(train_spec, seed=7), train_spec)
    c = tb.get_weights(tb.build(train_spec, seed=8), train_spec)
    k = kb.get_weights(kb.build(train_spec, seed=7), train_spec)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
        np.testing.assert_array_equal(a[key], k[key])
    assert not np.array_equal(a["first/kernel"], c["first/kernel"])


def test_unseeded_torch_builds_follow_torch_manual_seed(train_spec):
    import torch

    from nnspec.backends import torch as tb

    torch.manual_seed(3)
    a = tb.get_weights(tb.build(train_spec), train_spec)
    torch.manual_seed(3)
    b = tb.get_weights(tb.build(train_spec), train_spec)
    np.testing.assert_array_equal(a["first/kernel"], b["first/kernel"])


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_default_initialisers_have_keras_statistics(backend):
    from nnspec.backends import get_backend

    spec = _load(STATS_SPEC)
    mod = get_backend(backend)
    # torch always draws with nnspec's initialisers; Keras without a seed draws with its own.
    w = mod.get_weights(mod.build(spec, seed=0 if backend == "torch" else None), spec)
    dense = w["dense/kernel"]  # glorot_uniform: U(-l, l), l = sqrt(6 / (fan_in + fan_out))
    fan_in, fan_out = dense.shape
    limit = np.sqrt(6 / (fan_in + fan_out))
    assert np.abs(dense).max() <= limit
    assert np.std(dense) == pytest.approx(limit / np.sqrt(3), rel=0.05)
    assert np.all(w["dense/bias"] == 0)
    conv = w["conv1d/kernel"]  # he_normal: truncated normal, std sqrt(2 / fan_in)
    assert np.std(conv) == pytest.approx(np.sqrt(2 / (3 * 24)), rel=0.1)
    assert np.abs(conv).max() <= 2 * np.sqrt(2 / (3 * 24)) / 0.87962566103423978 + 1e-6
    rk = w["lstm/recurrent_kernel"]  # orthogonal (32, 128): orthonormal rows
    np.testing.assert_allclose(rk @ rk.T, np.eye(32), atol=1e-5)
    bias = w["lstm/bias"]  # unit_forget_bias: i=0, f=1, c=0, o=0
    np.testing.assert_array_equal(bias, np.concatenate([np.zeros(32), np.ones(32), np.zeros(64)]))
    assert w["gru/bias"].shape == (2, 72) and np.all(w["gru/bias"] == 0)
    spec = _load(EMBED_SPEC)
    e = mod.get_weights(mod.build(spec, seed=0 if backend == "torch" else None), spec)["embedding/embeddings"]
    assert np.abs(e).max() <= 0.05 and np.std(e) == pytest.approx(0.1 / np.sqrt(12), rel=0.1)


CONFIGURED_SPEC = """
name: configured
inputs:
  x: {shape: [12, 12, 32]}
encoder:
  - conv2d: {name: fan_out, filters: 64, kernel_size: 3,
             kernel_initializer: {variance_scaling: {scale: 2.0, mode: fan_out, distribution: untruncated_normal}},
             bias_initializer: {constant: {value: 0.5}}}
  - conv2d: {name: uniform, filters: 48, kernel_size: 3, kernel_initializer: {variance_scaling: {distribution: uniform}}}
  - conv2d: {name: truncated, filters: 40, kernel_size: 3, kernel_initializer: {variance_scaling: {scale: 0.5, mode: fan_avg}}}
  - flatten
  - dense: {name: narrow, units: 300, kernel_initializer: {random_normal: {mean: 0.1, stddev: 0.01}}}
"""


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_initialisers_with_settings_have_keras_statistics(backend):
    """`{variance_scaling: {scale, mode, distribution}}` and friends: torch draws with nnspec's numpy
    initialisers, an unseeded Keras build with Keras's own; both have the settings' statistics."""
    from nnspec.backends import get_backend

    spec = _load(CONFIGURED_SPEC)
    mod = get_backend(backend)
    w = mod.get_weights(mod.build(spec, seed=0 if backend == "torch" else None), spec)
    k = w["fan_out/kernel"]  # untruncated normal, variance 2 / fan_out (fan_out = 3 * 3 * 64)
    assert np.std(k) == pytest.approx(np.sqrt(2 / (9 * 64)), rel=0.03)
    assert np.abs(k).max() > 2.5 * np.sqrt(2 / (9 * 64))  # not truncated
    assert np.all(w["fan_out/bias"] == 0.5)
    u = w["uniform/kernel"]  # uniform, variance 1 / fan_in: U(-l, l), l = sqrt(3 / (9 * 64))
    limit = np.sqrt(3 / (9 * 64))
    assert np.abs(u).max() <= limit and np.abs(u).max() > 0.99 * limit
    t = w["truncated/kernel"]  # truncated normal (Keras's default), variance 0.5 / fan_avg
    std = np.sqrt(0.5 / (9 * (48 + 40) / 2))
    assert np.std(t) == pytest.approx(std, rel=0.05)
    assert np.abs(t).max() <= 2 * std / 0.87962566103423978 + 1e-6
    n = w["narrow/kernel"]
    assert np.mean(n) == pytest.approx(0.1, abs=1e-3) and np.std(n) == pytest.approx(0.01, rel=0.03)


@pytest.mark.keras
def test_left_out_initializer_settings_take_keras_defaults_in_keras_builds():
    """`{constant: {}}` is Constant(0.0) (Keras's own config cannot leave `value` out; an imported
    Constant(0.0) is written so), `{random_uniform: {maxval: 0.1}}` keeps minval -0.05."""
    from nnspec.backends import keras as kb

    spec = _load("inputs: {x: {shape: [64]}}\nencoder:\n  - dense: {name: d, units: 400, bias_initializer: {constant: {}},"
                 " kernel_initializer: {random_uniform: {maxval: 0.1}}}\n")
    w = kb.get_weights(kb.build(spec, seed=None), spec)
    assert np.all(w["d/bias"] == 0)
    assert -0.05 <= w["d/kernel"].min() < -0.049 and 0.099 < w["d/kernel"].max() <= 0.1


def test_a_wrong_initializer_setting_is_a_located_error():
    problems = nnspec.check("bad.yaml", text=CONFIGURED_SPEC.replace("mode: fan_out", "mode: sideways"))
    assert len(problems) == 1 and problems[0].line == 7 and "kernel_initializer" in str(problems[0])


def _same_weights(spec, seed=0):
    from nnspec.backends import keras as kb
    from nnspec.backends import torch as tb

    return tb.build(spec, seed=seed), kb.build(spec, seed=seed)


def test_regularisers_add_the_same_penalty_in_both(train_spec):
    import torch

    from nnspec.backends import torch as tb

    tm, km = _same_weights(train_spec)
    x = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    tm.eval()
    with torch.no_grad():
        tm(torch.from_numpy(x))
        torch_penalty = float(tm.regularization_loss())
        first = tm.layers["first"](torch.from_numpy(x)).numpy()
    km(x, training=False)
    keras_penalty = float(sum(float(v) for v in km.losses))
    assert torch_penalty == pytest.approx(keras_penalty, rel=1e-5)
    # by hand: l1_l2 (0.01 each) on the kernel, l2 0.3 on the bias, activity l1/l2 per example,
    # l1 0.001 on the last kernel; the frozen layer's l2 is not counted (Keras: trainable weights only)
    w = tb.get_weights(tm, train_spec)
    k, b, last = w["first/kernel"], w["first/bias"], w["last/kernel"]
    expected = (0.01 * np.abs(k).sum() + 0.01 * np.square(k).sum() + 0.3 * np.square(b).sum()
                + (0.05 * np.abs(first).sum() + 0.02 * np.square(first).sum()) / len(x) + 0.001 * np.abs(last).sum())
    assert torch_penalty == pytest.approx(float(expected), rel=1e-5)


def test_a_frozen_layer_does_not_change_in_a_real_training_step(train_spec):
    import keras
    import torch

    from nnspec.backends import keras as kb
    from nnspec.backends import torch as tb

    tm, km = _same_weights(train_spec)
    before = tb.get_weights(tm, train_spec)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 6)).astype(np.float32)
    y = rng.standard_normal((8, 3)).astype(np.float32)
    # torch: one SGD step on mse + regularisation, in training mode
    tm.train()
    opt = torch.optim.SGD([p for p in tm.parameters() if p.requires_grad], lr=0.1)
    loss = torch.mean((tm(torch.from_numpy(x)) - torch.from_numpy(y)) ** 2) + tm.regularization_loss()
    opt.zero_grad()
    loss.backward()
    opt.step()
    after_t = tb.get_weights(tm, train_spec)
    # keras: the same step
    km.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
    km.train_on_batch(x, y)
    after_k = kb.get_weights(km, train_spec)
    for key in before:
        frozen = key.startswith(("frozen/", "frozen_bn/"))
        for after in (after_t, after_k):
            if frozen:
                np.testing.assert_array_equal(after[key], before[key], err_msg=key)
        if not frozen and not key.endswith("moving_variance"):
            assert not np.array_equal(after_t[key], before[key]), f"{key} did not train"
        # the same step gives the same new weights in both frameworks
        np.testing.assert_allclose(after_t[key], after_k[key], atol=1e-5, err_msg=key)


def test_batch_norm_train_and_eval_behave_as_keras(train_spec):
    import keras
    import torch

    from nnspec.backends import keras as kb
    from nnspec.backends import torch as tb

    tm, km = _same_weights(train_spec, seed=3)
    x = np.random.default_rng(2).standard_normal((16, 6)).astype(np.float32)
    tm.train()
    with torch.no_grad():
        yt = tm(torch.from_numpy(x)).numpy()
    yk = keras.ops.convert_to_numpy(km(x, training=True))
    np.testing.assert_allclose(yt, yk, atol=1e-5)  # batch statistics
    wt, wk = tb.get_weights(tm, train_spec), kb.get_weights(km, train_spec)
    assert not np.allclose(wt["bn/moving_mean"], 0)  # updated with momentum 0.8 (Keras meaning)
    for key in ("bn/moving_mean", "bn/moving_variance", "frozen_bn/moving_mean", "frozen_bn/moving_variance"):
        np.testing.assert_allclose(wt[key], wk[key], atol=1e-6, err_msg=key)
    tm.eval()
    with torch.no_grad():
        et = tm(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(et, keras.ops.convert_to_numpy(km(x, training=False)), atol=1e-5)  # moving statistics
    assert not np.allclose(et, yt)


def test_dropout_and_spatial_dropout_follow_train_and_eval():
    import torch

    from nnspec.backends import torch as tb

    spec = _load("name: d\ninputs:\n  x: {shape: [6, 6, 8]}\nencoder:\n  - spatial_dropout2d: 0.5\n  - dropout: 0.25\n")
    model = tb.build(spec, seed=0)
    x = torch.ones(4, 6, 6, 8)
    model.eval()
    assert torch.equal(model(x), x)
    model.train()
    torch.manual_seed(0)
    y = model(x)
    assert not torch.equal(y, x)
    kept = y != 0
    # spatial dropout drops whole channels: a channel is either all zero or has survivors everywhere
    per_channel = (y.sum(dim=(1, 2)) == 0)
    assert per_channel.any()
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / (0.5 * 0.75)))
