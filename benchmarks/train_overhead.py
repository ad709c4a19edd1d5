"""Per-epoch training time: nnspec's loops vs the same model trained by hand, side by side.

    python benchmarks/train_overhead.py [--spec specs/fashion_mnist_cnn.yaml] [--epochs 3]
                                        [--batch-size 64] [--limit N] [--backends torch,keras]

Every contender trains the same nnspec-built model on the same Fashion-MNIST arrays, same
batch size, no validation, and the median epoch after the first (warm-up/tracing) is
reported. Hand-written baselines:
  torch: the loop a careful user writes (pre-built tensors, randperm, tensor-indexed batches,
         forward, loss, backward, step; no per-batch .item()).
  keras: ``model.compile(adam, categorical_crossentropy, metrics=["accuracy"])`` + ``model.fit``,
         with Keras's default steps_per_execution=1, and again with nnspec's CPU setting.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

import nnspec  # noqa: E402
from nnspec.data import load_data  # noqa: E402


def plain_course_cnn():
    """The course CNN written directly in torch (NCHW inside), as a reference for the built module."""
    from torch import nn

    class CourseCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(16, 32, 3), nn.ReLU(), nn.Flatten(), nn.Linear(288, 64), nn.ReLU(), nn.Linear(64, 10),
                nn.Softmax(dim=-1))

        def forward(self, x):
            return self.body(x.permute(0, 3, 1, 2))

    return CourseCNN()


def hand_torch(spec, x, y, epochs, bs, seed=0, model=None):
    import torch

    from nnspec.backends import get_backend
    from nnspec.backends.torch.loop import cpu_threads

    torch.set_num_threads(cpu_threads())
    torch.manual_seed(seed)
    model = model or get_backend("torch").build(spec, seed=seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    n = len(xt)
    times = []
    for _ in range(epochs):
        t = time.perf_counter()
        perm = torch.randperm(n)
        model.train()
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            out = model(xt[idx])
            loss = -torch.log(out.clamp(1e-7, 1 - 1e-7)).gather(1, yt[idx].unsqueeze(1)).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t)
    return times


def hand_keras(spec, x, y, epochs, bs, steps_per_execution=1, seed=0):
    import keras

    from nnspec.backends import get_backend

    keras.utils.set_random_seed(seed)
    model = get_backend("keras").build(spec, seed=seed)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"],
                  steps_per_execution=steps_per_execution)
    onehot = np.eye(10, dtype=np.float32)[y]
    times = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t)

    model.fit(x, onehot, batch_size=bs, epochs=epochs, verbose=0, callbacks=[Clock()])
    return times


def with_nnspec(spec, backend, epochs, bs, limit):
    import tempfile

    from nnspec.training.run import train

    with tempfile.TemporaryDirectory() as out:
        result = train(spec, backend=backend, epochs=epochs, batch_size=bs, limit=limit, validation_split=0.0,
                       out=out, progress=False)
    return [row["seconds"] for row in result.history]


def steady(times):
    return statistics.median(times[1:] if len(times) > 1 else times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--spec", default="specs/fashion_mnist_cnn.yaml")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--backends", default="torch,keras")
    a = p.parse_args(argv)
    spec = nnspec.load(a.spec)
    # nnspec's spec has early stopping on val_loss; with no validation it watches loss, never stopping here.
    splits = load_data(spec, limit=a.limit, validation_split=0.0)
    x, y = np.ascontiguousarray(splits.train.x, dtype=np.float32), np.asarray(splits.train.y, dtype=np.int64)
    if y.ndim == 2:
        y = y.argmax(1)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs, "
          f"python {platform.python_version()}, {platform.platform()}")
    rows = []
    backends = a.backends.split(",")
    if "torch" in backends:
        import torch

        print(f"torch {torch.__version__} (threads {torch.get_num_threads()})")
        rows.append(("torch", "hand-written loop", steady(hand_torch(spec, x, y, a.epochs, a.batch_size))))
        rows.append(("torch", "nnspec train", steady(with_nnspec(spec, "torch", a.epochs, a.batch_size, a.limit))))
        if spec.total_params == 25_034 and tuple(x.shape[1:]) == (28, 28, 1):
            rows.append(("torch", "hand-written loop, plain nn.Sequential CNN (reference)",
                         steady(hand_torch(spec, x, y, a.epochs, a.batch_size, model=plain_course_cnn()))))
    if "keras" in backends:
        import keras
        import tensorflow as tf

        print(f"keras {keras.__version__}, tensorflow {tf.__version__}")
        rows.append(("keras", "hand-written model.fit", steady(hand_keras(spec, x, y, a.epochs, a.batch_size))))
        rows.append(("keras", "hand-written model.fit, steps_per_execution=16",
                     steady(hand_keras(spec, x, y, a.epochs, a.batch_size, 16))))
        rows.append(("keras", "nnspec train", steady(with_nnspec(spec, "keras", a.epochs, a.batch_size, a.limit))))
    print(f"\n{spec.name}: {len(x)} training examples, batch {a.batch_size}, median of epochs 2..{a.epochs}\n")
    print("| backend | contender | s/epoch | vs hand-written |")
    print("|---|---|---:|---:|")
    base = {}
    for backend, who, secs in rows:
        base.setdefault(backend, secs)
        print(f"| {backend} | {who} | {secs:.2f} | {secs / base[backend]:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
