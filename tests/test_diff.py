"""`nnspec diff`: layers matched by structure (not automatic names), attribute and setting changes,
totals, JSON, and diff's exit codes (0 equal, 1 different)."""

from __future__ import annotations

import io
import json

from conftest import ROOT

from nnspec.cli.main import main

CNN_PATH = str(ROOT / "specs" / "fashion_mnist_cnn.yaml")
CNN = (ROOT / "specs" / "fashion_mnist_cnn.yaml").read_text()


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_activation_and_learning_rate_changes_are_reported_and_exit_1(write_spec):
    # Issue 11, item 3: this printed "0 layer change(s)" and exited 0.
    changed = write_spec(CNN.replace("activation: relu}", "activation: tanh}").replace("lr: 0.001", "lr: 0.01"))
    code, out, _ = run("diff", CNN_PATH, changed)
    assert code == 1
    assert "4 layer(s) changed, 0 added, 0 removed; 1 setting(s) changed" in out
    for name, where in (("conv2d", "encoder[0]"), ("conv2d_1", "encoder[2]"), ("conv2d_2", "encoder[4]")):
        assert f"~ {name} (Conv2D, {where}): activation relu -> tanh" in out
    assert "~ train.lr: 0.001 -> 0.01" in out


def test_equal_specs_exit_0(write_spec):
    same = write_spec("# only a comment differs\n" + CNN)
    code, out, _ = run("diff", CNN_PATH, same)
    assert code == 0 and "no differences" in out


def test_an_inserted_layer_is_one_addition_not_a_cascade_of_renamed_changes(write_spec):
    text = CNN.replace("  - max_pool2d: {pool_size: 2}\n  - conv2d: {filters: 16",
                       "  - batch_norm\n  - max_pool2d: {pool_size: 2}\n  - conv2d: {filters: 16", 1)
    code, out, _ = run("diff", CNN_PATH, write_spec(text))
    assert code == 1
    assert "0 layer(s) changed, 1 added, 0 removed" in out, out
    assert "+ batch_normalization (BatchNormalization, encoder[1]) (None, 26, 26, 8), 32 params" in out
    assert "params 25,034 -> 25,066 (+32, +0.1%)" in out


def test_strides_padding_and_initialiser_changes(write_spec):
    text = CNN.replace("{filters: 16, kernel_size: 3, activation: relu}",
                       "{filters: 16, kernel_size: 3, activation: relu, padding: same, kernel_initializer: he_normal}")
    code, out, _ = run("diff", CNN_PATH, write_spec(text))
    line = next(x for x in out.splitlines() if x.strip().startswith("~ conv2d_1"))
    assert "kernel_initializer glorot_uniform -> he_normal" in line and "padding valid -> same" in line
    assert "shape (None, 11, 11, 16) -> (None, 13, 13, 16)" in line


def test_json_output(write_spec):
    changed = write_spec(CNN.replace("loss: categorical_crossentropy", "loss: {type: categorical_crossentropy, "
                                     "label_smoothing: 0.1}").replace("{units: 64,", "{units: 128,"))
    code, out, _ = run("diff", "--format", "json", CNN_PATH, changed)
    data = json.loads(out)
    assert code == 1 and data["equal"] is False
    dense = next(c for c in data["layers"] if c["after"] == "dense")
    assert dense["kind"] == "changed" and dense["changes"]["units"] == [64, 128]
    assert {"path": "loss.label_smoothing", "before": None, "after": 0.1} in data["settings"]
    assert data["totals"]["params"] == [25034, 25034 + 18496 + 640]
