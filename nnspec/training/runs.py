"""Comparing runs: every run directory under a folder as one row (``nnspec runs``), and their curves in one plot.

Rows are gathered as data first (:func:`find_runs`, :func:`run_row`), then formatted by one small function per
format (:func:`format_table`, :func:`format_markdown`, JSON). Only run directories are read; nothing is trained.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

from nnspec.training.errors import TrainingError
from nnspec.training.rundir import RunDir

# Settings compared across runs (the ones people change); the "differs" column names those that vary.
COMPARED = ("backend", "epochs", "batch_size", "lr", "optimizer.type", "schedule.type", "seed", "limit",
            "validation_split", "ensemble", "device", "overrides")
SKIPPED = {"mlartifacts", "mlruns", "tensorboard", "tracking"}  # trackers' folders beside the runs hold copies
SORT_KEYS = ("name", "spec", "created", "status", "epochs_run", "best", "test", "seconds")


@dataclass
class RunRow:
    """One run as ``nnspec runs`` shows it."""

    path: str
    name: str
    spec: str
    backend: str
    created: str
    status: str  # finished, running, interrupted, failed
    epochs_run: int
    epochs: int
    best_metric: str  # the monitored validation metric, e.g. val_accuracy
    best: float | None
    best_epoch: int | None
    test: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)  # the COMPARED settings, flattened
    differs: dict[str, Any] = field(default_factory=dict)  # those that are not the same in every listed run

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "settings"}


def find_runs(paths: list[str]) -> list[str]:
    """Run directories in ``paths`` (each a run directory or a folder searched below); members of ensembles are not
    listed on their own."""
    found: list[str] = []
    for root in paths:
        if not os.path.exists(root):
            raise TrainingError(f"{root}: no such folder; give the --out folder of nnspec train (default: runs)")
        if os.path.isfile(os.path.join(root, "settings.json")):
            found.append(os.path.abspath(root))
            continue
        for folder, dirs, files in os.walk(root):
            if "settings.json" in files and "spec.yaml" in files:
                found.append(os.path.abspath(folder))
                dirs[:] = []  # a run's members/ and checkpoints/ are part of it
            else:
                dirs[:] = sorted(d for d in dirs if d not in SKIPPED)
    return sorted(dict.fromkeys(found))


def _flatten(settings: dict) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in COMPARED:
        value: Any = settings
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if key == "overrides":
            value = " ".join(value or []) or None
        out[key] = value
    return out


def _best(history: list[dict], monitor: str) -> tuple[float | None, int | None]:
    values = [(row[monitor], row["epoch"]) for row in history
              if isinstance(row.get(monitor), (int, float)) and math.isfinite(row[monitor])]
    if not values:
        return None, None
    larger = "acc" in monitor or monitor.endswith("r2")
    value, epoch = (max if larger else min)(values, key=lambda v: v[0])
    return float(value), int(epoch)


def run_row(path: str) -> RunRow:
    """Read one run directory into a row (a run still going or interrupted reads as far as it got)."""
    run = RunDir.open(path)
    settings = run.read_json("settings.json")
    history = run.read_history()
    metrics = run.read_json("metrics.json") if run.exists("metrics.json") else {}
    state = run.read_checkpoint() or {}
    status = "finished" if metrics else state.get("status", "running")
    monitor = metrics.get("monitor") or (settings.get("early_stopping") or {}).get("monitor") or "val_loss"
    if history and monitor not in history[0]:
        monitor = next((m for m in ("val_accuracy", "val_loss", "accuracy", "loss") if m in history[0]), monitor)
    best, best_epoch = _best(history, monitor)
    test = {k: float(v) for k, v in metrics.items()
            if k.startswith("test_") and k != "test_examples" and isinstance(v, (int, float))}
    return RunRow(
        path=run.path, name=settings.get("name") or os.path.basename(run.path), spec=str(settings.get("spec", "?")),
        backend=str(settings.get("backend", "?")), created=str(settings.get("created", "")), status=status,
        epochs_run=len(history), epochs=int(settings.get("epochs", 0) or 0), best_metric=monitor, best=best,
        best_epoch=best_epoch, test=test, seconds=round(sum(float(r.get("seconds", 0) or 0) for r in history), 2),
        settings=_flatten(settings),
    )


def list_runs(paths: list[str], sort: str = "created", reverse: bool = False) -> list[RunRow]:
    """Every run under ``paths`` as a row, with the settings that differ between them, sorted by ``sort``."""
    rows = [run_row(p) for p in find_runs(paths)]
    for key in COMPARED:
        values = {json.dumps(r.settings.get(key), sort_keys=True) for r in rows}
        if len(values) > 1:
            for r in rows:
                r.differs[key] = r.settings.get(key)
    return sort_rows(rows, sort, reverse)


def sort_rows(rows: list[RunRow], key: str, reverse: bool = False) -> list[RunRow]:
    """Sort by a column (``best``, ``test``, ``seconds``, ``name``, ...) or a test metric (``test_accuracy``);
    runs without the value go last."""
    def value(row: RunRow):
        if key == "test":
            v: Any = next(iter(row.test.values()), None)
        elif key.startswith("test_"):
            v = row.test.get(key)
        elif key in row.differs or key in COMPARED:
            v = row.settings.get(key)
        elif key in SORT_KEYS:
            v = getattr(row, key)
        else:
            raise TrainingError(f"cannot sort runs by `{key}`: use one of {', '.join(SORT_KEYS)}, a test metric "
                                f"(test_accuracy, ...) or a setting ({', '.join(COMPARED)})")
        return v

    present = [r for r in rows if value(r) is not None]
    missing = [r for r in rows if value(r) is None]
    return sorted(present, key=lambda r: (str(type(value(r))), value(r)), reverse=reverse) + missing


# --- formats -------------------------------------------------------------------------------------
def _num(value: float | None, metric: str = "") -> str:
    if value is None:
        return "-"
    if "acc" in metric:
        return f"{value:.2%}"
    return f"{value:.4g}"


def _cells(row: RunRow) -> list[str]:
    best = f"{row.best_metric} {_num(row.best, row.best_metric)}" + (f" @{row.best_epoch}" if row.best_epoch else "")
    test = ", ".join(f"{k[5:]} {_num(v, k)}" for k, v in row.test.items() if k != "test_loss") or \
        (f"loss {_num(row.test['test_loss'])}" if "test_loss" in row.test else "-")
    differs = " ".join(f"{k}={_short(v)}" for k, v in row.differs.items()) or "-"
    return [row.name, row.spec, row.backend, f"{row.epochs_run}/{row.epochs}", row.status, best, test,
            f"{row.seconds:.1f}s", differs]


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return "-" if value is None else str(value)


HEADER = ["run", "spec", "backend", "epochs", "status", "best validation", "test", "time", "settings that differ"]


def format_table(rows: list[RunRow]) -> str:
    if not rows:
        return "no runs found"
    table = [HEADER, *(_cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_markdown(rows: list[RunRow]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in rows:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in _cells(r)) + " |")
    return "\n".join(lines)


def format_json(rows: list[RunRow]) -> str:
    return json.dumps([r.to_dict() for r in rows], indent=2)


def plot_runs(rows: list[RunRow], output: str, metric: str | None = None) -> str:
    """Overlay one metric's per-epoch curve of every run in one PNG (default: the first run's monitored metric)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rows:
        raise TrainingError("no runs to plot")
    metric = metric or rows[0].best_metric
    fig, ax = plt.subplots(figsize=(8, 5))
    drawn = 0
    for row in rows:
        history = RunDir(row.path).read_history()
        points = [(h["epoch"], h[metric]) for h in history if isinstance(h.get(metric), (int, float))]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=f"{row.spec}/{row.name}")
            drawn += 1
    if not drawn:
        plt.close(fig)
        raise TrainingError(f"no run has `{metric}` in its history.csv; pick another with --metric")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} of {drawn} run{'s' if drawn != 1 else ''}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    fig.savefig(output, dpi=120)
    plt.close(fig)
    return output
