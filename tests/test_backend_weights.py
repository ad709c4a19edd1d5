"""The neutral weights file: written from torch, loaded into Keras (and back) with the same predictions;
checked keys and shapes with clear errors; atomic writes; no framework needed to read it."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

import nnspec
from nnspec.backends.weights import WeightsFileError, read_metadata, read_weights, write_weights

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_write_and_read_round_trip_without_a_framework(tmp_path):
    weights = {"dense/kernel": np.arange(6, dtype=np.float32).reshape(2, 3), "dense/bias": np.ones(3, np.float32)}
    path = tmp_path / "w.safetensors"
    write_weights(path, weights, {"spec": "demo"})
    back = read_weights(path)
    assert set(back) == set(weights)
    for k in weights:
        np.testing.assert_array_equal(back[k], weights[k])
    meta = read_metadata(path)
    assert meta["spec"] == "demo" and meta["format_version"] == "1" and "dense/kernel" in meta["shapes"]
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]  # no temporary file left behind


def test_a_file_that_is_not_a_weights_file_is_refused(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file at all")
    with pytest.raises(WeightsFileError, match="not a readable weights file"):
        read_weights(bad)


@pytest.mark.torch
@pytest.mark.keras
def test_torch_weights_load_into_keras_with_the_same_predictions(tmp_path):
    import torch

    from nnspec.backends import keras as kb
    from nnspec.backends import torch as tb

    spec = nnspec.load(ROOT / "examples" / "two_head.yaml")
    tm = tb.build(spec, seed=11)
    # change the weights as training would, so the file is not just the seed-11 start
    with torch.no_grad():
        for p in tm.parameters():
            p.add_(0.01 * torch.randn_like(p))
    path = tmp_path / "model.safetensors"
    nnspec.save_weights(tm, spec, path)
    km = kb.build(spec)
    nnspec.load_weights(km, spec, path)
    x = np.random.default_rng(0).standard_normal((4, 28, 28, 1)).astype(np.float32)
    tm.eval()
    with torch.no_grad():
        yt = tm(torch.from_numpy(x))
    yk = km.predict(x, verbose=0)
    assert set(yk) == {"label", "angle"}
    for head in yk:
        np.testing.assert_allclose(yt[head].numpy(), yk[head], atol=1e-5)
    # and back: Keras -> file -> a fresh torch model
    path2 = tmp_path / "from_keras.safetensors"
    nnspec.save_weights(km, spec, path2)
    tm2 = tb.build(spec, seed=0).eval()
    nnspec.load_weights(tm2, spec, path2)
    with torch.no_grad():
        np.testing.assert_allclose(tm2(torch.from_numpy(x))["label"].numpy(), yk["label"], atol=1e-5)


@pytest.mark.torch
def test_loading_weights_of_another_spec_names_every_mismatch(tmp_path):
    from nnspec.backends import torch as tb

    cnn = nnspec.load(ROOT / "specs" / "fashion_mnist_cnn.yaml")
    dense = nnspec.load(ROOT / "specs" / "fashion_mnist_dense.yaml")
    path = tmp_path / "cnn.safetensors"
    nnspec.save_weights(tb.build(cnn, seed=0), cnn, path)
    with pytest.raises(WeightsFileError) as info:
        nnspec.load_weights(tb.build(dense, seed=0), dense, path)
    text = str(info.value)
    assert "saved from spec `fashion_mnist_cnn_model`" in text and "does not fit spec `fashion_mnist_model`" in text
    assert "dense/kernel has shape (288, 64), spec `fashion_mnist_model` expects" in text
    assert "conv2d/kernel is not a parameter of spec `fashion_mnist_model`" in text
