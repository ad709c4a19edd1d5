"""The backend-neutral parts of training: settings, schedules, early stopping, metrics,
ensemble aggregation, run-directory records, device selection. No framework needed."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import nnspec
from nnspec.training import metrics as M
from nnspec.training.control import LearningRate, Monitor, one_cycle_lr
from nnspec.training.ensemble import aggregate
from nnspec.training.errors import TrainingError
from nnspec.training.rundir import RunDir
from nnspec.training.settings import LossSettings, ScheduleSettings, Settings, resolve, resolve_device

CNN = """
name: tiny
inputs:
  img: {shape: [28, 28, 1]}
encoder:
  - conv2d: {filters: 4, kernel_size: 3, activation: relu}
head:
  - flatten
  - dense: {units: 10, activation: softmax}
loss: categorical_crossentropy
"""


def _spec(write_spec, extra: str = ""):
    return nnspec.load(write_spec(CNN + extra))


def test_defaults_follow_keras(write_spec):
    s = resolve(_spec(write_spec), "torch")
    assert s.epochs == 10 and s.batch_size == 64 and s.seed == 0
    assert s.optimizer.to_json() == {"type": "adam", "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7,
                                     "weight_decay": 0.0, "lr": 0.001}
    assert s.metrics == ("accuracy",) and s.schedule == ScheduleSettings("constant", {})
    assert s.losses["output"].from_logits is False  # softmax head
    assert s.early_stopping is None


def test_settings_round_trip_through_settings_json(write_spec):
    spec = _spec(write_spec, "train: {optimizer: {type: sgd, momentum: 0.9}, schedule: {type: step, step_size: 3},"
                             " early_stopping: {patience: 2}, label_smoothing: 0.1}\n")
    s = resolve(spec, "torch")
    again = Settings.from_json(json.loads(json.dumps(s.to_json())))
    assert again == s
    assert s.to_json()["optimizer"] == {"type": "sgd", "momentum": 0.9, "nesterov": False, "weight_decay": 0.0,
                                        "lr": 0.01}
    assert s.to_json()["losses"]["output"] == {"type": "categorical_crossentropy", "weight": 1.0,
                                               "label_smoothing": 0.1, "from_logits": False}


def test_settings_are_frozen(write_spec):
    s = resolve(_spec(write_spec), "torch")
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.epochs = 3  # type: ignore[misc]
    assert s.replace(epochs=3).epochs == 3 and s.epochs == 10


def test_validation_split_has_one_source(write_spec):
    spec = _spec(write_spec, "train: {validation_split: 0.5}\ndata: {dataset: fashion_mnist, validation_split: 0.2}\n")
    assert resolve(spec, "torch").validation_split == 0.5
    from nnspec.data.load import spec_validation_split

    assert spec_validation_split(spec) == 0.5


def test_overrides_beat_the_spec(write_spec):
    spec = _spec(write_spec, "train: {epochs: 3, batch_size: 32, lr: 0.01, seed: 4, optimizer: sgd}\n")
    s = resolve(spec, "keras", {"epochs": 7, "lr": 0.5, "seed": None, "batch_size": 8})
    assert (s.epochs, s.batch_size, s.lr, s.seed) == (7, 8, 0.5, 4)
    assert s.optimizer.type == "sgd" and s.optimizer.lr == 0.5


def test_optimizer_options_that_do_not_apply_are_refused(write_spec):
    spec = _spec(write_spec, "train: {optimizer: {type: adam, nesterov: true}}\n")
    with pytest.raises(TrainingError, match="nesterov does not apply to adam"):
        resolve(spec, "torch")


def test_early_stopping_monitor_must_be_logged(write_spec):
    spec = _spec(write_spec, "train: {early_stopping: {monitor: val_mae}}\n")
    with pytest.raises(TrainingError, match="val_mae"):
        resolve(spec, "torch")
    ok = resolve(_spec(write_spec, "train: {early_stopping: {monitor: val_accuracy}}\n"), "torch")
    assert ok.early_stopping is not None
    assert ok.early_stopping.mode == "max" and ok.early_stopping.restore_best_weights is True


def test_linear_head_means_logits(write_spec):
    text = CNN.replace("dense: {units: 10, activation: softmax}", "dense: {units: 10}")
    s = resolve(nnspec.load(write_spec(text)), "torch")
    assert s.losses["output"].from_logits is True


def test_step_schedule_divides_by_ten_every_ten_epochs():
    lr = LearningRate(ScheduleSettings("step", {"step_size": 10, "gamma": 0.1}), 0.1, 30)
    assert [round(lr.for_epoch(e), 6) for e in (0, 9, 10, 19, 20)] == [0.1, 0.1, 0.01, 0.01, 0.001]


def test_cosine_and_exponential_schedules():
    cos = LearningRate(ScheduleSettings("cosine", {"min_lr": 0.0}), 1.0, 10)
    assert cos.for_epoch(0) == 1.0 and math.isclose(cos.for_epoch(5), 0.5) and cos.for_epoch(10) < 1e-12
    exp = LearningRate(ScheduleSettings("exponential", {"gamma": 0.5}), 1.0, 10)
    assert exp.for_epoch(3) == 0.125


def test_one_cycle_rises_to_the_peak_then_falls_far_below_the_start():
    total = 100
    lrs = [one_cycle_lr(s, total, 1.0) for s in range(total)]
    peak = int(np.argmax(lrs))
    assert 25 <= peak <= 32 and math.isclose(max(lrs), 1.0)
    assert math.isclose(lrs[0], 1.0 / 25) and lrs[-1] < lrs[0] / 1000


def test_reduce_on_plateau_cuts_after_patience_and_keeps_state():
    lr = LearningRate(ScheduleSettings("reduce_on_plateau", {"factor": 0.5, "patience": 1, "monitor": "val_loss",
                                                             "min_lr": 0.0}), 1.0, 10)
    for v in (1.0, 0.9, 0.95, 0.95):
        lr.epoch_end({"val_loss": v})
    assert lr.for_epoch(4) == 0.5
    again = LearningRate(lr.schedule, 1.0, 10, lr.state())
    assert again.for_epoch(5) == 0.5


def test_monitor_tracks_best_and_patience():
    m = Monitor("val_accuracy")
    assert m.mode == "max"
    assert m.update(1, {"val_accuracy": 0.5}) and m.update(2, {"val_accuracy": 0.6})
    assert not m.update(3, {"val_accuracy": 0.55}) and m.wait == 1 and m.best_epoch == 2
    assert not m.update(4, {"val_accuracy": float("nan")}) and m.wait == 2


def test_numpy_losses_match_hand_computed_values():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], dtype=np.float32)
    y = np.array([0, 1])
    ce = M.loss_value(p, y, LossSettings("categorical_crossentropy"))
    assert math.isclose(ce, -(math.log(0.7) + math.log(0.1)) / 2, rel_tol=1e-6)
    smooth = M.loss_value(p, y, LossSettings("categorical_crossentropy", label_smoothing=0.3))
    target = M.one_hot(y, 3) * 0.7 + 0.1
    assert math.isclose(smooth, float(-(target * np.log(p)).sum(1).mean()), rel_tol=1e-6)
    r = np.array([[1.0], [4.0]])
    t = np.array([[0.0], [0.0]])
    assert M.loss_value(r, t, LossSettings("mse")) == 8.5 and M.loss_value(r, t, LossSettings("mae")) == 2.5
    assert M.loss_value(r, t, LossSettings("huber", delta=1.0)) == (0.5 + 3.5) / 2
    assert M.metric_value("accuracy", p, y, LossSettings("categorical_crossentropy")) == 0.5
    assert M.metric_value("top_k_accuracy", p, y, LossSettings("categorical_crossentropy"), top_k=2) == 0.5


def test_canonical_targets_turn_one_hot_into_indices():
    y = M.one_hot(np.array([2, 0]), 3)
    assert M.canonical_targets(y, "categorical_crossentropy", (None, 3)).tolist() == [2, 0]
    assert M.canonical_targets(np.array([1.5, 2.0]), "mse", (None, 1)).shape == (2, 1)


def test_ensemble_averages_softmax_and_ranks_disagreement():
    y = np.array([0, 1, 2, 0])
    a = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8], [0.4, 0.6, 0.0]])
    b = np.array([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.9, 0.1, 0.0]])
    c = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.4, 0.3], [0.8, 0.2, 0.0]])
    out = aggregate([a, b, c], y, ["t-shirt", "trouser", "pullover"], top=2)
    assert out["member_test_accuracy"] == [0.75, 0.75, 0.75]
    assert out["ensemble_test_accuracy"] == 1.0  # averaging fixes every member's one mistake
    assert out["members"] == 3 and out["test_examples"] == 4
    assert math.isclose(out["confidence"]["mean_disagreement"], 3 * (1 / 3) / 4)
    first = out["most_disagreed"][0]
    assert first["disagreement"] == pytest.approx(1 / 3) and len(first["members"]) == 3
    assert first["true"] in ("t-shirt", "trouser", "pullover")


def test_run_directory_records_round_trip(tmp_path):
    run = RunDir.create(str(tmp_path), "net", now=0)
    other = RunDir.create(str(tmp_path), "net", now=0)
    assert run.path != other.path and os.path.dirname(run.path) == str(tmp_path / "net")
    rows = [{"epoch": 1, "loss": 0.5, "accuracy": 0.8, "lr": 0.001, "seconds": 1.5},
            {"epoch": 2, "loss": float("nan"), "accuracy": 0.9, "lr": 0.001, "seconds": 1.4}]
    run.write_history(rows)
    back = run.read_history()
    assert back[0] == rows[0] and math.isnan(back[1]["loss"])
    run.write_json("metrics.json", {"test_accuracy": np.float32(0.5), "x": float("inf")})
    assert run.read_json("metrics.json") == {"test_accuracy": 0.5, "x": "inf"}
    assert not [n for n in os.listdir(run.path) if n.startswith(".tmp")]
    with pytest.raises(TrainingError, match="not a run directory"):
        RunDir.open(str(tmp_path))


def test_checkpoint_commit_keeps_only_named_files(tmp_path):
    run = RunDir.create(str(tmp_path), "net")
    for e in (1, 2):
        open(run.checkpoint_file("model", e, "safetensors"), "wb").close()
    run.commit_checkpoint({"epoch": 2, "files": {"model": "model-2.safetensors"}})
    assert sorted(os.listdir(run.file("checkpoints"))) == ["model-2.safetensors", "state.json"]
    assert run.read_checkpoint()["epoch"] == 2


def test_device_selection():
    assert resolve_device("auto", False) == "cpu" and resolve_device("auto", True) == "cuda"
    assert resolve_device("cpu", True) == "cpu" and resolve_device("cuda", True) == "cuda"
    with pytest.raises(TrainingError, match="no CUDA GPU"):
        resolve_device("cuda", False)


def test_training_modules_stay_light():
    code = ("import sys, nnspec.training.run, nnspec.training.settings, nnspec.cli.train, nnspec.cli.evaluate, "
            "nnspec.cli.predict; bad=[m for m in ('torch','tensorflow','keras','matplotlib') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).returncode == 0


def test_train_cli_needs_a_spec_or_resume():
    import io

    from nnspec.cli.main import main

    err = io.StringIO()
    assert main(["train"], io.StringIO(), err) == 2
    assert "give a SPEC" in err.getvalue()
    err = io.StringIO()
    assert main(["evaluate", "/nonexistent/run"], io.StringIO(), err) == 1
    assert err.getvalue().startswith("error: /nonexistent/run is not a run directory")
