"""Data-parallel throughput: training examples per second with 1, 2, ... replicas.

    python benchmarks/scaling.py [--spec specs/fashion_mnist_cnn.yaml] [--replicas 1,2,4,8]
                                 [--epochs 3] [--limit N] [--batch-size B] [--device cpu|cuda]
                                 [--backend torch|keras] [--keras-backend jax|tensorflow]

Each row is a real ``nnspec train`` (torch: ``--nproc N`` processes through torch.distributed.run,
gloo on the CPU and NCCL on GPUs; keras: N devices of one process), same spec, same global batch,
same data. Reported: the median epoch time after the first (start-up, tracing), training examples
per second, the speed-up over one replica, the parallel efficiency (speed-up / N) and the test
accuracy (the same optimisation whatever N: a batch-norm spec such as the VGG, with synchronised
statistics, lands in one replica's accuracy band; dropout masks differ per replica). Validation
is part of each epoch, as in real runs. On a GPU machine give ``--device cuda`` and
``--replicas 1,2,...,<GPUs>``; on the CPU the replicas share the machine's cores, so the rows
measure the data-parallel overhead rather than a speed-up.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def run_one(args: argparse.Namespace, replicas: int, out: pathlib.Path) -> dict:
    cmd = [sys.executable, "-m", "nnspec", "train", args.spec, "--epochs", str(args.epochs), "--device", args.device,
           "--out", str(out), "--quiet", "--backend", args.backend]
    if args.backend == "keras":
        cmd += ["--keras-backend", args.keras_backend]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    if args.batch_size:
        cmd += ["--batch-size", str(args.batch_size)]
    if replicas > 1:
        cmd += ["--nproc", str(replicas)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{replicas} replicas failed:\n{done.stderr[-2000:]}")
    run = next(p for p in out.glob("*/*") if p.is_dir())
    settings = json.loads((run / "settings.json").read_text())
    with open(run / "history.csv", newline="") as fh:
        seconds = [float(row["seconds"]) for row in csv.DictReader(fh)]
    metrics = json.loads((run / "metrics.json").read_text())
    steady = seconds[1:] or seconds
    epoch = statistics.median(steady)
    return {"replicas": replicas, "batch": settings["batch_size"], "epoch_s": epoch,
            "examples_per_s": settings["examples"]["train"] / epoch, "wall_s": wall,
            "accuracy": metrics.get("test_accuracy", float("nan")),
            "world_size": settings.get("world_size", 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--spec", default=str(ROOT / "specs" / "fashion_mnist_cnn.yaml"))
    p.add_argument("--replicas", default="1,2", help="comma-separated replica counts (default 1,2)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None, help="global batch (default: the spec's)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--backend", default="torch", choices=["torch", "keras"])
    p.add_argument("--keras-backend", default="jax", choices=["jax", "tensorflow"])
    args = p.parse_args()
    counts = [int(c) for c in args.replicas.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            rows.append(run_one(args, n, pathlib.Path(tmp) / str(n)))
            print(f"  {n} replica(s) done: {rows[-1]['epoch_s']:.2f} s/epoch", file=sys.stderr)
    base = rows[0]["examples_per_s"] if rows and rows[0]["replicas"] == 1 else None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    engine = args.backend + (f" ({args.keras_backend})" if args.backend == "keras" else "")
    print(f"{pathlib.Path(args.spec).name} on {engine}, device {args.device}, {platform.processor() or platform.machine()}, "
          f"{cores} cores; median epoch after the first of {args.epochs}")
    print(f"{'replicas':>8} {'global batch':>12} {'s/epoch':>8} {'examples/s':>11} {'speed-up':>8} {'efficiency':>10} {'test acc':>8}")
    for r in rows:
        speed = r["examples_per_s"] / base if base else float("nan")
        print(f"{r['replicas']:>8} {r['batch']:>12} {r['epoch_s']:>8.2f} {r['examples_per_s']:>11.0f} "
              f"{speed:>8.2f} {speed / r['replicas']:>10.0%} {r['accuracy']:>8.2%}")


if __name__ == "__main__":
    main()
