"""Reproduce the course's Fashion-MNIST results with nnspec on both backends.

    python benchmarks/reproduce_course.py [--specs dense,cnn,vgg,rotation,ensemble] [--backends torch,keras]
                                          [--seeds 0,1,2] [--epochs N] [--members N] [--limit N]
                                          [--out runs/reproduce] [--output benchmarks/reproduce_course.md]

Each (spec, backend, seed) is a real ``nnspec.train`` run with the spec's own settings (epochs and
early stopping included unless ``--epochs`` overrides them). Results are cached in
``<out>/results.json`` as they finish, so an interrupted reproduction continues where it stopped,
and the markdown table (spec, params, epochs, test accuracy mean ± spread over seeds, median
seconds per epoch, the course's number) is rewritten after every run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

import nnspec  # noqa: E402
from nnspec.fileio import atomic_write  # noqa: E402

SPECS = {
    "dense": ("specs/fashion_mnist_dense.yaml", "88.3 %"),
    "cnn": ("specs/fashion_mnist_cnn.yaml", "89.4 %"),
    "vgg": ("specs/fashion_mnist_vgg.yaml", "91.2 %"),
    "rotation": ("specs/rotation_regression_cnn.yaml", "— (MSE regression)"),
    "ensemble": ("specs/fashion_mnist_cnn_ensemble.yaml", "single 89.45 %, ensemble 91.53 %"),
}


def run_one(key: str, backend: str, seed: int, args) -> dict:
    from nnspec.training.run import train

    path, _ = SPECS[key]
    spec = nnspec.load(os.path.join(ROOT, path))
    started = time.time()
    members = args.members if key == "ensemble" else None
    result = train(spec, backend=backend, seed=seed, epochs=args.epochs, limit=args.limit, ensemble=members,
                   out=args.out, progress=False)
    record = {"spec": key, "backend": backend, "seed": seed, "params": spec.total_params,
              "run_dir": result.run_dir, "wall_seconds": round(time.time() - started, 1)}
    histories = [m.history for m in result.members] if result.members else [result.history]
    record["epochs_run"] = [len(h) for h in histories]
    record["max_epochs"] = result.settings["epochs"]
    secs = [row["seconds"] for h in histories for row in h]
    record["seconds_per_epoch"] = statistics.mean(secs) if secs else None
    record["metrics"] = {k: v for k, v in result.metrics.items() if k.startswith(("test_", "member_"))}
    if result.ensemble:
        record["ensemble"] = {k: result.ensemble[k] for k in ("member_test_accuracy", "ensemble_test_accuracy",
                                                              "member_test_accuracy_mean", "member_test_accuracy_std")}
        record["ensemble"]["mean_max_probability"] = result.ensemble["confidence"]["mean_max_probability"]
    return record


def _epoch_seconds(record: dict) -> list[float]:
    """Every epoch's seconds, read back from the run directories (members for ensembles)."""
    import csv

    dirs = [record["run_dir"]]
    members = os.path.join(record["run_dir"], "members")
    if os.path.isdir(members):
        dirs = [os.path.join(members, d) for d in sorted(os.listdir(members))]
    out = []
    for d in dirs:
        path = os.path.join(d, "history.csv")
        if os.path.exists(path):
            with open(path, newline="") as fh:
                out += [float(row["seconds"]) for row in csv.DictReader(fh)]
    return out or [record["seconds_per_epoch"]]


def _pm(values: list[float], pct: bool = True) -> str:
    scale = 100 if pct else 1
    mean = statistics.mean(values) * scale
    if len(values) == 1:
        return f"{mean:.2f}" + (" %" if pct else "")
    spread = statistics.stdev(values) * scale
    return f"{mean:.2f} ± {spread:.2f}" + (" %" if pct else "")


def table(records: list[dict]) -> str:
    lines = ["| spec | params | backend | seeds | epochs run (max) | test result | median s/epoch | course |",
             "|---|---:|---|---|---|---|---:|---|"]
    for key in SPECS:
        for backend in ("torch", "keras"):
            rs = [r for r in records if r["spec"] == key and r["backend"] == backend]
            if not rs:
                continue
            seeds = ",".join(str(r["seed"]) for r in rs)
            epochs = ", ".join("/".join(str(e) for e in r["epochs_run"]) for r in rs) + f" ({rs[0]['max_epochs']})"
            if key == "ensemble":
                members = [a for r in rs for a in r["ensemble"]["member_test_accuracy"]]
                result = (f"members {_pm(members)} (n={len(members)}), ensemble "
                          f"{_pm([r['ensemble']['ensemble_test_accuracy'] for r in rs])}")
            elif key == "rotation":
                result = f"MAE {_pm([r['metrics']['test_mae'] for r in rs], pct=False)}°"
            else:
                result = _pm([r["metrics"]["test_accuracy"] for r in rs])
            secs = statistics.median(s for r in rs for s in _epoch_seconds(r))
            params = f"{rs[0]['params']:,}" + (" x members" if key == "ensemble" else "")
            lines.append(f"| {os.path.basename(SPECS[key][0])} | {params} | {backend} | {seeds} | {epochs} | "
                         f"{result} | {secs:.1f} | {SPECS[key][1]} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--specs", default="dense,cnn,vgg,rotation,ensemble")
    p.add_argument("--backends", default="torch,keras")
    p.add_argument("--seeds", default="0")
    p.add_argument("--epochs", type=int, default=None, help="override every spec's epochs")
    p.add_argument("--members", type=int, default=None, help="ensemble size (default: the spec's 10)")
    p.add_argument("--limit", type=int, default=None, help="training examples (quick tries only)")
    p.add_argument("--out", default="runs/reproduce")
    p.add_argument("--output", default=os.path.join("benchmarks", "reproduce_course.md"))
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    cache = os.path.join(args.out, "results.json")
    records = json.load(open(cache)) if os.path.exists(cache) else []
    done = {(r["spec"], r["backend"], r["seed"], r.get("epochs_arg"), r.get("limit")) for r in records}
    for key in args.specs.split(","):
        for backend in args.backends.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                if (key, backend, seed, args.epochs, args.limit) in done:
                    continue
                print(f"{key} on {backend}, seed {seed} ...", flush=True)
                record = run_one(key, backend, seed, args)
                record["epochs_arg"], record["limit"] = args.epochs, args.limit
                records.append(record)
                atomic_write(cache, json.dumps(records, indent=2))
                print(f"  {json.dumps(record['metrics'])}  {record['seconds_per_epoch']:.2f} s/epoch, "
                      f"epochs {record['epochs_run']}", flush=True)
                write(records, args)
    write(records, args)
    return 0


def write(records: list[dict], args) -> None:
    from importlib import metadata

    import numpy

    versions = []
    for name in ("torch", "keras", "tensorflow", "tensorflow-cpu"):
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    text = (f"# Reproducing the course with nnspec\n\nMachine: {platform.machine()}, {os.cpu_count()} CPUs, "
            f"python {platform.python_version()}, numpy {numpy.__version__}, {', '.join(versions)}.\n\n"
            + table(records) + "\n")
    atomic_write(args.output, text)
    print(table(records), flush=True)


if __name__ == "__main__":
    sys.exit(main())
