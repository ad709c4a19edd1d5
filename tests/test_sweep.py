"""`nnspec sweep`: Optuna proposes, every trial is a normal run; two workers share one SQLite study."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from nnspec.cli.main import main
from nnspec.training.errors import TrainingError
from nnspec.training.sweep import parse_param
from tests.conftest import ROOT

DENSE = """
name: sweep_dense
inputs:
  img: {shape: [784]}
encoder:
  - dense: {units: 16, activation: relu}
  - dropout: 0.2
head:
  - dense: {units: 10, activation: softmax}
train: {epochs: 2, batch_size: 64, seed: 0}
data: {dataset: fashion_mnist, test_limit: 200}
"""


@pytest.mark.parametrize(
    ("text", "kind", "bounds", "log", "choices"),
    [
        ("train.lr=loguniform(1e-4,1e-2)", "float", (1e-4, 1e-2), True, ()),
        ("train.validation_split=uniform(0.1, 0.3)", "float", (0.1, 0.3), False, ()),
        ("train.batch_size=int(32,256)", "int", (32, 256), False, ()),
        ("encoder[0].units=logint(8, 64)", "int", (8, 64), True, ()),
        ("encoder[1].rate=[0.2, 0.3, 0.5]", "categorical", (0, 0), False, (0.2, 0.3, 0.5)),
        ("train.optimizer=choice(adam, sgd)", "categorical", (0, 0), False, ("adam", "sgd")),
    ],
)
def test_param_distributions(text, kind, bounds, log, choices):
    param = parse_param(text)
    assert (param.kind, (param.low, param.high), param.log, param.choices) == (kind, bounds, log, choices)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("train.lr", "expected PATH=DISTRIBUTION"),
        ("train.lr=loguniform(0,1)", "loguniform() needs bounds above 0"),
        ("train.lr=uniform(0.5,0.1)", "the lower bound must be below the upper one"),
        ("train.lr=gaussian(0,1)", "cannot read 'gaussian(0,1)' as a distribution"),
        ("train..lr=[1,2]", "`train..lr` is not a spec path"),
    ],
)
def test_param_errors_name_the_param(text, message):
    with pytest.raises(TrainingError) as info:
        parse_param(text)
    assert str(info.value).startswith(f"--param {text}: ") and message in str(info.value)


@pytest.mark.torch
def test_two_workers_share_a_sqlite_study(write_spec, fashion_mnist_dir, tmp_path):
    optuna = pytest.importorskip("optuna")
    path, out, db = write_spec(DENSE), tmp_path / "runs", tmp_path / "sweep.db"
    command = [sys.executable, "-m", "nnspec", "sweep", path, "--param", "train.lr=loguniform(1e-3,3e-2)",
               "--param", "encoder[1].rate=[0.1, 0.5]", "--trials", "4", "--metric", "val_accuracy",
               "--storage", f"sqlite:///{db}", "--study", "shared", "--out", str(out), "--limit", "400", "--seed"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    workers = [subprocess.Popen([*command, str(seed)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env) for seed in (1, 2)]
    outputs = [w.communicate(timeout=600) for w in workers]
    for worker, (stdout, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr
        assert "study `shared`: val_accuracy (maximize)" in stdout

    study = optuna.load_study(study_name="shared", storage=f"sqlite:///{db}")
    finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert 4 <= len(finished) <= 5  # the last trial of each worker may start before the other's count arrives
    by_worker = [{int(line.split()[1].rstrip(":")) for line in stdout.splitlines() if line.startswith("trial ")}
                 for stdout, _ in outputs]
    assert by_worker[0] and by_worker[1] and not by_worker[0] & by_worker[1]  # both worked, never on the same trial
    for trial in finished:
        run_dir = trial.user_attrs["run_dir"]
        settings = json.load(open(os.path.join(run_dir, "settings.json")))
        assert settings["name"] == f"shared-trial{trial.number:03d}"
        assert f"encoder[1].rate={trial.params['encoder[1].rate']}" in settings["overrides"]
        assert settings["lr"] == pytest.approx(trial.params["train.lr"])
        if trial.state.name == "COMPLETE":
            history = open(os.path.join(run_dir, "history.csv")).read().splitlines()
            column = history[0].split(",").index("val_accuracy")
            assert trial.value == pytest.approx(max(float(r.split(",")[column]) for r in history[1:]))
    folder = out / "sweep_dense" / "sweep-shared"
    assert (folder / "results.md").read_text().startswith("study `shared`: val_accuracy (maximize)")
    assert (folder / "optimization_history.png").read_bytes()[:4] == b"\x89PNG"

    listing = io.StringIO()  # every trial is a normal run: `nnspec runs` lists them
    assert main(["runs", str(out), "--format", "json"], listing, io.StringIO()) == 0
    assert len(json.loads(listing.getvalue())) == len(study.trials)
