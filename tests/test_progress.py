"""The live progress line (issue 11, item 9): with steps_per_execution > 1 Keras reports the last step
of an execution, which can pass the epoch's total; the count and the bar stay within bounds."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT

from nnspec.training.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_step_past_the_total_is_shown_as_the_total_with_a_full_bar():
    out = Terminal()
    progress = Progress(out, epochs=2)
    progress.step(0, 80, 71, {"loss": 0.5})
    line = out.getvalue()
    assert "epoch 1/2" in line and " 71/71 " in line and "80/71" not in line
    bar = re.search(r"\[([=.]*)\]", line).group(1)
    assert bar == "=" * 24
    assert "eta    0s" in line and "-0s" not in line


@pytest.mark.keras
def test_quiet_keras_training_prints_no_framework_start_up_noise(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.random((64, 8)).astype("float32"), y=rng.integers(0, 3, 64))
    (tmp_path / "s.yaml").write_text("name: quiet\ninputs:\n  x: {shape: [8]}\nhead:\n  - dense: {units: 3, "
                                     "activation: softmax}\nloss: sparse_categorical_crossentropy\n"
                                     "train: {epochs: 1, batch_size: 32}\ndata: {dataset: npz, path: d.npz}\n")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run([sys.executable, "-m", "nnspec", "train", str(tmp_path / "s.yaml"), "--backend", "keras",
                           "--quiet", "--out", str(tmp_path / "runs")], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("run directory: ") and "final accuracy" in proc.stdout
    assert proc.stderr == ""
