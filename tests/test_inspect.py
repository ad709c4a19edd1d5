"""`nnspec inspect` on real runs: the course CNN trained for one epoch on 2,000 Fashion-MNIST images."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

CNN = str(ROOT / "specs" / "fashion_mnist_cnn.yaml")
DENSE = str(ROOT / "specs" / "fashion_mnist_dense.yaml")


def train(spec: str, backend: str, out, limit: int = 2000) -> str:
    import nnspec

    return nnspec.train(spec, backend=backend, epochs=1, limit=limit, out=str(out), progress=False).run_dir


def test_data(run_dir: str):
    """The run's test images and integer labels, loaded independently of inspect."""
    import nnspec
    from nnspec.data import load_data
    from nnspec.training.run import load_run_spec
    from nnspec.training.rundir import RunDir

    run = RunDir.open(run_dir)
    settings = run.read_settings()
    spec = load_run_spec(run, settings)
    splits = load_data(spec, limit=settings.limit, seed=settings.seed, validation_split=settings.validation_split)
    y = np.asarray(splits.test.y)
    return nnspec.load(spec), np.asarray(splits.test.x), (y.argmax(axis=1) if y.ndim == 2 else y)


def torch_model(spec, run_dir: str):
    from nnspec.backends import get_backend
    from nnspec.backends.weights import load_weights

    model = get_backend("torch").build(spec, seed=1)
    load_weights(model, spec, os.path.join(run_dir, "weights", "best.safetensors"))
    return model.eval()


test_data.__test__ = False  # a helper, not a test


@pytest.fixture(scope="module")
def torch_run(tmp_path_factory, fashion_mnist_dir):
    pytest.importorskip("torch")
    return train(CNN, "torch", tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def inspected(torch_run, tmp_path_factory):
    from nnspec.inspect import inspect_run

    return inspect_run(torch_run, images=4, scan=600, misclassified=12, out=str(tmp_path_factory.mktemp("pictures")))


@pytest.mark.torch
def test_every_picture_is_a_png_of_sensible_size(inspected):
    from PIL import Image

    kinds = [p.kind for p in inspected.pictures]
    assert kinds == ["filters", "feature_maps", "misclassified", "grad_cam"]
    names = sorted(os.listdir(inspected.out_dir))
    assert names == ["feature_maps_conv2d.png", "filters_conv2d.png", "grad_cam_conv2d_2.png", "misclassified.png"]
    for picture in inspected.pictures:
        with Image.open(picture.path) as img:
            img.verify()
        with Image.open(picture.path) as img:
            width, height = img.size
            assert img.format == "PNG"
            assert 300 <= width <= 4000 and 150 <= height <= 4000, (picture.kind, img.size)
            # not a blank canvas: a real picture has many grey levels
            assert len(np.unique(np.asarray(img.convert("L")))) > 50


@pytest.mark.torch
def test_filter_grid_has_one_cell_per_filter_of_the_first_conv(inspected, torch_run):
    from nnspec.backends.weights import read_weights

    filters = inspected.picture("filters")
    assert filters.layer == "conv2d" and filters.cells == 8 and filters.shape == (3, 3, 1, 8)
    kernel = read_weights(os.path.join(torch_run, "weights", "best.safetensors"))["conv2d/kernel"]
    np.testing.assert_array_equal(inspected.filters.kernels, np.transpose(kernel, (3, 0, 1, 2)))


@pytest.mark.torch
def test_feature_maps_match_shape_inference_and_a_numpy_convolution(inspected, torch_run):
    from nnspec.backends.weights import read_weights

    spec, x, y = test_data(torch_run)
    maps = inspected.feature_maps
    assert maps.shape == (4, *spec.analysis.nodes["conv2d"].output_shape[1:]) == (4, 26, 26, 8)
    # one test image of each class in turn
    assert list(y[inspected.image_indices]) == [0, 1, 2, 3]
    weights = read_weights(os.path.join(torch_run, "weights", "best.safetensors"))
    k, b = weights["conv2d/kernel"], weights["conv2d/bias"]
    image = x[inspected.image_indices[1], ..., 0]
    expected = np.zeros((26, 26, 8), np.float32)
    for i in range(3):
        for j in range(3):
            expected += image[i : i + 26, j : j + 26, None] * k[i, j, 0][None, None, :]
    expected = np.maximum(expected + b, 0)  # relu
    np.testing.assert_allclose(maps[1], expected, atol=1e-5)


@pytest.mark.torch
def test_feature_maps_of_a_chosen_layer(torch_run, tmp_path):
    from nnspec.inspect import inspect_run

    spec, _, _ = test_data(torch_run)
    result = inspect_run(torch_run, layer="max_pooling2d_1", images=3, scan=50, out=str(tmp_path), grad_cam=False)
    assert result.feature_maps.shape == (3, *spec.analysis.nodes["max_pooling2d_1"].output_shape[1:]) == (3, 5, 5, 16)
    assert (tmp_path / "feature_maps_max_pooling2d_1.png").exists()
    assert result.picture("grad_cam") is None


@pytest.mark.torch
def test_misclassified_examples_really_are_misclassified(inspected, torch_run):
    import torch

    spec, x, y = test_data(torch_run)
    shown = inspected.misclassified
    assert 0 < len(shown) <= 12 and inspected.misclassified_total >= len(shown)
    with torch.no_grad():
        predicted = torch_model(spec, torch_run)(torch.as_tensor(x[shown])).numpy().argmax(axis=1)
    assert (predicted != y[shown]).all()
    np.testing.assert_array_equal(predicted, inspected.misclassified_predictions)
    with torch.no_grad():
        all_pred = torch_model(spec, torch_run)(torch.as_tensor(x[:600])).numpy().argmax(axis=1)
    assert inspected.misclassified_total == int((all_pred != y[:600]).sum())
    assert inspected.accuracy == pytest.approx(float((all_pred == y[:600]).mean()))


@pytest.mark.torch
def test_grad_cam_maps_are_in_unit_range_at_input_size(inspected):
    assert inspected.cam_layer == "conv2d_2"  # the last conv layer
    cams = inspected.cams
    assert cams.shape == (4, 28, 28)
    assert cams.min() >= 0.0 and cams.max() <= 1.0
    assert all(c.max() == pytest.approx(1.0) for c in cams if c.max() > 0)
    assert any(c.max() > 0 for c in cams)
    np.testing.assert_array_equal(inspected.cam_classes, inspected.image_predictions)


@pytest.mark.torch
def test_cli_writes_pictures_and_reports_them(torch_run, tmp_path):
    from nnspec.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    code = main(["inspect", torch_run, "-o", str(tmp_path), "--images", "2", "--scan", "100"], out=out, err=err)
    assert code == 0, err.getvalue()
    report = out.getvalue()
    for name in ("filters_conv2d.png", "feature_maps_conv2d.png", "misclassified.png", "grad_cam_conv2d_2.png"):
        assert (tmp_path / name).exists()
        assert str(tmp_path / name) in report
    assert "(26, 26, 8)" in report and "accuracy on the first 100 test images" in report


@pytest.mark.torch
def test_cli_default_output_is_inside_the_run(torch_run):
    from nnspec.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    assert main(["inspect", torch_run, "--images", "1", "--scan", "20", "--no-grad-cam"], out=out, err=err) == 0
    assert sorted(os.listdir(os.path.join(torch_run, "inspect"))) == [
        "feature_maps_conv2d.png",
        "filters_conv2d.png",
        "misclassified.png",
    ]


def _error(argv) -> str:
    from nnspec.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    assert main(argv, out=out, err=err) == 1
    message = err.getvalue()
    assert message.startswith("error: ") and message.count("\n") == 1 and "Traceback" not in message
    return message


@pytest.mark.torch
def test_unknown_layer_suggests_the_closest(torch_run):
    assert "has no layer `conv_2d_1`; did you mean `conv2d_1`?" in _error(
        ["inspect", torch_run, "--layer", "conv_2d_1"]
    )
    assert "did you mean `conv2d_1` or `conv2d_2`?" in _error(["inspect", torch_run, "--layer", "conv2d_x"])
    assert "the layers are: conv2d, max_pooling2d" in _error(["inspect", torch_run, "--layer", "zzz"])
    assert "no (height, width, channels) output" in _error(["inspect", torch_run, "--layer", "dense"])
    assert "is not a conv2d layer" in _error(["inspect", torch_run, "--filters-layer", "max_pooling2d"])


@pytest.mark.torch
def test_runs_that_cannot_be_inspected_say_why(torch_run, tmp_path):
    assert "no such run directory" in _error(["inspect", str(tmp_path / "nowhere")])
    assert "is not a run directory" in _error(["inspect", str(tmp_path)])

    no_weights = tmp_path / "no_weights"
    shutil.copytree(torch_run, no_weights)
    shutil.rmtree(no_weights / "weights")
    assert "has no best weights" in _error(["inspect", str(no_weights)])

    regression = tmp_path / "regression"
    shutil.copytree(torch_run, regression, ignore=shutil.ignore_patterns("inspect"))
    settings = json.loads((regression / "settings.json").read_text())
    settings["task"], settings["losses"]["output"]["type"] = "regression", "mse"
    (regression / "settings.json").write_text(json.dumps(settings))
    assert "is not a classification run" in _error(["inspect", str(regression)])

    ensemble = tmp_path / "ensemble"
    shutil.copytree(torch_run, ensemble, ignore=shutil.ignore_patterns("inspect"))
    settings = json.loads((ensemble / "settings.json").read_text())
    settings["ensemble"] = 3
    (ensemble / "settings.json").write_text(json.dumps(settings))
    assert "is an ensemble; inspect one member" in _error(["inspect", str(ensemble)])


@pytest.mark.torch
def test_a_network_without_convolutions_is_refused(tmp_path, fashion_mnist_dir):
    run = train(DENSE, "torch", tmp_path, limit=300)
    assert "has no conv2d layer" in _error(["inspect", run])


def test_importing_inspect_loads_no_framework():
    code = (
        "import sys, nnspec.inspect, nnspec.cli.inspect; "
        "print(sorted(m for m in ('torch', 'tensorflow', 'keras', 'matplotlib') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.stdout.strip() == "[]", proc.stderr


@pytest.mark.keras
@pytest.mark.torch
def test_a_keras_run_inspects_on_both_frameworks_alike(tmp_path, fashion_mnist_dir):
    from nnspec.inspect import inspect_run

    run = train(CNN, "keras", tmp_path / "runs")
    with open(os.path.join(run, "settings.json")) as fh:
        assert json.load(fh)["backend"] == "keras"
    on_keras = inspect_run(run, backend="keras", images=3, scan=300, out=str(tmp_path / "k"))
    on_torch = inspect_run(run, backend="torch", images=3, scan=300, out=str(tmp_path / "t"))
    assert on_keras.backend == "keras" and on_torch.backend == "torch"
    assert len(os.listdir(tmp_path / "k")) == 4
    np.testing.assert_array_equal(on_keras.filters.kernels, on_torch.filters.kernels)
    np.testing.assert_allclose(on_keras.feature_maps, on_torch.feature_maps, atol=1e-4)
    np.testing.assert_array_equal(on_keras.misclassified, on_torch.misclassified)
    assert on_keras.accuracy == on_torch.accuracy
    assert on_keras.cams.shape == (3, 28, 28) and 0 <= on_keras.cams.min() and on_keras.cams.max() <= 1
    np.testing.assert_allclose(on_keras.cams, on_torch.cams, atol=1e-3)
