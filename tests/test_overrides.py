"""`--set PATH=VALUE` overrides: paths, YAML values, errors that name the override, and runs that record them."""

from __future__ import annotations

import io
import json
import os

import pytest

import nnspec
from nnspec.cli.main import main
from nnspec.spec.overrides import parse_override

SPEC = """
name: tiny
inputs:
  img: {shape: [28, 28, 1]}
encoder:
  - conv2d: {filters: 8, kernel_size: 3, activation: relu}
  - max_pool2d: {pool_size: 2}
  - conv2d: {filters: 16, kernel_size: 3}
  - dropout: 0.3
head:
  - flatten
  - dense: {units: 10, activation: softmax}
train: {lr: 0.001, epochs: 5}
"""


@pytest.mark.parametrize(
    ("text", "path", "value"),
    [
        ("train.lr=0.01", ("train", "lr"), 0.01),
        ("train.lr=1e-3", ("train", "lr"), 0.001),  # YAML 1.1 would read text; a command line means a number
        ("encoder[2].filters=64", ("encoder", 2, "filters"), 64),
        ("encoder[-1].rate=0.5", ("encoder", -1, "rate"), 0.5),
        ("encoder[0].kernel_size=[5, 5]", ("encoder", 0, "kernel_size"), [5, 5]),
        ("heads.out[1].units=3", ("heads", "out", 1, "units"), 3),
        ("train.early_stopping={patience: 2}", ("train", "early_stopping"), {"patience": 2}),
        ("name=", ("name",), None),
        ("data.dataset=fashion_mnist", ("data", "dataset"), "fashion_mnist"),
    ],
)
def test_override_paths_and_yaml_values(text, path, value):
    override = parse_override(text)
    assert (override.path, override.value) == (path, value)


def test_overrides_change_the_checked_model(write_spec):
    path = write_spec(SPEC)
    base = nnspec.load(path)
    spec = nnspec.load(path, overrides=["encoder[2].filters=32", "train.lr=1e-2", "train.epochs=1"])
    assert spec.overrides == ("encoder[2].filters=32", "train.lr=1e-2", "train.epochs=1")
    assert spec.train["lr"] == 0.01 and spec.train["epochs"] == 1
    # 16 -> 32 filters: (3*3*8+1)*16 more weights in the conv, and twice the flattened width into the dense layer
    assert spec.total_params - base.total_params == 73 * 16 + 11 * 11 * 16 * 10
    assert nnspec.load(base, overrides=["train.epochs=2"]).train["epochs"] == 2  # a loaded Spec takes overrides too


def test_layer_items_are_reached_through_their_type(write_spec):
    spec = nnspec.load(write_spec(SPEC), overrides=["encoder[3].rate=0.5", "head[0].name=flat",
                                                    "encoder[0].conv2d.activation=tanh"])
    assert spec.raw["encoder"][3] == {"dropout": {"rate": 0.5}}  # `- dropout: 0.3` rewritten around its primary
    assert spec.raw["head"][0] == {"flatten": {"name": "flat"}}  # a bare `- flatten` opened into a mapping
    assert "flat" in spec.graph.nodes
    assert spec.graph.nodes["conv2d"].attrs["activation"] == "tanh"


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("encoder[2].filters=abc", "--set encoder[2].filters=abc: error: encoder[2].filters: conv2d `filters` must be "
                                   "an integer (got 'abc') [type]"),
        ("encoder[9].filters=3", "--set encoder[9].filters=3: error: encoder[9].filters: `encoder` has 4 item(s); "
                                 "index 9 is out of range [value]"),
        ("train.lrr=1", "--set train.lrr=1: error: train.lrr: unknown key `lrr` in train [unknown-key]"),
        ("train.lr=[1", "--set train.lr=[1: error: train.lr: the value is not valid YAML"),
        ("train.lr", "--set train.lr: error: an override is PATH=VALUE (no `=` found) [value]"),
        ("train..lr=1", "--set train..lr=1: error: `train..lr` is not a spec path [value]"),
        ("train.lr.x=1", "--set train.lr.x=1: error: train.lr.x: `train.lr` is the value 0.001, not a mapping"),
        ("train[0]=1", "--set train[0]=1: error: train[0]: `train` is a mapping, not a list"),
    ],
)
@pytest.mark.parametrize("command", ["check", "summary", "render", "resolve", "train"])
def test_override_errors_name_the_override(write_spec, command, override, expected):
    out, err = io.StringIO(), io.StringIO()
    code = main([command, write_spec(SPEC), "--set", override], out, err)
    assert code == 1
    assert err.getvalue().startswith(expected), err.getvalue()
    assert "Traceback" not in err.getvalue()


def test_file_errors_keep_their_lines_beside_overrides(write_spec):
    path = write_spec(SPEC.replace("units: 10", "units: -1"))
    diagnostics = nnspec.check(path, overrides=["train.lr=0.5"])
    assert [(d.file, d.line, d.path) for d in diagnostics] == [(path, 12, "head[1].units")]


def test_resolve_prints_the_overridden_spec(write_spec):
    out = io.StringIO()
    assert main(["resolve", write_spec(SPEC), "--set", "train.lr=0.05", "--set", "encoder[2].filters=4"], out,
                io.StringIO()) == 0
    assert "lr: 0.05" in out.getvalue() and "filters: 4" in out.getvalue()


@pytest.mark.torch
def test_a_run_records_its_overrides_and_evaluate_reapplies_them(write_spec, fashion_mnist_dir, tmp_path):
    dense = """
name: small_dense
inputs:
  img: {shape: [784]}
encoder:
  - dense: {units: 32, activation: relu}
head:
  - dense: {units: 10, activation: softmax}
train: {epochs: 3, batch_size: 64, seed: 0}
data: {dataset: fashion_mnist, test_limit: 300}
"""
    path = write_spec(dense)
    out, err = io.StringIO(), io.StringIO()
    args = ["train", path, "--limit", "600", "--out", str(tmp_path), "--quiet",
            "--set", "encoder[0].units=12", "--set", "train.epochs=1", "--precision", "bf16"]
    assert main(args, out, err) == 0, err.getvalue()
    (run_dir,) = [os.path.join(tmp_path, "small_dense", d) for d in os.listdir(tmp_path / "small_dense")]
    settings = json.load(open(os.path.join(run_dir, "settings.json")))
    assert settings["overrides"] == ["encoder[0].units=12", "train.epochs=1"]
    assert settings["epochs"] == 1
    assert settings["precision"] == "bf16" and settings["device"] == "cpu"  # recorded; the CPU trains in fp32
    # The weights have 12 hidden units: evaluating works only if the run's spec is rebuilt with its overrides.
    out = io.StringIO()
    assert main(["evaluate", run_dir, "--format", "json"], out, err) == 0, err.getvalue()
    assert 0.0 <= json.loads(out.getvalue())["test_accuracy"] <= 1.0
    assert main(["train", "--resume", run_dir, "--set", "train.lr=1"], io.StringIO(), err) == 2
    assert "--set changes a new run" in err.getvalue()


@pytest.mark.parametrize(
    ("requested", "available", "count", "expected"),
    [
        ("auto", False, 0, "cpu"),
        ("auto", True, 2, "cuda"),
        ("cuda:1", True, 2, "cuda:1"),
        ("cuda:2", True, 2, "this framework sees 2 GPU(s): cuda:0 to cuda:1"),
        ("cuda:0", False, 0, "--device cuda:0 was asked for, but no CUDA GPU is visible"),
    ],
)
def test_devices_by_index(requested, available, count, expected):
    from nnspec.training.errors import TrainingError
    from nnspec.training.settings import resolve_device

    try:
        assert resolve_device(requested, available, count) == expected
    except TrainingError as exc:
        assert expected in str(exc)


def test_precision_and_device_settings(write_spec):
    from nnspec.training.errors import TrainingError
    from nnspec.training.settings import resolve

    spec = nnspec.load(write_spec(SPEC), overrides=["train.device=cuda:3", "train.mixed_precision=true"])
    settings = resolve(spec, "torch")
    assert (settings.device, settings.precision, settings.mixed_precision) == ("cuda:3", "bf16", True)
    assert resolve(spec, "torch", {"precision": "fp16"}).precision == "fp16"
    assert resolve(nnspec.load(spec, overrides=["train.precision=fp32"]), "torch").mixed_precision is False
    with pytest.raises(TrainingError, match="unknown device `gpu1`"):
        resolve(spec, "torch", {"device": "gpu1"})
    assert nnspec.check(spec.path, overrides=["train.device=cuda:x"])[0].message.startswith("`device` must be")
