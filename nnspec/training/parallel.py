"""Data-parallel training, framework-neutral: who this process is, how a global batch is split.

Every replica sees the same global permutation of an epoch (drawn once from the epoch's seed, as
a single process draws it) and takes its own contiguous slice of each global batch, so the
examples of one optimisation step are exactly those one process would use, whatever the number
of replicas; every example is read once per epoch, by one replica. ``train.batch_size`` is the
global batch: with ``N`` replicas each takes ``batch_size / N``.

The process group itself belongs to a backend (``torch.distributed``, ``jax.distributed``); it
is reached through the small :class:`Collective` protocol, so the orchestration in
:mod:`nnspec.training.run` (rank 0 writes, epoch sums are reduced, the run directory is shared)
never imports a framework. This module imports none either.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from nnspec.training.errors import TrainingError

DEFAULT_TIMEOUT_S = 300.0  # collectives give up after this long: a dead rank ends the job, not a hang
TIMEOUT_ENV = "NNSPEC_DIST_TIMEOUT"
LAUNCHED_ENV = "NNSPEC_LAUNCHED"  # set for the workers `nnspec train --nproc N` starts


@dataclass(frozen=True)
class World:
    """This process's place among the replicas: global rank and size, and those on this machine."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes the run directory, the progress and the plots."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> World:
        """The world ``torchrun`` (or any launcher setting RANK/WORLD_SIZE/LOCAL_RANK) describes."""
        env = os.environ if env is None else env
        try:
            size = int(env.get("WORLD_SIZE", "1"))
            rank = int(env.get("RANK", "0"))
            local_rank = int(env.get("LOCAL_RANK", str(rank)))
            local_size = int(env.get("LOCAL_WORLD_SIZE", str(size)))
        except ValueError as exc:
            raise TrainingError(f"the launcher's RANK/WORLD_SIZE/LOCAL_RANK are not integers ({exc}); "
                                "start replicas with torchrun or `nnspec train --nproc N`") from None
        if size < 1 or not 0 <= rank < size:
            raise TrainingError(f"RANK={rank} does not fit WORLD_SIZE={size}; start replicas with torchrun "
                                "or `nnspec train --nproc N`")
        return cls(rank, size, local_rank, max(1, local_size))


def timeout_seconds(env: Mapping[str, str] | None = None) -> float:
    """How long a collective may wait for the other replicas (``NNSPEC_DIST_TIMEOUT``, seconds)."""
    env = os.environ if env is None else env
    value = env.get(TIMEOUT_ENV)
    if not value:
        return DEFAULT_TIMEOUT_S
    try:
        seconds = float(value)
    except ValueError:
        raise TrainingError(f"{TIMEOUT_ENV}={value!r} is not a number of seconds") from None
    if seconds <= 0:
        raise TrainingError(f"{TIMEOUT_ENV} must be > 0 seconds (got {value})")
    return seconds


class Collective(Protocol):
    """The few collectives the orchestration needs; a backend implements them on its process group."""

    world: World

    def broadcast(self, obj: Any) -> Any: ...
    def all_gather(self, obj: Any) -> list[Any]: ...
    def all_reduce_sum(self, values: np.ndarray) -> np.ndarray: ...
    def barrier(self) -> None: ...
    def close(self) -> None: ...


class Solo:
    """The collectives of a single process: everything is already reduced."""

    world = World()

    def broadcast(self, obj: Any) -> Any:
        return obj

    def all_gather(self, obj: Any) -> list[Any]:
        return [obj]

    def all_reduce_sum(self, values: np.ndarray) -> np.ndarray:
        return values

    def barrier(self) -> None:
        pass

    def close(self) -> None:
        pass


# --- batches --------------------------------------------------------------------------------
def local_batch_size(batch_size: int, replicas: int, spec: Any = None, from_flag: bool = False) -> int:
    """``batch_size / replicas``; a batch that does not divide is a located error.

    ``from_flag``: the batch size came from ``--batch-size`` (the message names the flag, not the spec).
    """
    if replicas <= 1 or batch_size % replicas == 0:
        return batch_size // max(1, replicas)
    lower = batch_size - batch_size % replicas
    message = (f"train.batch_size {batch_size} is the global batch, but it does not divide evenly over "
               f"{replicas} replicas")
    hint = f"use a multiple of {replicas}, e.g. {lower or replicas} or {lower + replicas}"
    if from_flag:
        raise TrainingError(f"--batch-size {batch_size}: {message}; {hint}")
    source = getattr(spec, "source", None)
    if source is not None:
        from nnspec.errors import SpecError

        has_key = isinstance(getattr(source, "data", None), dict) and "batch_size" in (source.data.get("train") or {})
        path = ("train", "batch_size") if has_key else ("train",)
        raise SpecError(source.diagnostic(path, message + (" (64 is the default)" if not has_key else ""),
                                          "train", hint))
    raise TrainingError(f"{message}; {hint}")


def batch_slice(global_size: int, world: World) -> tuple[int, int]:
    """This replica's contiguous part ``[start, stop)`` of a global batch of ``global_size`` examples.

    Full batches split evenly (the batch size divides); a short last batch splits as evenly as it
    can (sizes differ by at most one; a replica may get none when the batch is smaller than the world).
    """
    start = world.rank * global_size // world.size
    stop = (world.rank + 1) * global_size // world.size
    return start, stop


def loss_scale(local: int, global_size: int, world: World) -> float:
    """The factor on a replica's mean loss so the average over replicas of the gradients (what DDP
    and the other engines compute) is the gradient of the global batch's mean loss."""
    return local * world.size / global_size if global_size else 0.0


def shard_range(n: int, world: World) -> tuple[int, int]:
    """This replica's contiguous share ``[start, stop)`` of ``n`` examples (validation, prediction)."""
    return batch_slice(n, world)


def members_of(rank: int, members: int, replicas: int) -> list[int]:
    """Ensemble members trained on ``rank``: round-robin, whole members (member i on rank i mod N)."""
    return list(range(rank, members, replicas))


def prepare_host_devices(engine: str | None, replicas: int, device: str,
                         env: MutableMapping[str, str] | None = None) -> None:
    """Before JAX starts: ``replicas`` host-platform devices, so CPU-only machines can run (and test)
    data-parallel Keras on JAX. TensorFlow's logical CPU devices are made by the backend itself."""
    env = os.environ if env is None else env
    if engine != "jax" or replicas <= 1 or device == "cuda":
        return
    flags = env.get("XLA_FLAGS", "")
    if "--xla_force_host_platform_device_count" not in flags:
        env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={replicas}".strip()


def report_failure(message: str, world: World, err: Any) -> None:
    """A worker's error: into the launcher's error file (the launcher shows the first one), and on
    stderr from rank 0 only when the launcher is plain ``torchrun``."""
    import json
    import time

    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump({"message": message, "timestamp": int(time.time())}, fh)
    if not os.environ.get(LAUNCHED_ENV) and world.is_main:
        print(message, file=err)
