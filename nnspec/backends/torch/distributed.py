"""Data-parallel training on ``torch.distributed``: the process group, DDP, synchronised batch norm.

The processes are started by ``torch.distributed.run`` (``torchrun``, or ``nnspec train --nproc N``,
which calls the same launcher); each reads RANK/WORLD_SIZE/LOCAL_RANK and the rendezvous from its
environment. NCCL on GPUs (one GPU per process, ``cuda:<local rank>``), gloo on the CPU. Every
collective has a timeout (``NNSPEC_DIST_TIMEOUT``, default 300 s), so a rank that dies takes the job
down instead of leaving the others waiting forever.

:class:`Replicas` is what the training loop uses: it wraps the model in
``DistributedDataParallel``, hands each step its slice of the global batch (see
:mod:`nnspec.training.parallel`), scales the local loss so DDP's gradient average is the global
batch's gradient, and sums the epoch's metric sums over all replicas.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from nnspec.training.errors import TrainingError
from nnspec.training.parallel import LAUNCHED_ENV, World, batch_slice, loss_scale, shard_range, timeout_seconds


class TorchCollective:
    """:class:`nnspec.training.parallel.Collective` on the default ``torch.distributed`` process group."""

    def __init__(self, world: World, device: str):
        self.world = world
        self.device = torch.device(device)

    def broadcast(self, obj: Any) -> Any:
        box = [obj if self.world.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_gather(self, obj: Any) -> list[Any]:
        out: list[Any] = [None] * self.world.size
        dist.all_gather_object(out, obj)
        return out

    def all_reduce_sum(self, values: np.ndarray) -> np.ndarray:
        t = torch.as_tensor(np.asarray(values, dtype=np.float64), device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.cpu().numpy()

    def barrier(self) -> None:
        if self.device.type == "cuda":
            dist.barrier(device_ids=[self.device.index or 0])
        else:
            dist.barrier()

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()


def init(world: World, device: str) -> tuple[TorchCollective, str]:
    """Join the launcher's process group; returns the collective and this process's device.

    ``device`` is the run's device (cpu | cuda): on cuda each process takes ``cuda:<local rank>``.
    """
    if device.startswith("cuda"):
        if world.local_rank >= torch.cuda.device_count():
            raise TrainingError(f"local rank {world.local_rank} has no GPU: this machine shows "
                                f"{torch.cuda.device_count()}; start at most that many processes per node")
        torch.cuda.set_device(world.local_rank)
        device, backend = f"cuda:{world.local_rank}", "nccl"
    else:
        device, backend = "cpu", "gloo"
    if not dist.is_initialized():
        for key in ("MASTER_ADDR", "MASTER_PORT"):
            if key not in os.environ:
                raise TrainingError(f"WORLD_SIZE={world.size} but {key} is not set: start replicas with "
                                    "torchrun or `nnspec train --nproc N`, which set up the rendezvous")
        timeout = datetime.timedelta(seconds=timeout_seconds())
        kwargs: dict[str, Any] = {"device_id": torch.device(device)} if backend == "nccl" else {}
        dist.init_process_group(backend, timeout=timeout, rank=world.rank, world_size=world.size, **kwargs)
    if device == "cpu":
        # the processes of one machine share its cores: each takes its part, not all of them
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        torch.set_num_threads(max(1, cores // max(1, world.local_size)))
    return TorchCollective(world, device), device


class Replicas:
    """What the torch loop asks of data parallelism: DDP, batch slices, loss scaling, reduced sums."""

    def __init__(self, collective: TorchCollective, sync_batch_norm: bool):
        self.collective = collective
        self.world = collective.world
        self.sync_batch_norm = sync_batch_norm

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """``model`` in DistributedDataParallel (rank 0's parameters and buffers are broadcast first)."""
        from torch.nn.parallel import DistributedDataParallel as DDP

        if self.sync_batch_norm:
            synchronise_batch_norm(model)
        import warnings

        # nnspec keeps Keras's kernel layouts as views: DDP notes the strides differ, which is harmless
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
        ids = [device.index] if device.type == "cuda" else None
        return DDP(model, device_ids=ids, output_device=ids[0] if ids else None, forward_sync_buffers=True)

    def take(self, global_idx: torch.Tensor) -> tuple[torch.Tensor, float, int]:
        """This replica's slice of a global batch: (indices, loss scale, examples counted).

        A replica left without an example (a last batch smaller than the world) runs one example of
        the batch with weight 0, so every replica joins the step's collectives.
        """
        g = len(global_idx)
        start, stop = batch_slice(g, self.world)
        if stop > start:
            return global_idx[start:stop], loss_scale(stop - start, g, self.world), stop - start
        return global_idx[:1], 0.0, 0

    def shard(self, arrays: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """This replica's contiguous share of a split (validation)."""
        n = len(next(iter(arrays.values())))
        start, stop = shard_range(n, self.world)
        return {k: v[start:stop] for k, v in arrays.items()}

    def global_mean_loss(self, scaled_loss: torch.Tensor) -> torch.Tensor:
        """The global batch's mean loss from each replica's scaled loss (one small all-reduce)."""
        total = scaled_loss.detach().clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total / self.world.size

    def reduce(self, sums: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Epoch sums of every replica added together (one all-reduce)."""
        packed = torch.stack(list(sums.values()))
        dist.all_reduce(packed, op=dist.ReduceOp.SUM)
        return dict(zip(sums, packed.unbind(0), strict=True))

    def broadcast_state(self, state: dict | None) -> dict | None:
        """Rank 0's optimiser state (read from a checkpoint) to every replica."""
        return self.collective.broadcast(state)


def synchronise_batch_norm(model: torch.nn.Module) -> int:
    """Make every nnspec BatchNorm of ``model`` use statistics over the global batch; returns how many."""
    from nnspec.backends.torch.layers import BatchNorm

    count = 0
    for module in model.modules():
        if isinstance(module, BatchNorm):
            module.batch_stats = global_batch_stats
            count += 1
    return count


def global_batch_stats(x: torch.Tensor, dims: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and biased variance over ``dims`` of the global batch (all replicas), differentiably.

    Two passes (sum -> mean, then the sum of squared deviations) as a single process computes them;
    the all-reduce carries the gradient back to every replica.
    """
    all_reduce = _AllReduceSum.apply
    xf = x.float()
    count = torch.tensor([float(x.numel() // max(1, x.shape[_channel_dim(x, dims)]))], device=x.device)
    packed = all_reduce(torch.cat([xf.sum(dim=dims), count]))
    n = packed[-1]
    mean = packed[:-1] / n
    shape = [1] * x.dim()
    shape[_channel_dim(x, dims)] = -1
    var = all_reduce((xf - mean.view(shape)).square().sum(dim=dims)) / n
    return mean.to(x.dtype), var.to(x.dtype)


class _AllReduceSum(torch.autograd.Function):
    """Sum over the replicas; the gradient of each replica's input is the sum of every replica's
    output gradient (each replica's loss depends on every input through the global statistics)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        out = grad.contiguous().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out


def _channel_dim(x: torch.Tensor, dims: list[int]) -> int:
    return next(d for d in range(x.dim()) if d not in dims)


# --- launching ------------------------------------------------------------------------------
def launch(argv: list[str], nproc: int, err: Any) -> int:
    """Run ``python -m nnspec <argv>`` as ``nproc`` workers through ``torch.distributed.run``'s launcher
    (a c10d rendezvous on this machine, as ``torchrun --standalone``); returns the exit status.

    A worker that fails records its one-line error in the launcher's error file instead of printing
    it; the first failure's message is printed here, once.
    """
    import logging
    import sys
    import uuid

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)  # the failure is told below
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"nnspec-{uuid.uuid4().hex[:8]}",
                          rdzv_backend="c10d", rdzv_endpoint="127.0.0.1:0", max_restarts=0, monitor_interval=0.1)
    os.environ[LAUNCHED_ENV] = "1"
    try:
        elastic_launch(config, sys.executable)("-m", "nnspec", *argv)
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        message = failure.message if isinstance(failure.message, str) else str(failure.message)
        if not message.startswith(("error:", "internal error:")) or failure.exitcode < 0:
            message = f"error: replica {rank} of {nproc} stopped ({message or f'exit code {failure.exitcode}'})"
        print(message.rstrip(), file=err)
        return failure.exitcode if failure.exitcode > 0 else 1
    except KeyboardInterrupt:
        print("interrupted; every completed epoch is saved: resume with nnspec train --resume RUN_DIR", file=err)
        return 130
    finally:
        os.environ.pop(LAUNCHED_ENV, None)
    return 0

