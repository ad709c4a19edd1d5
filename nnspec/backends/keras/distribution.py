"""Data-parallel Keras on the engines' own machinery: ``keras.distribution.DataParallel`` on JAX,
``tf.distribute.MirroredStrategy`` on TensorFlow.

One process drives ``replicas`` devices of its machine (GPUs, or on the CPU host-platform devices
made before the engine starts: ``--xla_force_host_platform_device_count`` for JAX, logical CPU
devices for TensorFlow). ``model.fit`` gets the global batch (``train.batch_size``) and the engine
splits it over the devices in order, so the data order is that of one device. Batch norm: JAX runs
one global program over the sharded batch, so its statistics are always the global batch's;
on TensorFlow ``train.sync_batch_norm`` turns on Keras's ``synchronized`` batch norm.

Several hosts on JAX: start every host with ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES`` and
``JAX_PROCESS_ID`` set; ``jax.distributed.initialize`` joins them and the data-parallel mesh spans
every device of every host.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import keras
import numpy as np

from nnspec.training.errors import TrainingError


class Replicated:
    """The distribution of one Keras run: a scope for building, compiling and fitting; BN sync."""

    def __init__(self, replicas: int, device: str, sync_batch_norm: bool):
        self.replicas = replicas
        self.engine = keras.backend.backend()
        self.sync_batch_norm = sync_batch_norm
        self.strategy: Any = None
        if self.engine == "jax":
            self.devices = _jax_devices(replicas, device)
            keras.distribution.set_distribution(keras.distribution.DataParallel(devices=self.devices))
        elif self.engine == "tensorflow":
            self.devices, self.strategy = _mirrored(replicas, device)
        else:
            raise TrainingError(f"keras on {self.engine} has no data-parallel engine here; use "
                                "--keras-backend jax or tensorflow, or --backend torch --nproc N")

        self._entered: list[Any] = []

    # a reusable context manager: where variables are made and steps run (the strategy's scope on TF)
    def __enter__(self) -> Any:
        cm = self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()
        self._entered.append(cm)
        return cm.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        return self._entered.pop().__exit__(*exc)

    def prepare(self, model: Any) -> None:
        """Before compiling: batch norm over the global batch where the engine needs to be told."""
        if self.engine == "tensorflow" and self.sync_batch_norm:
            for layer in _layers(model):
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.synchronized = True


    def even(self, data: Any) -> Any:
        """JAX splits every batch evenly over the devices: a split whose size does not divide keeps its
        first ``n - n % replicas`` examples (at most ``replicas - 1`` left out). TensorFlow needs nothing."""
        if data is None or self.engine != "jax":
            return data
        n = len(data)
        keep = n - n % self.replicas
        if keep == n:
            return data
        if keep == 0:
            raise TrainingError(f"{n} examples cannot be split over {self.replicas} devices; use more data")
        return type(data)({k: v[:keep] for k, v in data.x.items()}, {k: v[:keep] for k, v in data.y.items()})

    def pad(self, x: dict) -> tuple[dict, int]:
        """Inputs padded (repeating the last row) to a multiple of the devices; the caller keeps ``n`` rows."""
        n = len(next(iter(x.values())))
        extra = -n % self.replicas if self.engine == "jax" else 0
        if not extra or not n:
            return x, n
        return {k: np.concatenate([v, np.repeat(v[-1:], extra, axis=0)]) for k, v in x.items()}, n


def _layers(model: Any) -> list:
    out = []
    for layer in model.layers:
        out.append(layer)
        if hasattr(layer, "layers"):
            out.extend(_layers(layer))
    return out


def _jax_devices(replicas: int, device: str) -> list[str]:
    import jax

    _join_jax_hosts()
    kind = "gpu" if device == "cuda" else "cpu"
    devices = keras.distribution.list_devices(kind)
    if len(devices) < replicas:
        raise TrainingError(f"{replicas} replicas were asked for, but JAX shows {len(devices)} {kind} device(s); "
                            + ("on the CPU, start a fresh process (the devices are made when JAX starts)"
                               if kind == "cpu" else "use at most that many"))
    if jax.process_count() > 1:
        return devices  # every device of every host
    return devices[:replicas]


def _join_jax_hosts() -> None:
    """``jax.distributed.initialize`` when the JAX_* variables describe several hosts."""
    if not os.environ.get("JAX_COORDINATOR_ADDRESS"):
        return
    import jax

    if jax.process_count() == 1 and int(os.environ.get("JAX_NUM_PROCESSES", "1")) > 1:
        jax.distributed.initialize()


def _mirrored(replicas: int, device: str) -> tuple[list[str], Any]:
    import tensorflow as tf

    if device == "cuda":
        gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
        if len(gpus) < replicas:
            raise TrainingError(f"{replicas} replicas were asked for, but TensorFlow shows {len(gpus)} GPU(s)")
        names = gpus[:replicas]
        return names, tf.distribute.MirroredStrategy(devices=names)
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * replicas)
    except RuntimeError:
        pass  # the runtime has started: keep the logical devices it has, checked below
    names = [d.name for d in tf.config.list_logical_devices("CPU")]
    if len(names) < replicas:
        raise TrainingError(f"{replicas} replicas were asked for, but TensorFlow already runs with {len(names)} "
                            "CPU device(s) in this process; start a fresh process")
    names = names[:replicas]
    return names, tf.distribute.MirroredStrategy(devices=names,
                                                 cross_device_ops=tf.distribute.ReductionToOneDevice())
