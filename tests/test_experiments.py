"""Named runs, `nnspec runs`, and tracking: real TensorBoard event files and a real MLflow store, read back with
their own readers."""

from __future__ import annotations

import io
import json
import os

import pytest

from nnspec.cli.main import main

DENSE = """
name: small_dense
inputs:
  img: {shape: [784]}
encoder:
  - dense: {units: 16, activation: relu}
head:
  - dense: {units: 10, activation: softmax}
train: {epochs: 2, batch_size: 64, seed: 0}
data: {dataset: fashion_mnist, test_limit: 300}
"""


def _train(path: str, out: str, *extra: str) -> str:
    stdout, err = io.StringIO(), io.StringIO()
    code = main(["train", path, "--limit", "600", "--out", out, "--quiet", *extra], stdout, err)
    assert code == 0, err.getvalue()
    return stdout.getvalue().split("run directory: ", 1)[1].split("\n", 1)[0].strip()


@pytest.mark.torch
def test_named_runs_are_tracked_listed_and_compared(write_spec, fashion_mnist_dir, tmp_path):
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    path, out = write_spec(DENSE), str(tmp_path / "runs")
    first = _train(path, out, "--name", "base", "--log", "tensorboard", "--log", "mlflow")
    second = _train(path, out, "--name", "fast", "--set", "train.lr=0.01")
    assert first == os.path.join(out, "small_dense", "base") and second.endswith("fast")
    assert _train(path, out, "--name", "base", "--epochs", "1").endswith("base-2")  # a name is never reused

    # TensorBoard: scalars per epoch, test metrics, the plots as images, the summary as text.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(os.path.join(first, "tensorboard"), size_guidance={"images": 0, "tensors": 0})
    events.Reload()
    history = [row.split(",") for row in open(os.path.join(first, "history.csv")).read().split()]
    header = history[0]
    losses = [float(row[header.index("loss")]) for row in history[1:]]
    assert [(s.step, round(s.value, 5)) for s in events.Scalars("loss")] == [(1, round(losses[0], 5)),
                                                                           (2, round(losses[1], 5))]
    assert {"val_loss", "val_accuracy", "lr", "test_accuracy"} <= set(events.Tags()["scalars"])
    metrics = json.load(open(os.path.join(first, "metrics.json")))
    assert events.Scalars("test_accuracy")[0].value == pytest.approx(metrics["test_accuracy"])
    assert "plots/curves" in events.Tags()["images"]
    summary = events.Tensors("summary")[0].tensor_proto.string_val[0].decode()
    assert "Total params: 12,730" in summary

    # MLflow: a local store beside the runs (SQLite, artifacts as files), read with MLflow's client.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{out}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("small_dense").experiment_id])
    assert run.info.run_name == "base" and run.info.status == "FINISHED"
    assert run.data.params["lr"] == "0.001" and run.data.params["batch_size"] == "64"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")] == [1, 2]
    assert run.data.metrics["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"spec.yaml", "settings.json", "summary.md", "diagram.dot", "metrics.json", "plots"} <= artifacts
    assert {a.path for a in client.list_artifacts(run.info.run_id, "plots")} >= {"plots/curves.png"}

    # nnspec runs: one row per run, the settings that differ, sortable, three formats and a plot.
    listing = io.StringIO()
    assert main(["runs", out, "--format", "json", "--sort", "name"], listing, io.StringIO()) == 0
    rows = json.loads(listing.getvalue())
    assert [r["name"] for r in rows] == ["base", "base-2", "fast"]
    assert [r["differs"]["lr"] for r in rows] == [0.001, 0.001, 0.01]
    assert [r["differs"]["epochs"] for r in rows] == [2, 1, 2]
    assert [r["epochs_run"] for r in rows] == [2, 1, 2] and all(r["status"] == "finished" for r in rows)
    assert rows[0]["test"]["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    table = io.StringIO()
    assert main(["runs", out, "--sort", "test_accuracy", "--reverse", "--plot", str(tmp_path / "curves.png"),
                 "--metric", "val_loss"], table, io.StringIO()) == 0
    lines = table.getvalue().splitlines()
    assert lines[0].split()[:3] == ["run", "spec", "backend"] and len(lines) == 5
    accuracies = sorted((r["test"]["test_accuracy"], r["name"]) for r in rows)
    assert lines[2].split()[0] == accuracies[-1][1]  # best test accuracy first
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    markdown = io.StringIO()
    assert main(["runs", out, "--format", "markdown"], markdown, io.StringIO()) == 0
    assert markdown.getvalue().startswith("| run | spec | backend |") and "lr=0.01" in markdown.getvalue()


def test_runs_errors_are_one_line(tmp_path):
    err = io.StringIO()
    assert main(["runs", str(tmp_path / "nowhere")], io.StringIO(), err) == 1
    assert err.getvalue().startswith("error: ") and "no such folder" in err.getvalue()
    assert main(["runs", str(tmp_path), "--sort", "colour"], io.StringIO(), err) == 0  # nothing to sort is fine


@pytest.mark.torch
def test_a_run_name_must_be_a_folder_name(write_spec, fashion_mnist_dir, tmp_path):
    err = io.StringIO()
    assert main(["train", write_spec(DENSE), "--name", "../escape", "--out", str(tmp_path)], io.StringIO(), err) == 1
    assert "cannot be a folder name" in err.getvalue()
