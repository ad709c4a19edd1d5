"""GPU training speed: nnspec against hand-written torch loops of the same networks, in one process.

    python benchmarks/gpu_speed.py --data DIR [--epochs 5] [--seeds 1] [--quick] [--skip keras,ensemble]

``DIR`` holds Fashion-MNIST's four IDX files (``train-images-idx3-ubyte[.gz]`` ...); nothing is
downloaded. Needs numpy, torch and PyYAML; Keras on JAX rows run when keras and jax are installed
(``KERAS_BACKEND=jax`` is set here, before Keras is imported). ``--quick`` is a CPU smoke run
(2,000 examples, 2 epochs) that shows every row works.

Rows (full training set, 60,000 examples, no validation; seconds per epoch are the median of
epochs 2..E, the first epoch and any capture/compile time are reported apart):

  course CNN (specs/fashion_mnist_cnn.yaml, batch 64)
    hand: DataLoader    - TensorDataset on the host, DataLoader(shuffle, pin_memory), .to(device) per batch
    hand: data on GPU   - the data set on the device, randperm, index batches, eager step
    hand: CUDA graph    - data on the device, the whole step (forward, backward, fused Adam) captured once;
                          drops the last partial batch (the usual shortcut)
    nnspec              - nnspec's torch trainer (CUDA graphs on a GPU), and again eager, and with bf16
  VGG-like (specs/fashion_mnist_vgg.yaml, batch 128): nnspec, eager nnspec, the hand CUDA-graph loop
    driving nnspec's own VGG module
  ensemble: 10 course-CNN members trained together vs one member (wall time per epoch), and member
    and ensemble test accuracies against 10 members trained one by one (Welch's t on the members)
  keras on JAX: nnspec's Keras trainer, XLA-compiled, several steps per execution
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # share the GPU with torch
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("NNSPEC_OFFLINE", "1")
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import nnspec  # noqa: E402
from nnspec.data import load_data  # noqa: E402
from nnspec.training.control import LearningRate  # noqa: E402
from nnspec.training.progress import Progress  # noqa: E402
from nnspec.training.run import as_data  # noqa: E402
from nnspec.training.settings import resolve  # noqa: E402

CNN_SPEC = os.path.join(ROOT, "specs", "fashion_mnist_cnn.yaml")
VGG_SPEC = os.path.join(ROOT, "specs", "fashion_mnist_vgg.yaml")
VGG_HAND = "VGG hand: CUDA graph (nnspec's module)"


# --- timing --------------------------------------------------------------------------------------
class Clock:
    """Per-epoch wall times (the device synchronised at each epoch's end) and one-off costs."""

    def __init__(self, device: torch.device):
        self.device = device
        self.times: list[float] = []
        self.setup = 0.0
        self.accuracy: float | None = None
        self._t = 0.0

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def start(self) -> None:
        self.sync()
        self._t = time.perf_counter()

    def stop(self) -> None:
        self.sync()
        self.times.append(time.perf_counter() - self._t)

    @property
    def steady(self) -> float:
        return statistics.median(self.times[1:] if len(self.times) > 1 else self.times)


class Sink:
    """nnspec's ``EpochSink`` with nothing recorded but the epoch times (the trainer's own clock)."""

    def __init__(self, settings: dict, steps: int, clock: Clock):
        self.lr = LearningRate(settings.schedule, settings.lr, settings.epochs)
        self.progress = Progress(None, settings.epochs)
        self.total, self.clock = steps * settings.epochs, clock

    def lr_for_epoch(self, epoch: int) -> float:
        return self.lr.for_epoch(epoch)

    def lr_for_step(self, global_step: int) -> float:
        return self.lr.step_lr(global_step, self.total)

    def epoch_begin(self, epoch: int) -> None:
        pass

    def epoch_end(self, epoch: int, logs: dict, seconds: float, lr: float) -> bool:
        self.clock.sync()
        self.clock.times.append(seconds)
        return False


# --- data ----------------------------------------------------------------------------------------
def course_data(spec_path: str, data_dir: str, limit: int | None):
    spec = nnspec.load(spec_path, overrides=[f"data.path={data_dir}"])
    splits = load_data(spec, limit=limit, validation_split=0.0)
    return spec, splits


def arrays(splits):
    x = np.ascontiguousarray(splits.train.x, dtype=np.float32)
    y = np.asarray(splits.train.y)
    y = y.argmax(1) if y.ndim == 2 else y
    xt = np.ascontiguousarray(splits.test.x, dtype=np.float32)
    yt = np.asarray(splits.test.y)
    yt = yt.argmax(1) if yt.ndim == 2 else yt
    return x, y.astype(np.int64), xt, yt.astype(np.int64)


# --- hand-written baselines ----------------------------------------------------------------------
def plain_cnn() -> nn.Module:
    """The course CNN as a user writes it (NCHW, logits out; softmax folded into the loss)."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3), nn.ReLU(), nn.Flatten(), nn.Linear(288, 64), nn.ReLU(), nn.Linear(64, 10))


def _logits_loss(out, y, probabilities: bool):
    if probabilities:  # an nnspec module ends in softmax: Keras's clipped log
        return -torch.log(out.clamp(1e-7, 1 - 1e-7)).gather(1, y.unsqueeze(1)).mean()
    return F.cross_entropy(out, y)


def _accuracy(model, xt, yt, device, nchw: bool) -> float:
    model.eval()
    with torch.no_grad():
        x = torch.from_numpy(xt).to(device)
        x = x.permute(0, 3, 1, 2).contiguous() if nchw else x
        hits = sum(int((model(x[i:i + 2048]).argmax(1).cpu() == torch.from_numpy(yt[i:i + 2048])).sum())
                   for i in range(0, len(x), 2048))
    model.train()
    return hits / len(yt)


def hand_dataloader(model, x, y, xt, yt, epochs, bs, device, nchw=True, probabilities=False) -> Clock:
    from torch.utils.data import DataLoader, TensorDataset

    clock = Clock(device)
    xs = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous() if nchw else torch.from_numpy(x)
    loader = DataLoader(TensorDataset(xs, torch.from_numpy(y)), batch_size=bs, shuffle=True,
                        pin_memory=device.type == "cuda")
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    for _ in range(epochs):
        clock.start()
        for xb, yb in loader:
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            loss = _logits_loss(model(xb), yb, probabilities)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        clock.stop()
    clock.accuracy = _accuracy(model, xt, yt, device, nchw)
    return clock


def hand_on_device(model, x, y, xt, yt, epochs, bs, device, nchw=True, probabilities=False) -> Clock:
    clock = Clock(device)
    xs = torch.from_numpy(x).to(device)
    xs = xs.permute(0, 3, 1, 2).contiguous() if nchw else xs
    ys = torch.from_numpy(y).to(device)
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    n = len(xs)
    for _ in range(epochs):
        clock.start()
        perm = torch.randperm(n, device=device)
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            loss = _logits_loss(model(xs[idx]), ys[idx], probabilities)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        clock.stop()
    clock.accuracy = _accuracy(model, xt, yt, device, nchw)
    return clock


def hand_cuda_graph(model, x, y, xt, yt, epochs, bs, device, nchw=True, probabilities=False) -> Clock:
    """The best loop written by hand: static buffers, whole step captured once, fused capturable Adam."""
    clock = Clock(device)
    xs = torch.from_numpy(x).to(device)
    xs = xs.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last) if nchw else xs
    ys = torch.from_numpy(y).to(device)
    model = model.to(device).to(memory_format=torch.channels_last) if nchw else model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=torch.tensor(1e-3, device=device), eps=1e-7,
                           fused=True, capturable=True)
    torch.backends.cudnn.benchmark = True
    n, steps = len(xs), len(xs) // bs  # drop the last partial batch
    static_x, static_y = xs[:bs].clone(), ys[:bs].clone()

    def step():
        loss = _logits_loss(model(static_x), static_y, probabilities)
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()

    t = time.perf_counter()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        step()
    torch.cuda.synchronize()
    clock.setup = time.perf_counter() - t
    for _ in range(epochs):
        clock.start()
        perm = torch.randperm(n, device=device)[:steps * bs].view(steps, bs)
        for i in range(steps):
            static_x.copy_(xs[perm[i]])
            static_y.copy_(ys[perm[i]])
            graph.replay()
        clock.stop()
    clock.accuracy = _accuracy(model, xt, yt, device, nchw)
    return clock


# --- nnspec --------------------------------------------------------------------------------------
def nnspec_settings(spec, device: str, epochs: int, **extra):
    settings = resolve(spec, "torch", {"epochs": epochs, "device": device, "validation_split": 0.0})
    return settings.replace(**extra)


def nnspec_torch(spec, splits, epochs, device: torch.device, **extra) -> Clock:
    from nnspec.backends import get_backend

    clock = Clock(device)
    settings = nnspec_settings(spec, device.type, epochs, **extra)
    train = as_data(spec, splits.train, settings)
    trainer = get_backend("torch").trainer(spec, settings, train, None)
    steps = math.ceil(len(train) / settings.batch_size)
    trainer.fit(0, epochs, Sink(settings, steps, clock))
    clock.setup = trainer.capture_seconds
    clock.accuracy = _nnspec_accuracy(trainer.predict(as_data(spec, splits.test, settings).x), splits)
    return clock


def _nnspec_accuracy(preds: dict, splits) -> float:
    p = next(iter(preds.values()))
    y = np.asarray(splits.test.y)
    y = y.argmax(1) if y.ndim == 2 else y
    return float((p.argmax(1) == y).mean())


def nnspec_ensemble(spec, splits, epochs, device: torch.device, members: int) -> tuple[Clock, list[float], float]:
    from nnspec.backends import get_backend

    clock = Clock(device)
    base = nnspec_settings(spec, device.type, epochs)
    settings = [base.replace(seed=base.seed + i, member=i) for i in range(members)]
    train = as_data(spec, splits.train, base)
    trainer = get_backend("torch").ensemble_trainer(spec, settings, train, None)
    steps = math.ceil(len(train) / base.batch_size)
    sinks = [Sink(base, steps, clock if i == 0 else Clock(device)) for i in range(members)]
    trainer.fit(0, epochs, sinks)
    clock.setup = trainer.capture_seconds
    test = as_data(spec, splits.test, base)
    preds = trainer.predict_members(test.x)
    accs = [_nnspec_accuracy(p, splits) for p in preds]
    mean = np.mean([next(iter(p.values())) for p in preds], axis=0)
    return clock, accs, _nnspec_accuracy({"p": mean}, splits)


def keras_jax(spec, splits, epochs) -> Clock | str:
    try:
        from nnspec.backends import get_backend

        backend = get_backend("keras", "jax")
    except Exception as exc:  # keras or jax missing: say so, keep the other rows
        return f"skipped: {type(exc).__name__}: {exc}"
    device = backend.select_device("auto")
    clock = Clock(torch.device("cpu"))  # keras's trainer synchronises itself at each epoch's end
    settings = resolve(spec, "keras", {"epochs": epochs, "device": device, "validation_split": 0.0})
    train = as_data(spec, splits.train, settings)
    trainer = backend.trainer(spec, settings, train, None)
    steps = math.ceil(len(train) / settings.batch_size)
    trainer.fit(0, epochs, Sink(settings, steps, clock))
    clock.accuracy = _nnspec_accuracy(trainer.predict(as_data(spec, splits.test, settings).x), splits)
    return clock


# --- report --------------------------------------------------------------------------------------
def header(device: torch.device) -> None:
    print(f"python {platform.python_version()}, {platform.platform()}, {os.cpu_count()} CPUs")
    cuda = torch.version.cuda or "none"
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "CPU"
    print(f"device: {device} ({name}); torch {torch.__version__} (CUDA {cuda}, cuDNN "
          f"{torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else 'none'})")
    for module in ("jax", "keras"):
        try:
            mod = __import__(module)
            extra = f" devices {mod.devices()}" if module == "jax" else ""
            print(f"{module} {mod.__version__}{extra}")
        except Exception as exc:
            print(f"{module}: not available ({type(exc).__name__})")
    from importlib import metadata

    try:
        print(f"nnspec {metadata.version('nnspec')}")
    except metadata.PackageNotFoundError:
        print("nnspec (source tree)")


def row(table: list, name: str, clock, note: str = "") -> None:
    if isinstance(clock, str):
        table.append((name, None, None, None, clock))
        print(f"  {name}: {clock}", flush=True)
        return
    table.append((name, clock.steady, clock.setup, clock.accuracy, note))
    acc = f"{clock.accuracy:.2%}" if clock.accuracy is not None else "-"
    print(f"  {name}: {clock.steady:.3f} s/epoch (epochs {', '.join(f'{t:.3f}' for t in clock.times)}; "
          f"setup {clock.setup:.2f} s; test accuracy {acc}) {note}", flush=True)


def print_table(table: list) -> None:
    print("\n| run | s/epoch | capture/compile s | test accuracy | note |")
    print("|---|---:|---:|---:|---|")
    for name, secs, setup, acc, note in table:
        s = f"{secs:.3f}" if secs is not None else "-"
        c = f"{setup:.2f}" if setup else "-"
        a = f"{acc:.2%}" if acc is not None else "-"
        print(f"| {name} | {s} | {c} | {a} | {note} |")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="folder with Fashion-MNIST's four IDX files")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--members", type=int, default=10)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--quick", action="store_true", help="CPU smoke run: 2,000 examples, 2 epochs, 3 members")
    p.add_argument("--skip", default="", help="comma-separated: baselines,vgg,ensemble,sequential,keras")
    a = p.parse_args(argv)
    skip = set(filter(None, a.skip.split(",")))
    device = torch.device("cuda" if a.device == "auto" and torch.cuda.is_available() else
                          a.device if a.device != "auto" else "cpu")
    limit, epochs, members = (2000, 2, 3) if a.quick else (None, a.epochs, a.members)
    header(device)
    cnn, cnn_splits = course_data(CNN_SPEC, a.data, limit)
    x, y, xt, yt = arrays(cnn_splits)
    print(f"\ncourse CNN: {len(x)} training examples, batch 64, {epochs} epochs; s/epoch = median of epochs 2..")
    table: list = []
    gpu = device.type == "cuda"
    torch.manual_seed(0)
    if "baselines" not in skip:
        row(table, "CNN hand: DataLoader", hand_dataloader(plain_cnn(), x, y, xt, yt, epochs, 64, device))
        row(table, "CNN hand: data on device", hand_on_device(plain_cnn(), x, y, xt, yt, epochs, 64, device))
        row(table, "CNN hand: CUDA graph", hand_cuda_graph(plain_cnn(), x, y, xt, yt, epochs, 64, device)
            if gpu else "skipped: needs CUDA")
    row(table, "CNN nnspec", nnspec_torch(cnn, cnn_splits, epochs, device), "CUDA graphs" if gpu else "eager (CPU)")
    if gpu:
        row(table, "CNN nnspec, cuda_graphs false", nnspec_torch(cnn, cnn_splits, epochs, device, cuda_graphs=False))
        row(table, "CNN nnspec, bf16", nnspec_torch(cnn, cnn_splits, epochs, device, mixed_precision=True))
    if "vgg" not in skip:
        vgg, vgg_splits = course_data(VGG_SPEC, a.data, limit)
        vx, vy, vxt, vyt = arrays(vgg_splits)
        row(table, "VGG nnspec (batch 128)", nnspec_torch(vgg, vgg_splits, epochs, device))
        if gpu:
            row(table, "VGG nnspec, cuda_graphs false", nnspec_torch(vgg, vgg_splits, epochs, device, cuda_graphs=False))
            row(table, "VGG nnspec, bf16", nnspec_torch(vgg, vgg_splits, epochs, device, mixed_precision=True))
            from nnspec.backends import get_backend

            module = get_backend("torch").build(vgg, seed=0)
            row(table, VGG_HAND,
                hand_cuda_graph(module, vx, vy, vxt, vyt, epochs, 128, device, nchw=False, probabilities=True))
    ensemble_note = {}
    if "ensemble" not in skip:
        clock, accs, ens_acc = nnspec_ensemble(cnn, cnn_splits, epochs, device, members)
        ensemble_note = {"members": accs, "ensemble": ens_acc}
        row(table, f"CNN ensemble of {members}, trained together", clock,
            f"members {np.mean(accs):.2%} ± {np.std(accs):.2%}, ensemble {ens_acc:.2%}")
        if "sequential" not in skip:
            seq = []
            for i in range(members):
                c = nnspec_torch(cnn, cnn_splits, epochs, device, seed=i)
                seq.append(c)
            accs_seq = [c.accuracy for c in seq]
            total = sum(sum(c.times) for c in seq) / epochs
            table.append((f"CNN {members} members one by one (sum)", total, None, float(np.mean(accs_seq)),
                          f"members {np.mean(accs_seq):.2%} ± {np.std(accs_seq):.2%}"))
            ensemble_note["sequential"] = accs_seq
    if "keras" not in skip:
        row(table, "CNN keras on JAX (nnspec)", keras_jax(cnn, cnn_splits, epochs))
    print_table(table)
    times = {name: secs for name, secs, *_ in table if secs is not None}
    ours = times.get("CNN nnspec")
    print("\nratios (> 1: nnspec is faster)")
    for name in ("CNN hand: DataLoader", "CNN hand: data on device", "CNN hand: CUDA graph"):
        if ours and name in times:
            print(f"  {name} / nnspec: {times[name] / ours:.2f}x")
    vgg_hand, vgg_ours = times.get(VGG_HAND), times.get("VGG nnspec (batch 128)")
    if vgg_hand and vgg_ours:
        print(f"  {VGG_HAND} / nnspec: {vgg_hand / vgg_ours:.2f}x")
    ens = f"CNN ensemble of {members}, trained together"
    if ens in times and ours:
        print(f"  ensemble of {members} / one member: {times[ens] / ours:.2f}x  (target <= 2)")
    if "CNN keras on JAX (nnspec)" in times and ours:
        print(f"  keras on JAX / nnspec torch: {times['CNN keras on JAX (nnspec)'] / ours:.2f}x  (target <= 1.5)")
    if "sequential" in ensemble_note:
        together, alone = np.array(ensemble_note["members"]), np.array(ensemble_note["sequential"])
        se = math.sqrt(together.var(ddof=1) / len(together) + alone.var(ddof=1) / len(alone)) if len(alone) > 1 else 0
        t = (together.mean() - alone.mean()) / se if se else 0.0
        print(f"  member accuracy together {together.mean():.2%} vs one by one {alone.mean():.2%}: Welch t = {t:.2f} "
              f"(|t| < 2: statistically the same)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
