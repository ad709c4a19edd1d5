"""Bad data is refused when it is loaded (issue 11, item 4): NaN/inf named by file, array and index;
and a run that fails before its first epoch is plainly marked failed, not left looking like a run."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from nnspec.data import load_data
from nnspec.data.errors import DataError
from nnspec.pipeline import load

SPEC = """name: tiny
inputs:
  x: {{shape: [8]}}
head:
  - dense: {{units: 3, activation: softmax}}
loss: sparse_categorical_crossentropy
train: {{epochs: 1, batch_size: 16, validation_split: 0, optimizer: {{type: sgd, lr: {lr}}}}}
data: {{dataset: npz, path: d.npz, features: pixels}}
"""


def write(tmp_path, x, lr=0.01):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", pixels=x, y=rng.integers(0, 3, len(x)))
    (tmp_path / "s.yaml").write_text(SPEC.format(lr=lr))
    return str(tmp_path / "s.yaml")


def test_nan_in_features_is_refused_at_load_naming_the_array_and_index(tmp_path):
    x = np.random.default_rng(1).random((64, 8)).astype("float32")
    x[37, 3] = np.nan
    x[50, 0] = np.inf
    with pytest.raises(DataError) as info:
        load_data(load(write(tmp_path, x)))
    err = info.value
    assert err.file.endswith("d.npz")
    assert "array `pixels` (features) holds 2 NaN/inf value(s); the first is NaN at index [37, 3]" in err.message


def test_infinite_targets_are_refused_at_load_with_their_row(tmp_path):
    np.savez(tmp_path / "d.npz", pixels=np.zeros((10, 8), "float32"), y=np.array([0.0] * 9 + [np.inf]))
    (tmp_path / "s.yaml").write_text(SPEC.format(lr=0.01).replace("sparse_categorical_crossentropy", "mse")
                                     .replace("units: 3, activation: softmax", "units: 1"))
    with pytest.raises(DataError) as info:
        load_data(load(str(tmp_path / "s.yaml")))
    assert info.value.file.endswith("d.npz")
    assert "infinite" in info.value.message and "9" in info.value.message


@pytest.mark.torch
def test_a_run_that_diverges_before_its_first_epoch_is_marked_failed(tmp_path):
    from nnspec.training.errors import TrainingError
    from nnspec.training.run import evaluate, train

    x = np.random.default_rng(1).random((64, 8)).astype("float32") * 1e6
    np.savez(tmp_path / "d.npz", pixels=x, y=np.ones(64, "float32"))
    (tmp_path / "s.yaml").write_text(SPEC.format(lr="1.0e+30").replace("sparse_categorical_crossentropy", "mse")
                                     .replace("units: 3, activation: softmax", "units: 1"))
    spec = str(tmp_path / "s.yaml")
    with pytest.raises(TrainingError, match="loss became (nan|inf)"):
        train(load(spec), backend="torch", out=str(tmp_path / "runs"), progress=False)
    (run_dir,) = [os.path.join(r, d) for r, ds, _ in os.walk(tmp_path / "runs") for d in ds if d[0].isdigit()]
    failed = json.loads(open(os.path.join(run_dir, "FAILED.json")).read())
    assert failed["failed"] and failed["before_first_epoch"] and "loss became" in failed["error"]
    with pytest.raises(TrainingError, match="failed before its first epoch"):
        evaluate(run_dir)
