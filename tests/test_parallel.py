"""Data-parallel training: replicas train exactly as one process with the same global batch.

How the data order is made identical: every replica draws the epoch's global permutation from the
epoch seed (as one process does) and takes its contiguous slice of each global batch; each loss is
scaled by ``local / global * replicas`` so the replicas' averaged gradient (DDP) is the global
batch's. The specs compared have no dropout; batch norm is synchronised, so the statistics are
those of the global batch, and the convolutions before it have no bias (a bias that batch norm
cancels has a gradient of pure rounding noise, which Adam's normalisation turns into steps of size lr
whose signs differ between any two summation orders). Real gloo processes, real Fashion-MNIST subsets.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

from nnspec.cli.main import main
from nnspec.training.parallel import World, batch_slice, local_batch_size, loss_scale, members_of

ROOT = pathlib.Path(__file__).resolve().parent.parent
CNN = ROOT / "specs" / "fashion_mnist_cnn.yaml"
TOLERANCE = 1e-5

BN_NET = """
name: bn_net
inputs:
  img: {shape: [28, 28, 1]}
encoder:
  - conv2d: {filters: 8, kernel_size: 3, use_bias: false}
  - batch_norm
  - activation: relu
  - max_pool2d: {pool_size: 2}
  - conv2d: {filters: 8, kernel_size: 3, use_bias: false}
  - batch_norm
  - activation: relu
  - max_pool2d: {pool_size: 2}
head:
  - flatten
  - dense: {units: 10, activation: softmax}
loss: categorical_crossentropy
train:
  optimizer: adam
  lr: 0.003
  batch_size: 32
  epochs: 1
  seed: 0
  validation_split: 0.1
data:
  dataset: fashion_mnist
  limit: 300
  test_limit: 200
"""


# --- the split of a global batch ---------------------------------------------------------------
@pytest.mark.parametrize("size", [1, 2, 3, 5])
@pytest.mark.parametrize("batch", [0, 1, 2, 7, 64])
def test_replicas_split_every_global_batch_exactly_once(size, batch):
    parts = [batch_slice(batch, World(rank, size)) for rank in range(size)]
    covered = [i for start, stop in parts for i in range(start, stop)]
    assert covered == list(range(batch))  # contiguous, disjoint, in order
    sizes = [stop - start for start, stop in parts]
    assert max(sizes) - min(sizes) <= 1
    if batch:  # the averaged scaled gradients weigh every example 1/batch
        scales = [loss_scale(n, batch, World(r, size)) for r, n in enumerate(sizes)]
        assert sum(s * n / max(n, 1) for s, n in zip(scales, sizes, strict=True)) == pytest.approx(size)


def test_ensemble_members_are_placed_round_robin():
    placed = [members_of(rank, 5, 2) for rank in range(2)]
    assert placed == [[0, 2, 4], [1, 3]]


def test_world_reads_the_launcher_environment():
    w = World.from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"})
    assert (w.rank, w.size, w.local_rank, w.local_size, w.is_main, w.distributed) == (3, 4, 1, 2, False, True)
    assert World.from_env({}).is_main and not World.from_env({}).distributed


def test_global_batch_that_does_not_divide_is_a_located_error(write_spec):
    path = write_spec(BN_NET.replace("batch_size: 32", "batch_size: 30"))
    err = io.StringIO()
    assert main(["train", path, "--nproc", "4", "--device", "cpu"], io.StringIO(), err) == 1
    text = err.getvalue()
    line = BN_NET.replace("batch_size: 32", "batch_size: 30").splitlines().index("  batch_size: 30") + 1
    assert f"{path}:{line}:" in text and "does not divide evenly over 4 replicas" in text
    assert "28 or 32" in text and text.count(": error:") == 1
    assert local_batch_size(32, 4) == 8


# --- real replicas ------------------------------------------------------------------------------
def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["NNSPEC_DIST_TIMEOUT"] = "120"
    return env


def _only_run(out: pathlib.Path) -> pathlib.Path:
    runs = [p for p in out.glob("*/*") if p.is_dir()]
    assert len(runs) == 1, runs  # rank 0 alone made (and wrote) the run directory
    return runs[0]


def _max_diff(a_dir: pathlib.Path, b_dir: pathlib.Path) -> float:
    from nnspec.backends.weights import read_weights

    a = read_weights(str(a_dir / "weights" / "last.safetensors"))
    b = read_weights(str(b_dir / "weights" / "last.safetensors"))
    assert a.keys() == b.keys()
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


@pytest.mark.torch
def test_two_gloo_processes_give_the_weights_of_one_process(tmp_path, fashion_mnist_dir):
    from nnspec.pipeline import load
    from nnspec.training.run import train

    common = ["--limit", "512", "--epochs", "1", "--device", "cpu"]
    cmd = [sys.executable, "-m", "nnspec", "train", str(CNN), "--nproc", "2", "--out", str(tmp_path / "two"), *common]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("epoch 1/1") == 1  # progress from rank 0 only
    two = _only_run(tmp_path / "two")
    one = train(load(str(CNN)), "torch", epochs=1, limit=512, device="cpu", out=str(tmp_path / "one"), progress=False)
    diff = _max_diff(two, pathlib.Path(one.run_dir))
    print(f"course CNN, 2 gloo processes vs 1: max |dw| = {diff:.2e}")
    assert diff < TOLERANCE, diff
    settings = json.loads((two / "settings.json").read_text())
    assert settings["world_size"] == 2 and settings["sync_batch_norm"] is True and settings["batch_size"] == 64
    history_two = (two / "history.csv").read_text().splitlines()
    assert len(history_two) == 2  # header + epoch 1, written once
    loss_two = json.loads((two / "metrics.json").read_text())["test_loss"]
    assert loss_two == pytest.approx(one.metrics["test_loss"], abs=1e-4)


@pytest.mark.torch
def test_a_failing_replica_stops_the_job_with_its_error_shown_once(write_spec):
    """Both workers fail (no GPU here); the launcher prints the first failure's one line, nothing else."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without a GPU")
    path = write_spec(BN_NET)
    done = subprocess.run([sys.executable, "-m", "nnspec", "train", path, "--nproc", "2", "--device", "cuda"],
                          env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == ["error: --device cuda was asked for, but no CUDA GPU is visible to this framework; "
                     "use --device cpu (or auto)"], done.stderr[-2000:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.torch
def test_two_torchrun_nodes_resume_a_one_process_run_with_synchronised_batch_norm(tmp_path, fashion_mnist_dir,
                                                                                   write_spec):
    """Two ``torchrun`` "nodes" on 127.0.0.1 (c10d rendezvous) continue a 1-process run for a second
    epoch: the world size changes on resume and batch norm is synchronised, yet the weights are those
    of one process training both epochs."""
    from nnspec.pipeline import load
    from nnspec.training.run import train

    path = write_spec(BN_NET)
    half = train(load(path), "torch", epochs=1, device="cpu", out=str(tmp_path / "half"), progress=False)
    full = train(load(path), "torch", epochs=2, device="cpu", out=str(tmp_path / "full"), progress=False)
    # The two "nodes" meet through a c10d store on a free port; on a busy machine the rendezvous itself can
    # fail (a store timeout, before any training), so a failed launch is retried on a fresh copy of the run.
    for attempt in range(3):
        run_dir = tmp_path / f"resume{attempt}"
        shutil.copytree(half.run_dir, run_dir)
        port = _free_port()
        node = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
                "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", f"nnspec-test{attempt}",
                "-m", "nnspec", "train", "--resume", str(run_dir), "--epochs", "2", "--device", "cpu"]
        nodes = [subprocess.Popen(node, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        outputs = [p.communicate(timeout=300) for p in nodes]
        if [p.returncode for p in nodes] == [0, 0]:
            break
    assert [p.returncode for p in nodes] == [0, 0], [o[1][-3000:] for o in outputs]
    assert sum(o[0].count("epoch 2/2") for o in outputs) == 1  # rank 0 reports, once
    diff = _max_diff(run_dir, pathlib.Path(full.run_dir))
    print(f"batch-norm net, resumed on 2 torchrun nodes vs 1 process: max |dw| = {diff:.2e}")
    assert diff < TOLERANCE, diff
    settings = json.loads((run_dir / "settings.json").read_text())
    assert settings["world_size"] == 2
    assert settings["world_sizes"] == [{"from_epoch": 1, "world_size": 1}, {"from_epoch": 2, "world_size": 2}]


# --- Keras: several devices of one process ------------------------------------------------------
KERAS_PAIRS = """
import json, sys
import numpy as np
from nnspec.backends.weights import read_weights
from nnspec.pipeline import load
from nnspec.training.run import train

out, order, specs = sys.argv[1], [int(r) for r in sys.argv[2].split(",")], sys.argv[3:]
diffs, settings = [], None
for i, spec_path in enumerate(specs):
    runs = {}
    for replicas in order:  # JAX: one device first (DataParallel is process-wide); TF: the two devices first
        runs[replicas] = train(load(spec_path), "keras", epochs=1, limit=320, device="cpu", out=f"{out}/{i}/{replicas}",
                               progress=False, replicas=replicas)
    a, b = (read_weights(runs[r].run_dir + "/weights/last.safetensors") for r in (1, 2))
    diffs.append(max(float(np.abs(a[k] - b[k]).max()) for k in a))
    settings = json.load(open(runs[2].run_dir + "/settings.json"))
print(json.dumps({"diffs": diffs, "settings": settings}))
"""


@pytest.mark.keras
@pytest.mark.parametrize("engine, order, env, with_bn", [
    ("jax", "1,2", {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}, False),
    ("tensorflow", "2,1", {}, True),
])
def test_keras_on_two_devices_gives_the_weights_of_one_device(tmp_path, fashion_mnist_dir, write_spec,
                                                              engine, order, env, with_bn):
    """JAX ``DataParallel`` over two host-platform CPU devices, TensorFlow ``MirroredStrategy`` over two
    logical CPU devices, each against one device of the same process: the course CNN within 1e-5, and on
    TensorFlow (where Keras must be told to synchronise) the batch-norm net within 2e-3 (Keras's synchronised
    moments are E[x^2] - E[x]^2, not a single device's two passes: 3e-4 measured). JAX runs one
    global program over the sharded batch, so its batch statistics are the global batch's anyway."""
    pytest.importorskip(engine)
    specs = [str(CNN), write_spec(BN_NET)] if with_bn else [str(CNN)]
    environment = {**_env(), "KERAS_BACKEND": engine, **env}
    done = subprocess.run([sys.executable, "-c", KERAS_PAIRS, str(tmp_path), order, *specs],
                          env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    cnn_diff, *bn_diff = result["diffs"]
    print(f"{engine}: max |w(1 device) - w(2 devices)|: course CNN {cnn_diff:.2e}, batch-norm net {bn_diff}")
    assert cnn_diff < TOLERANCE and all(d < 2e-3 for d in bn_diff), result["diffs"]
    settings = result["settings"]
    assert (settings["world_size"], settings["replicas"], settings["sync_batch_norm"]) == (2, 2, True)
