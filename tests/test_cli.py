"""The command line: exit codes, formats, and what a user reads."""

from __future__ import annotations

import io
import json

from conftest import ROOT

from nnspec.cli.main import main

CNN = str(ROOT / "specs" / "fashion_mnist_cnn.yaml")
VGG = str(ROOT / "specs" / "fashion_mnist_vgg.yaml")


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_check_ok_and_failing(write_spec):
    code, out, _ = run("check", CNN)
    assert code == 0 and "25,034 parameters" in out
    bad = write_spec("inputs: {x: {shape: [4]}}\nencoder:\n  - dense: {units: 0}\n")
    code, _, err = run("check", CNN, bad)
    assert code == 1
    assert f"{bad}:3:20: error: encoder[0].units" in err and "^" in err and "1 error" in err


def test_check_json(write_spec):
    bad = write_spec("inputs: {x: {shape: [4]}}\nencoder:\n  - dense: {unit: 3}\n")
    code, out, _ = run("check", "--format", "json", CNN, bad)
    data = json.loads(out)
    assert code == 1 and data[0]["ok"] and not data[1]["ok"]
    assert {d["code"] for d in data[1]["diagnostics"]} == {"unknown-key", "missing"}
    assert any(d["hint"] == "did you mean `units`?" for d in data[1]["diagnostics"])


def test_summary_table_json_markdown():
    code, out, _ = run("summary", VGG, "--width", "88")
    assert code == 0 and out.startswith('Model: "fashion_mnist_vgg_model"')
    assert "│ batch_normalization_2" in out and " Non-trainable params: 112 (448.00 B)" in out
    code, out, _ = run("summary", VGG, "--format", "json")
    data = json.loads(out)
    assert data["total_params"] == 437026 and data["sizes"]["total"] == "1.67 MB"
    assert data["rows"][3]["non_trainable_params"] == 16
    code, out, _ = run("summary", VGG, "--format", "markdown", "--macs", "--sections")
    assert "| Section | Layer (type) |" in out and "| encoder | `conv2d` (Conv2D)" in out and "MACs" in out


def test_summary_macs_and_memory_columns():
    code, out, _ = run("summary", CNN, "--macs", "--memory", "--width", "120")
    assert code == 0 and "MACs" in out and "Activations" in out
    # conv2d: 26*26 outputs * 3*3*1 taps * 8 filters = 48,672 MACs
    assert "48.7K" in out


def test_summary_connected_to_for_graphs():
    code, out, _ = run("summary", str(ROOT / "examples" / "two_input.yaml"), "--width", "140")
    assert "Connected to" in out and "image_features[0][0]," in out and "meta_features[0][0]" in out


def test_summary_of_bad_spec_exits_1(write_spec):
    code, _, err = run("summary", write_spec("inputs: {x: {shape: [4]}}\nencoder: [flatten, {dense: 2}]\nfoo: 1\n"))
    assert code == 1 and "unknown key `foo`" in err


def test_layers_listing_and_detail():
    code, out, _ = run("layers")
    assert code == 0 and "conv2d" in out and "filters*" in out and "lstm" in out
    code, out, _ = run("layers", "batch_normalization")
    assert code == 0 and "momentum" in out and "default 0.99" in out
    code, _, err = run("layers", "conv4d")
    assert code == 1 and "did you mean" in err


def test_resolve_fills_defaults_and_expands_blocks():
    import yaml

    code, out, _ = run("resolve", VGG)
    doc = yaml.safe_load(out)
    names = [next(iter(layer.values()))["name"] for layer in doc["layers"]]
    assert names[:3] == ["conv2d", "conv2d_1", "batch_normalization"]
    first = doc["layers"][0]["conv2d"]
    assert first["filters"] == 8 and first["padding"] == "same" and first["strides"] == 1
    assert doc["layers"][5]["conv2d"]["filters"] == 16  # ${2 * base}


def test_no_command_prints_help():
    code, out, _ = run()
    assert code == 2 and "check" in out


def test_version():
    code, out, _ = run("--version")
    assert code == 0


def test_diff_reports_changed_layers_and_totals():
    code, out, _ = run("diff", CNN, str(ROOT / "specs" / "rotation_regression_cnn.yaml"))
    assert code == 1
    assert "~ dense_1 (Dense, head[2]): activation softmax -> linear; units 10 -> 1; shape (None, 10) -> (None, 1); " \
           "params 650 -> 65 (-585)" in out
    assert "params 25,034 -> 24,449 (-585, -2.3%)" in out
    assert "~ loss.type: categorical_crossentropy -> mse" in out
