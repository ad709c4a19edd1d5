"""Speed of the light core, side by side with Keras's own path.

Measures, in one run on this machine:
- cold `nnspec check` and `nnspec summary` of a reference spec (new process each time; median of N),
- what they import (no torch / tensorflow / keras),
- shape checking of generated specs of 1,000 / 5,000 / 20,000 layers (linear?),
- Keras's path for the same network: import keras, build it by hand, model.summary() (new process).

Run: python benchmarks/core_speed.py [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = os.path.join(ROOT, "specs", "fashion_mnist_vgg.yaml")

KERAS_PATH = """
import os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras
L = keras.layers
inp = keras.Input((28, 28, 1), name="img")
x = inp
for i, f in enumerate((8, 16, 32)):
    x = L.Conv2D(f, 3, padding="same")(x)
    x = L.Conv2D(f, 3, padding="same")(x)
    x = L.Activation("relu")(L.BatchNormalization()(x))
    if i < 2:
        x = L.MaxPooling2D()(x)
for layer in (L.Flatten(), L.Dense(256, activation="relu"), L.Dropout(0.5), L.Dense(64, activation="relu"),
              L.Dense(10, activation="softmax")):
    x = layer(x)
keras.Model(inp, x, name="fashion_mnist_vgg_model").summary()
"""


def timed(cmd: list[str], runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def generated_spec(n: int) -> str:
    layers = "".join("  - dense: {units: 16, activation: relu}\n" for _ in range(n))
    return f"name: deep\ninputs:\n  x: {{shape: [16]}}\nencoder:\n{layers}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--skip-keras", action="store_true")
    args = parser.parse_args()

    import nnspec

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}")
    print(f"python {platform.python_version()}, nnspec {nnspec.__version__}")
    nn = [sys.executable, "-m", "nnspec"]
    rows = []
    rows.append(("nnspec check (cold, new process)", *timed([*nn, "check", "-q", SPEC], args.runs)))
    rows.append(("nnspec summary (cold, new process)", *timed([*nn, "summary", SPEC], args.runs)))
    import shutil

    if shutil.which("nnspec"):
        rows.append(("`nnspec summary` console script (cold)", *timed(["nnspec", "summary", SPEC], args.runs)))
    rows.append(("python -c pass (interpreter start)", *timed([sys.executable, "-c", "pass"], args.runs)))
    if not args.skip_keras:
        import importlib.metadata as md

        print(f"keras {md.version('keras')}, tensorflow {md.version('tensorflow-cpu') if _has('tensorflow-cpu') else md.version('tensorflow')}")
        runs = max(2, args.runs // 3)
        rows.append(("keras: import + build + summary (new process)", *timed([sys.executable, "-c", KERAS_PATH], runs)))
    print()
    print(f"{'what':<48} {'median s':>9} {'best s':>8}")
    for what, med, best in rows:
        print(f"{what:<48} {med:>9.3f} {best:>8.3f}")

    probe = subprocess.run(
        [sys.executable, "-c", "import sys; from nnspec.cli.main import main; main(['summary', sys.argv[1]]); "
         "print([m for m in ('torch','tensorflow','keras') if m in sys.modules], file=sys.stderr)", SPEC],
        capture_output=True, text=True, cwd=ROOT,
    )
    print(f"\nheavy modules imported by `nnspec summary`: {probe.stderr.strip()}")

    print(f"\n{'layers':>8} {'check s':>9} {'us/layer':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1000, 5000, 20000):
            path = os.path.join(tmp, f"deep{n}.yaml")
            with open(path, "w") as fh:
                fh.write(generated_spec(n))
            start = time.perf_counter()
            spec = nnspec.load(path)
            elapsed = time.perf_counter() - start
            assert len(spec.graph.nodes) == n + 1
            print(f"{n:>8} {elapsed:>9.3f} {elapsed / n * 1e6:>9.1f}")


def _has(dist: str) -> bool:
    import importlib.metadata as md

    try:
        md.version(dist)
        return True
    except md.PackageNotFoundError:
        return False


if __name__ == "__main__":
    main()
