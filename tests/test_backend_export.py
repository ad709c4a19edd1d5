"""`nnspec export` and `summary --backend`: ONNX checked with onnxruntime against torch, TorchScript and
.keras files reload and predict the same; counts compared with the real frameworks."""

from __future__ import annotations

import io
import pathlib

import numpy as np
import pytest

import nnspec
from nnspec.cli.main import main

ROOT = pathlib.Path(__file__).resolve().parent.parent
SPEC = ROOT / "examples" / "two_input.yaml"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A spec, a weights file (not the default seed) and the torch model's predictions on a batch."""
    import torch

    from nnspec.backends import torch as tb

    spec = nnspec.load(SPEC)
    model = tb.build(spec, seed=5).eval()
    folder = tmp_path_factory.mktemp("export")
    weights = folder / "w.safetensors"
    nnspec.save_weights(model, spec, weights)
    rng = np.random.default_rng(0)
    img = rng.standard_normal((3, 28, 28, 1)).astype(np.float32)
    meta = rng.standard_normal((3, 8)).astype(np.float32)
    with torch.no_grad():
        want = model(torch.from_numpy(img), torch.from_numpy(meta)).numpy()
    return spec, folder, weights, (img, meta), want


def _export(folder, weights, fmt, name):
    out, err = io.StringIO(), io.StringIO()
    target = folder / name
    code = main(["export", str(SPEC), "--weights", str(weights), "--format", fmt, "-o", str(target)], out, err)
    assert code == 0, err.getvalue()
    assert target.exists() and not [p for p in folder.iterdir() if p.name.startswith(".tmp")]
    return target, out.getvalue()


@pytest.mark.torch
def test_onnx_export_runs_in_onnxruntime_like_torch(trained):
    ort = pytest.importorskip("onnxruntime")
    spec, folder, weights, (img, meta), want = trained
    target, printed = _export(folder, weights, "onnx", "model.onnx")
    assert "onnxruntime agrees" in printed
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["img", "meta"]
    got = session.run(None, {"img": img, "meta": meta})[0]
    np.testing.assert_allclose(got, want, atol=1e-5)
    got1 = session.run(None, {"img": img[:1], "meta": meta[:1]})[0]  # dynamic batch
    np.testing.assert_allclose(got1, want[:1], atol=1e-5)


@pytest.mark.torch
def test_torchscript_export_reloads_and_predicts_the_same(trained):
    import torch

    spec, folder, weights, (img, meta), want = trained
    target, _ = _export(folder, weights, "torchscript", "model.pt")
    loaded = torch.jit.load(str(target))
    with torch.no_grad():
        got = loaded(torch.from_numpy(img), torch.from_numpy(meta)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.keras
@pytest.mark.torch
def test_keras_export_reloads_and_predicts_the_same(trained):
    import keras

    spec, folder, weights, (img, meta), want = trained
    target, _ = _export(folder, weights, "keras", "model.keras")
    loaded = keras.models.load_model(target)
    assert loaded.name == spec.name and [t.name for t in loaded.inputs] == ["img", "meta"]
    np.testing.assert_allclose(loaded.predict([img, meta], verbose=0), want, atol=1e-5)


def test_export_asks_for_the_size_of_a_variable_dimension(tmp_path):
    err = io.StringIO()
    code = main(["export", str(ROOT / "examples" / "text_lstm.yaml"), "--format", "onnx", "-o", str(tmp_path / "m.onnx")],
                io.StringIO(), err)
    assert code == 1 and "--dim seq=" in err.getvalue()
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("backend", [pytest.param("torch", marks=pytest.mark.torch),
                                     pytest.param("keras", marks=pytest.mark.keras)])
def test_summary_backend_prints_the_frameworks_counts_beside_nnspecs(backend):
    out = io.StringIO()
    code = main(["summary", str(ROOT / "examples" / "small_resnet.yaml"), "--backend", backend], out, io.StringIO())
    text = out.getvalue()
    assert code == 0, text
    assert "agrees with nnspec: 75,546 parameters, 74,874 trainable" in text
    assert "differs" not in text


@pytest.mark.torch
def test_compare_counts_flags_a_difference():
    from nnspec.backends.compare import CountRow

    assert not CountRow("dense", (10, 10), (12, 10)).same
    assert CountRow("dense", (10, 10), (10, 10)).same
