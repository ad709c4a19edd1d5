"""`nnspec predict` applies the run's recorded input transform knowingly (issue 11, item 2): input that
is already scaled is refused without --raw, and raw input is refused with --raw, each with the fix."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest

from nnspec.cli.main import main

SPEC = """name: tiny_images
inputs:
  img: {shape: [8, 8, 1]}
head:
  - flatten
  - dense: {units: 3, activation: softmax}
loss: sparse_categorical_crossentropy
train: {epochs: 1, batch_size: 32, validation_split: 0}
data: {dataset: npz, path: d.npz}
"""


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.torch
def test_predict_refuses_input_whose_range_contradicts_the_recorded_transform(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (96, 8, 8, 1), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x=images, y=rng.integers(0, 3, 96))
    (tmp_path / "s.yaml").write_text(SPEC)
    code, out, err = run("train", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "runs"), "--quiet")
    assert code == 0, err
    run_dir = out.splitlines()[0].split(": ", 1)[1]
    transform = json.loads(open(os.path.join(run_dir, "settings.json")).read())["data"]["input_transform"]
    assert transform["raw_dtype"] == "uint8" and transform["raw_range"] == [0.0, 255.0]
    assert transform["formula"] == "x * 0.00392157" and transform["model_range"] == [0.0, 1.0]

    np.save(tmp_path / "raw.npy", images[:5])
    np.save(tmp_path / "scaled.npy", images[:5].astype(np.float32) / 255)
    code, out, err = run("predict", run_dir, str(tmp_path / "raw.npy"))
    assert code == 0 and len(out.splitlines()) == 5
    assert "input transform applied: x * 0.00392157 (the run trained on uint8 values in [0, 255])" in err
    code, _, err = run("predict", run_dir, str(tmp_path / "scaled.npy"))
    assert code == 1 and "look already prepared" in err and "pass --raw to feed them unchanged" in err
    code, out, _ = run("predict", run_dir, str(tmp_path / "scaled.npy"), "--raw")
    assert code == 0 and len(out.splitlines()) == 5
    code, _, err = run("predict", run_dir, str(tmp_path / "raw.npy"), "--raw")
    assert code == 1 and "these look raw: drop --raw" in err
