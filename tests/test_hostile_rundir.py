"""Damaged run directories and failing disks (issue 14, items 6 and 7): every command gives a one-line
error naming the file (never the CLI's internal-error path), and what was written stays usable."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil

import numpy as np
import pytest

from nnspec.cli.main import main

pytestmark = pytest.mark.torch

SPEC = """
name: tiny
inputs: {x: {shape: [4]}}
encoder:
  - dense: {units: 8, activation: relu}
head:
  - dense: {units: 3, activation: softmax}
loss: sparse_categorical_crossentropy
train: {epochs: 1, batch_size: 16, seed: 0, validation_split: 0.0}
data: {dataset: npz, path: data.npz}
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One finished one-epoch torch run (copied per test)."""
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    x = rng.random((64, 4)).astype(np.float32)
    np.savez(root / "data.npz", x=x, y=(x[:, 0] * 3).astype(np.int64).clip(0, 2),
             x_test=x[:16], y_test=(x[:16, 0] * 3).astype(np.int64).clip(0, 2))
    (root / "tiny.yaml").write_text(SPEC)
    code, _, err = run_cli(["train", str(root / "tiny.yaml"), "--out", str(root / "runs"), "--quiet"])
    assert code == 0, err
    (run_dir,) = (root / "runs" / "tiny").iterdir()
    np.save(root / "one.npy", x[:2])
    return root, run_dir


def run_cli(argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def run_copy(trained, tmp_path):
    root, run_dir = trained
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    return root, copy


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _flip(path):
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01
    path.write_bytes(bytes(data))


def _state(run):
    return json.loads((run / "checkpoints" / "state.json").read_text())


DAMAGE = {
    "state.json truncated": lambda r: _truncate(r / "checkpoints" / "state.json"),
    "state.json empty": lambda r: (r / "checkpoints" / "state.json").write_text(""),
    "state.json a list": lambda r: (r / "checkpoints" / "state.json").write_text("[1, 2]"),
    "state.json epoch text": lambda r: (r / "checkpoints" / "state.json").write_text(
        json.dumps({**_state(r), "epoch": "one"})),
    "state.json path escape": lambda r: (r / "checkpoints" / "state.json").write_text(
        json.dumps({**_state(r), "files": {"model": "../../etc/passwd", "optimizer": "x"}})),
    "state.json deleted": lambda r: (r / "checkpoints" / "state.json").unlink(),
    "settings.json truncated": lambda r: _truncate(r / "settings.json"),
    "settings.json not UTF-8": lambda r: (r / "settings.json").write_bytes(b"\xff\xfe{}"),
    "settings.json no backend": lambda r: (r / "settings.json").write_text(
        json.dumps({k: v for k, v in json.loads((r / "settings.json").read_text()).items() if k != "backend"})),
    "metrics.json truncated": lambda r: _truncate(r / "metrics.json"),
    "history.csv truncated": lambda r: _truncate(r / "history.csv", 0.8),
    "history.csv garbage": lambda r: (r / "history.csv").write_bytes(b"\x00\xff" * 10),
    "spec.yaml missing": lambda r: (r / "spec.yaml").unlink(),
    "spec.yaml not UTF-8": lambda r: (r / "spec.yaml").write_bytes(b"name: caf\xe9\n"),
    "spec.yaml truncated": lambda r: _truncate(r / "spec.yaml", 0.3),
    "optimizer checkpoint damaged": lambda r: next((r / "checkpoints").glob("optimizer-*")).write_bytes(b"junk"),
    "model checkpoint damaged": lambda r: _flip(next((r / "checkpoints").glob("model-*"))),
    "best weights bit flip": lambda r: _flip(r / "weights" / "best.safetensors"),
    "best weights truncated": lambda r: _truncate(r / "weights" / "best.safetensors"),
    "weights from another spec": lambda r: (r / "spec.yaml").write_text(
        (r / "spec.yaml").read_text().replace("units: 8", "units: 9")),
}


@pytest.mark.parametrize("damage", list(DAMAGE), ids=list(DAMAGE))
def test_damaged_run_directory_gives_one_line_errors(run_copy, damage):
    root, run = run_copy
    DAMAGE[damage](run)
    commands = {  # resume last: it may legitimately repair what it rewrites (metrics, best weights)
        "evaluate": ["evaluate", str(run)],
        "predict": ["predict", str(run), str(root / "one.npy")],
        "resume": ["train", "--resume", str(run), "--epochs", "2", "--quiet"],
    }
    failed = 0
    for name, argv in commands.items():
        code, _, err = run_cli(argv)
        assert code in (0, 1), f"{name}: exit {code}\n{err}"
        assert "internal error" not in err and "Traceback" not in err, f"{name}: {err}"
        if code == 1:
            failed += 1
            first = err.strip().splitlines()[0]
            assert "error" in first, f"{name}: {err}"
    assert failed, "the damage went unnoticed by every command"


def test_a_deleted_state_json_does_not_silently_restart(run_copy):
    _, run = run_copy
    (run / "checkpoints" / "state.json").unlink()
    code, out, err = run_cli(["train", "--resume", str(run), "--epochs", "2"])
    assert code == 1 and "state.json is missing although 1 epoch(s) are recorded" in err
    assert "epoch 1/" not in out


def test_bit_flip_in_weights_is_caught_by_the_digest(run_copy):
    from nnspec.backends.weights import WeightsFileError, read_weights

    _, run = run_copy
    assert read_weights(run / "weights" / "last.safetensors")
    _flip(run / "weights" / "last.safetensors")
    with pytest.raises(WeightsFileError, match="SHA-256"):
        read_weights(run / "weights" / "last.safetensors")


def test_a_locked_run_directory_is_refused_and_leftovers_are_cleaned(run_copy):
    from nnspec.training.errors import TrainingError
    from nnspec.training.rundir import RunDir

    _, run = run_copy
    (run / "checkpoints" / ".tmp-dead-state.json").write_text("{")
    holder = RunDir(str(run))
    holder.lock()
    try:
        assert not (run / "checkpoints" / ".tmp-dead-state.json").exists()
        with pytest.raises(TrainingError, match="in use by another nnspec process"):
            RunDir(str(run)).lock()
        code, _, err = run_cli(["train", "--resume", str(run), "--epochs", "2", "--quiet"])
        assert code == 1 and "in use by another nnspec process" in err
    finally:
        holder.unlock()
    code, _, err = run_cli(["train", "--resume", str(run), "--epochs", "2", "--quiet"])
    assert code == 0, err


def _failing_disk(monkeypatch, after: int = 0, code: int = errno.ENOSPC):
    """Make the (after+1)-th and later atomic writes fail as a full disk would."""
    import nnspec.fileio as fileio

    real = fileio._create_temp
    calls = {"n": 0}

    def create(directory, name):
        calls["n"] += 1
        if calls["n"] > after:
            raise OSError(code, os.strerror(code))
        return real(directory, name)

    monkeypatch.setattr(fileio, "_create_temp", create)


def test_full_disk_during_training_says_what_could_not_be_written_and_resume_works(trained, tmp_path, monkeypatch):
    root, _ = trained
    shutil.copy(root / "data.npz", tmp_path / "data.npz")
    (tmp_path / "tiny.yaml").write_text(SPEC.replace("epochs: 1", "epochs: 3"))
    _failing_disk(monkeypatch, after=8)  # spec, settings, then the first epoch's files succeed
    code, _, err = run_cli(["train", str(tmp_path / "tiny.yaml"), "--out", str(tmp_path / "runs"), "--quiet"])
    assert code == 1, err
    assert "could not write" in err and "No space left on device" in err and "internal error" not in err
    monkeypatch.undo()
    (run,) = (tmp_path / "runs" / "tiny").iterdir()
    assert not list(run.rglob(".tmp-*"))
    code, _, err = run_cli(["train", "--resume", str(run), "--quiet"])
    assert code == 0, err


@pytest.mark.parametrize("command", ["render", "export", "schema"])
def test_read_only_output_is_one_line(trained, tmp_path, monkeypatch, command):
    root, run = trained
    _failing_disk(monkeypatch, code=errno.EROFS)
    out = tmp_path / "out"
    argv = {
        "render": ["render", str(root / "tiny.yaml"), "-o", str(out / "d.dot")],
        "export": ["export", str(root / "tiny.yaml"), "--format", "torchscript", "-o", str(out / "m.pt")],
        "schema": ["schema", "-o", str(out / "s.json")],
    }[command]
    code, _, err = run_cli(argv)
    assert code == 1, err
    assert "could not write" in err and "internal error" not in err, err
