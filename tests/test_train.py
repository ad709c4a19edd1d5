"""Real training on small real subsets of Fashion-MNIST, on both backends: learning, the run
directory, resume after an interruption, NaN handling, ensembles, repeatability, evaluate/predict."""

from __future__ import annotations

import io
import json
import math
import os

import numpy as np
import pytest

import nnspec
from nnspec.cli.main import main
from nnspec.training.errors import TrainingError
from nnspec.training.run import train

BACKENDS = [pytest.param("torch", marks=pytest.mark.torch), pytest.param("keras", marks=pytest.mark.keras)]

CNN = """
name: small_cnn
inputs:
  img: {shape: [28, 28, 1]}
encoder:
  - conv2d: {filters: 8, kernel_size: 3, activation: relu}
  - max_pool2d: {pool_size: 2}
  - conv2d: {filters: 16, kernel_size: 3, activation: relu}
  - max_pool2d: {pool_size: 2}
head:
  - flatten
  - dense: {units: 32, activation: relu}
  - dense: {units: 10, activation: softmax}
loss: categorical_crossentropy
train:
  optimizer: adam
  lr: 0.003
  batch_size: 32
  epochs: 2
  seed: 0
  validation_split: 0.1
data:
  dataset: fashion_mnist
  test_limit: 1000
"""

ROTATION = """
name: small_rotation
inputs:
  img: {shape: [28, 28, 1]}
encoder:
  - conv2d: {filters: 8, kernel_size: 3, activation: relu}
  - max_pool2d: {pool_size: 2}
  - conv2d: {filters: 16, kernel_size: 3, activation: relu}
  - max_pool2d: {pool_size: 2}
head:
  - flatten
  - dense: {units: 32, activation: relu}
  - dense: {units: 1}
loss: mse
train:
  optimizer: adam
  lr: 0.003
  batch_size: 32
  epochs: 4
  metrics: [mae]
  seed: 0
data:
  dataset: fashion_mnist
  test_limit: 1000
  rotate: {range: 45, target: true}
"""

DENSE = """
name: small_dense
inputs:
  img: {shape: [784]}
encoder:
  - dense: {units: 32, activation: relu}
head:
  - dense: {units: 10, activation: softmax}
loss: categorical_crossentropy
train: {epochs: 2, batch_size: 64, seed: 0}
data: {dataset: fashion_mnist, test_limit: 500}
"""


@pytest.fixture
def spec(write_spec, fashion_mnist_dir):
    def _make(text: str, extra: str = ""):
        return nnspec.load(write_spec(text + extra))

    return _make


def _files(run_dir: str) -> set[str]:
    out = set()
    for root, _, names in os.walk(run_dir):
        for n in names:
            out.add(os.path.relpath(os.path.join(root, n), run_dir))
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_cnn_learns_fashion_mnist_and_records_the_run(backend, spec, tmp_path):
    out = io.StringIO()
    result = train(spec(CNN), backend=backend, limit=2000, out=str(tmp_path), progress=out)
    assert result.metrics["test_accuracy"] > 0.5, result.metrics  # chance is 0.1
    files = _files(result.run_dir)
    for name in ("spec.yaml", "settings.json", "history.csv", "metrics.json", "weights/best.safetensors",
                 "weights/last.safetensors", "checkpoints/state.json", "plots/curves.png",
                 "plots/confusion_matrix.png"):
        assert name in files, (name, sorted(files))
    assert os.path.dirname(os.path.dirname(result.run_dir)) == str(tmp_path)
    assert not [f for f in files if ".tmp-" in f]
    header = open(os.path.join(result.run_dir, "history.csv")).readline().strip().split(",")
    assert header == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"]
    assert [r["epoch"] for r in result.history] == [1, 2]
    settings = json.load(open(os.path.join(result.run_dir, "settings.json")))
    from nnspec.backends import get_backend

    auto = get_backend(backend).select_device("auto")  # cuda on a GPU machine, as `device: auto` promises
    assert settings["backend"] == backend and settings["device"] == auto and settings["batch_size"] == 32
    assert settings["examples"]["train"] == 1800 and settings["examples"]["test"] == 1000
    assert backend in settings["versions"] or "keras" in settings["versions"]
    text = out.getvalue()
    assert "epoch 1/2" in text and "epoch 2/2" in text and "test_accuracy" in text and result.run_dir in text


@pytest.mark.parametrize("backend", BACKENDS)
def test_rotation_regression_beats_predicting_zero(backend, spec, tmp_path):
    result = train(spec(ROTATION), backend=backend, limit=2000, out=str(tmp_path), progress=False)
    with np.load(os.path.join(result.run_dir, "predictions.npz")) as f:
        true = f["true/output"]
    baseline = float(np.abs(true).mean())  # about 22.5 degrees for angles in [-45, 45]
    assert result.metrics["test_mae"] < 0.8 * baseline, (result.metrics, baseline)
    assert "plots/predicted_vs_true.png" in _files(result.run_dir)


class Interrupt:
    def __init__(self, after: int, exc=KeyboardInterrupt):
        self.after, self.exc = after, exc

    def __call__(self, epoch, row):
        if epoch == self.after:
            raise self.exc()


@pytest.mark.parametrize("backend", BACKENDS)
def test_resume_continues_after_an_interruption(backend, spec, tmp_path):
    s = spec(DENSE, "")
    with pytest.raises(KeyboardInterrupt):
        train(s, backend=backend, epochs=3, limit=1500, out=str(tmp_path), progress=False, callbacks=[Interrupt(1)])
    (run_dir,) = [os.path.join(tmp_path, "small_dense", d) for d in os.listdir(tmp_path / "small_dense")]
    state = json.load(open(os.path.join(run_dir, "checkpoints", "state.json")))
    assert state["epoch"] == 1 and state["status"] == "interrupted"
    assert not os.path.exists(os.path.join(run_dir, "metrics.json"))
    resumed = train(None, resume=run_dir, progress=False)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    assert resumed.metrics["test_accuracy"] > 0.5
    assert json.load(open(os.path.join(run_dir, "checkpoints", "state.json")))["status"] == "finished"
    if backend == "torch":  # torch resumes bit-exactly: same result as never stopping
        whole = train(s, backend=backend, epochs=3, limit=1500, out=str(tmp_path / "whole"), progress=False)
        assert [r["loss"] for r in whole.history] == [r["loss"] for r in resumed.history]
        assert whole.metrics["test_loss"] == resumed.metrics["test_loss"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_loss_stops_with_epoch_and_step_and_keeps_last_good_checkpoint(backend, spec, tmp_path):
    # Epoch 1 trains normally; the step schedule then multiplies the learning rate by 1e30 (weights overflow).
    s = spec(DENSE.replace("train: {epochs: 2, batch_size: 64, seed: 0}",
                           "train: {epochs: 3, batch_size: 64, seed: 0, optimizer: sgd, lr: 0.05, "
                           "schedule: {type: step, step_size: 1, gamma: 1.0e+30}}"))
    err = io.StringIO()
    code = main(["train", s.path, "--backend", backend, "--limit", "1000", "--out", str(tmp_path)], io.StringIO(), err)
    assert code == 1
    message = err.getvalue().strip()
    assert message.count("\n") == 0 and "Traceback" not in message
    assert "at epoch 2, step" in message and "last good checkpoint (epoch 1)" in message
    (run_dir,) = [os.path.join(tmp_path, "small_dense", d) for d in os.listdir(tmp_path / "small_dense")]
    from nnspec.backends.weights import read_weights

    weights = read_weights(os.path.join(run_dir, "weights", "last.safetensors"))
    assert all(np.isfinite(w).all() for w in weights.values())
    state = json.load(open(os.path.join(run_dir, "checkpoints", "state.json")))
    assert state["epoch"] == 1 and state["status"] == "failed"
    assert len(open(os.path.join(run_dir, "history.csv")).read().strip().splitlines()) == 2


@pytest.mark.torch
def test_ensemble_of_three_members(spec, tmp_path):
    result = train(spec(DENSE), backend="torch", epochs=1, limit=1000, ensemble=3, out=str(tmp_path), progress=False)
    e = json.load(open(os.path.join(result.run_dir, "ensemble.json")))
    assert e["members"] == 3 and e["member_seeds"] == [0, 1, 2] and len(e["member_test_accuracy"]) == 3
    probs, true = [], None
    for i in range(3):
        member = os.path.join(result.run_dir, "members", str(i))
        assert {"metrics.json", "weights/best.safetensors", "history.csv"} <= _files(member)
        m = json.load(open(os.path.join(member, "metrics.json")))
        assert m["test_accuracy"] == pytest.approx(e["member_test_accuracy"][i])
        with np.load(os.path.join(member, "predictions.npz")) as f:
            probs.append(f["pred/output"])
            true = f["true/output"]
    assert len({json.load(open(os.path.join(result.run_dir, "members", str(i), "settings.json")))["seed"]
                for i in range(3)}) == 3
    expected = float((np.mean(probs, axis=0).argmax(1) == true).mean())
    assert e["ensemble_test_accuracy"] == pytest.approx(expected)
    assert 0 <= e["confidence"]["mean_disagreement"] <= 1 and e["most_disagreed"]
    assert result.metrics["test_accuracy"] == pytest.approx(expected)
    assert "plots/confusion_matrix.png" in _files(result.run_dir)
    with np.load(os.path.join(result.run_dir, "predictions.npz")) as f:
        assert f["confidence"].shape == (500,) and f["disagreement"].max() <= 1
        assert float(f["confidence"].mean()) == pytest.approx(e["confidence"]["mean_max_probability"], rel=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_seeded_cpu_run_repeats_exactly(backend, spec, tmp_path):
    s = spec(DENSE)
    a = train(s, backend=backend, epochs=1, limit=1000, out=str(tmp_path / "a"), progress=False)
    b = train(s, backend=backend, epochs=1, limit=1000, out=str(tmp_path / "b"), progress=False)
    assert a.history[0]["loss"] == b.history[0]["loss"] and a.metrics["test_loss"] == b.metrics["test_loss"]
    c = train(s, backend=backend, epochs=1, limit=1000, seed=1, out=str(tmp_path / "c"), progress=False)
    assert c.history[0]["loss"] != a.history[0]["loss"]


@pytest.mark.torch
def test_evaluate_and_predict_commands(spec, tmp_path):
    result = train(spec(CNN), backend="torch", epochs=1, limit=1000, out=str(tmp_path), progress=False)
    out, err = io.StringIO(), io.StringIO()
    assert main(["evaluate", result.run_dir, "--format", "json"], out, err) == 0, err.getvalue()
    scores = json.loads(out.getvalue())
    assert scores["test_accuracy"] == pytest.approx(result.metrics["test_accuracy"])
    assert scores["test_loss"] == pytest.approx(result.metrics["test_loss"], rel=1e-5)

    from nnspec.data import load_data

    raw = load_data(spec(CNN), limit=10)
    # Raw uint8 images, as a user would have them: the run's own scaling is applied.
    images = np.clip(np.rint(raw.test.x[:4] * 255), 0, 255).astype(np.uint8)
    np.save(tmp_path / "four.npy", images)
    from PIL import Image

    Image.fromarray(images[0, :, :, 0]).save(tmp_path / "one.png")
    out = io.StringIO()
    assert main(["predict", result.run_dir, str(tmp_path / "four.npy"), str(tmp_path / "one.png"),
                 "--format", "json"], out, io.StringIO()) == 0
    preds = json.loads(out.getvalue())["predictions"]
    assert len(preds) == 5
    with np.load(os.path.join(result.run_dir, "predictions.npz")) as f:
        saved = f["pred/output"][:4]
    for i in range(4):
        top = preds[i]["heads"]["output"]["classes"][0]
        assert top["index"] == int(saved[i].argmax())
        assert top["probability"] == pytest.approx(float(saved[i].max()), abs=1e-4)
    assert preds[4]["heads"]["output"]["classes"][0]["index"] == preds[0]["heads"]["output"]["classes"][0]["index"]
    text = io.StringIO()
    assert main(["predict", result.run_dir, str(tmp_path / "one.png")], text, io.StringIO()) == 0
    assert "one.png:" in text.getvalue() and "%" in text.getvalue()


@pytest.mark.torch
def test_cli_errors_are_one_line(spec, tmp_path):
    s = spec(DENSE)
    err = io.StringIO()
    assert main(["train", s.path, "--epochs", "0"], io.StringIO(), err) == 2
    assert err.getvalue().strip() == "error: --epochs must be >= 1 (got 0)"
    import torch

    if not torch.cuda.is_available():
        err = io.StringIO()
        assert main(["train", s.path, "--device", "cuda", "--out", str(tmp_path)], io.StringIO(), err) == 1
        assert err.getvalue().startswith("error: --device cuda") and err.getvalue().count("\n") == 1
    with pytest.raises(TrainingError, match="unknown backend"):
        train(s, backend="jax", out=str(tmp_path), progress=False)


@pytest.mark.torch
def test_torch_losses_match_the_numpy_definitions():
    import torch

    from nnspec.backends.torch.loop import head_loss
    from nnspec.training import metrics as M
    from nnspec.training.settings import LossSettings

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(16, 5)).astype(np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = rng.integers(0, 5, 16)
    cases = [
        (probs, y, LossSettings("categorical_crossentropy", label_smoothing=0.1)),
        (logits, y, LossSettings("sparse_categorical_crossentropy", from_logits=True)),
        (probs[:, :1], (y[:, None] > 2).astype(np.float32), LossSettings("binary_crossentropy")),
        (logits[:, :2], logits[:, 2:4] * 2, LossSettings("huber", delta=1.0)),
        (logits[:, :2], logits[:, 2:4], LossSettings("mae")),
    ]
    for pred, target, loss in cases:
        t = torch.from_numpy(target) if target.dtype != np.int64 else torch.from_numpy(target)
        got = float(head_loss(torch.from_numpy(pred), t, loss))
        assert got == pytest.approx(M.loss_value(pred, target, loss), rel=1e-5), loss
    assert not math.isnan(got)


@pytest.mark.parametrize("backend", BACKENDS)
def test_early_stopping_restores_the_best_epoch_and_schedules_set_the_rate(backend, spec, tmp_path):
    # No epoch can beat the first by 0.5 accuracy: training stops after `patience` more epochs.
    s = spec(DENSE.replace("train: {epochs: 2, batch_size: 64, seed: 0}",
                           "train: {epochs: 6, batch_size: 64, seed: 0, schedule: {type: step, step_size: 1, gamma: 0.5},"
                           " early_stopping: {monitor: val_accuracy, patience: 2, min_delta: 0.5}}"))
    result = train(s, backend=backend, limit=800, out=str(tmp_path), progress=False)
    assert [r["epoch"] for r in result.history] == [1, 2, 3] and result.stopped_early
    assert [r["lr"] for r in result.history] == pytest.approx([1e-3, 5e-4, 2.5e-4])
    assert result.best_epoch == 1 and result.metrics["weights"] == "best" and result.metrics["best_epoch"] == 1
    from nnspec.backends.weights import read_weights

    best = read_weights(os.path.join(result.run_dir, "weights", "best.safetensors"))
    last = read_weights(os.path.join(result.run_dir, "weights", "last.safetensors"))
    assert any(not np.array_equal(best[k], last[k]) for k in best)
    out = io.StringIO()
    assert main(["evaluate", result.run_dir, "--format", "json"], out, io.StringIO()) == 0
    assert json.loads(out.getvalue())["test_accuracy"] == pytest.approx(result.metrics["test_accuracy"])


@pytest.mark.torch
def test_gpu_nan_check_names_the_first_bad_step():
    import torch

    from nnspec.backends.torch.loop import Loop
    from nnspec.training.errors import NonFiniteLoss

    losses = torch.tensor([0.5, 0.4, float("inf"), float("nan"), 0.0])
    Loop._check_gpu_losses(None, losses, 2, 0, 5)  # the first two steps are fine
    with pytest.raises(NonFiniteLoss, match="became inf at epoch 1, step 3 \\(of 5\\)"):
        Loop._check_gpu_losses(None, losses, 5, 0, 5)


@pytest.mark.torch
@pytest.mark.keras
def test_a_torch_run_scores_the_same_on_keras(spec, tmp_path):
    result = train(spec(DENSE), backend="torch", epochs=1, limit=1000, out=str(tmp_path), progress=False)
    out, err = io.StringIO(), io.StringIO()
    assert main(["evaluate", result.run_dir, "--backend", "keras", "--format", "json"], out, err) == 0, err.getvalue()
    scores = json.loads(out.getvalue())
    assert scores["backend"] == "keras"
    assert scores["test_accuracy"] == pytest.approx(result.metrics["test_accuracy"], abs=1e-3)
    assert scores["test_loss"] == pytest.approx(result.metrics["test_loss"], rel=1e-4)


VARIANTS = [
    "optimizer: {type: sgd, lr: 0.05, momentum: 0.9, nesterov: true, weight_decay: 0.0001}, gradient_clip: 1.0",
    "optimizer: {type: rmsprop, lr: 0.001, rho: 0.9}, schedule: {type: cosine, min_lr: 0.0001}",
    "optimizer: {type: adamw, lr: 0.002}, schedule: {type: one_cycle, max_lr: 0.01}, label_smoothing: 0.1",
    "optimizer: adam, schedule: {type: reduce_on_plateau, patience: 0, factor: 0.5}, metrics: [accuracy, top_k_accuracy]",
    "optimizer: adam, schedule: {type: exponential, gamma: 0.5}",
]


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_optimiser_and_schedule_trains(backend, spec, tmp_path):
    for i, variant in enumerate(VARIANTS):
        text = DENSE.replace("train: {epochs: 2, batch_size: 64, seed: 0}",
                             f"train: {{epochs: 2, batch_size: 64, seed: 0, {variant}}}")
        result = train(spec(text.replace("small_dense", f"variant{i}")), backend=backend, limit=600,
                       out=str(tmp_path), progress=False)
        losses = [r["loss"] for r in result.history]
        assert all(math.isfinite(v) for v in losses) and losses[1] < losses[0], (variant, losses)
        assert result.metrics["test_accuracy"] > 0.3, (variant, result.metrics)
        lrs = [r["lr"] for r in result.history]
        if "cosine" in variant:
            assert lrs == pytest.approx([0.001, 0.00055])
        if "exponential" in variant:
            assert lrs == pytest.approx([0.001, 0.0005])
        if "one_cycle" in variant:
            assert lrs[0] == pytest.approx(0.01 / 25)
        if "top_k" in variant:
            assert "top_k_accuracy" in result.history[0] and "test_top_k_accuracy" in result.metrics


@pytest.mark.torch
def test_an_interrupted_ensemble_resumes_member_by_member(spec, tmp_path):
    calls = []

    def stop_in_second_member(epoch, row):
        calls.append(epoch)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(spec(DENSE), backend="torch", epochs=1, limit=600, ensemble=3, out=str(tmp_path), progress=False,
              callbacks=[stop_in_second_member])
    (run_dir,) = [os.path.join(tmp_path, "small_dense", d) for d in os.listdir(tmp_path / "small_dense")]
    first = os.path.getmtime(os.path.join(run_dir, "members", "0", "metrics.json"))
    assert not os.path.exists(os.path.join(run_dir, "members", "1", "metrics.json"))
    result = train(None, resume=run_dir, progress=False)
    assert os.path.getmtime(os.path.join(run_dir, "members", "0", "metrics.json")) == first  # not retrained
    assert [len(m.history) for m in result.members] == [1, 1, 1]
    assert json.load(open(os.path.join(run_dir, "ensemble.json")))["members"] == 3
