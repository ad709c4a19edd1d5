"""The Keras training loop: ``model.fit`` itself, recording through :class:`Epochs`.

One ``fit`` call runs all epochs (one per epoch only when augmentation makes new inputs each
epoch); a callback hands each epoch's logs to :class:`Epochs`, sets the epoch's learning rate
and stops on request. ``steps_per_execution`` runs several steps per host round trip; the
NaN check reads the loss once per execution, so it names the steps in which the loss broke
(Keras on PyTorch runs one step per execution). Nothing here is specific to one Keras engine.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from nnspec.backends.keras.devices import device_scope, gpu_count, keras_backend
from nnspec.training.control import one_cycle_lr
from nnspec.training.errors import NonFiniteLoss
from nnspec.training.metrics import applicable_metrics, one_hot
from nnspec.training.settings import LossSettings, OptimizerSettings, Settings, resolve_device

EVAL_BATCH = 1024
CPU_STEPS_PER_EXECUTION = 16
GPU_STEPS_PER_EXECUTION = 32  # one compiled (XLA) execution runs this many steps: launch cost amortised


def select_device(requested: str) -> str:
    count = gpu_count()
    return resolve_device(requested, count > 0, count)


class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """The one-cycle schedule of :func:`nnspec.training.control.one_cycle_lr`, per optimiser step."""

    def __init__(self, total_steps: int, max_lr: float, pct_start: float = 0.3):
        self.total_steps, self.max_lr, self.pct_start = total_steps, max_lr, pct_start

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        return one_cycle_lr(step, self.total_steps, self.max_lr, self.pct_start, ops=keras.ops)

    def get_config(self):
        return {"total_steps": self.total_steps, "max_lr": self.max_lr, "pct_start": self.pct_start}


# loss name (nnspec.choices.LOSSES) -> Keras loss object; categorical cross-entropy gets one-hot targets
LOSSES: dict[str, Callable[[LossSettings], Any]] = {
    "categorical_crossentropy": lambda loss: keras.losses.CategoricalCrossentropy(
        from_logits=loss.from_logits, label_smoothing=loss.label_smoothing),
    "sparse_categorical_crossentropy": lambda loss: keras.losses.SparseCategoricalCrossentropy(
        from_logits=loss.from_logits),
    "binary_crossentropy": lambda loss: keras.losses.BinaryCrossentropy(
        from_logits=loss.from_logits, label_smoothing=loss.label_smoothing),
    "mse": lambda loss: keras.losses.MeanSquaredError(),
    "mae": lambda loss: keras.losses.MeanAbsoluteError(),
    "huber": lambda loss: keras.losses.Huber(delta=loss.delta),
}


def _accuracy(loss: LossSettings, top_k: int) -> Any:
    if loss.type == "categorical_crossentropy":
        return keras.metrics.CategoricalAccuracy(name="accuracy")
    if loss.type == "sparse_categorical_crossentropy":
        return keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    return keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0 if loss.from_logits else 0.5)


def _top_k(loss: LossSettings, top_k: int) -> Any:
    if loss.type == "categorical_crossentropy":
        return keras.metrics.TopKCategoricalAccuracy(k=top_k, name="top_k_accuracy")
    return keras.metrics.SparseTopKCategoricalAccuracy(k=top_k, name="top_k_accuracy")


# metric name (nnspec.choices.METRICS) -> Keras metric object for a head with that loss
METRICS: dict[str, Callable[[LossSettings, int], Any]] = {
    "accuracy": _accuracy,
    "top_k_accuracy": _top_k,
    "mae": lambda loss, top_k: keras.metrics.MeanAbsoluteError(name="mae"),
    "mse": lambda loss, top_k: keras.metrics.MeanSquaredError(name="mse"),
}


def _adam(opt: OptimizerSettings, common: dict) -> Any:
    o = opt.options
    cls = keras.optimizers.AdamW if opt.type == "adamw" else keras.optimizers.Adam
    return cls(beta_1=o["beta_1"], beta_2=o["beta_2"], epsilon=o["epsilon"], weight_decay=o["weight_decay"] or None,
               **common)


# optimiser name (nnspec.choices.OPTIMIZERS) -> Keras optimiser (``common``: learning rate, clipping)
OPTIMIZERS: dict[str, Callable[[OptimizerSettings, dict], Any]] = {
    "adam": _adam,
    "adamw": _adam,
    "sgd": lambda opt, common: keras.optimizers.SGD(
        momentum=opt.options["momentum"], nesterov=opt.options["nesterov"],
        weight_decay=opt.options["weight_decay"] or None, **common),
    "rmsprop": lambda opt, common: keras.optimizers.RMSprop(
        rho=opt.options["rho"], momentum=opt.options["momentum"], epsilon=opt.options["epsilon"],
        weight_decay=opt.options["weight_decay"] or None, **common),
}


def _loss(loss: LossSettings) -> Any:
    return LOSSES[loss.type](loss)


def _metric(name: str, loss: LossSettings, top_k: int) -> Any:
    return METRICS[name](loss, top_k)


def _optimizer(opt: OptimizerSettings, clip: float | None, lr: Any) -> Any:
    return OPTIMIZERS[opt.type](opt, {"learning_rate": lr, "global_clipnorm": clip})


class Loop:
    """Builds and compiles the Keras model for a run, runs ``fit``, predicts, saves and loads state."""

    optimizer_ext = "npz"

    def __init__(self, spec, settings: Settings, train, val, augment=None):
        from nnspec.backends import get_backend

        self.spec, self.settings = spec, settings
        self.backend = get_backend("keras")
        self.heads = list(spec.graph.heads)
        self.augment = augment
        self.scope: Any = device_scope(settings.device)  # or a Replicated strategy scope below
        self.replicated = None  # data parallel over several devices (nnspec.backends.keras.distribution)
        if settings.replicas > 1:
            from nnspec.backends.keras.distribution import Replicated

            self.replicated = Replicated(settings.replicas, settings.device, settings.sync_batch_norm is not False)
            self.scope = self.replicated
        keras.utils.set_random_seed(settings.seed)
        fp16 = settings.precision == "fp16"  # Keras adds loss scaling for mixed_float16 itself
        policy = ("mixed_float16" if fp16 else "mixed_bfloat16") \
            if settings.mixed_precision and settings.device.startswith("cuda") else None
        with self.scope:
            self.model = self.backend.build(spec, seed=settings.seed, dtype_policy=policy)
        if train is None:
            return
        if self.replicated is not None:  # JAX shards every batch evenly: splits keep a multiple of the devices
            train, val = self.replicated.even(train), self.replicated.even(val)
        self.n = len(train)
        self.x, self.y = train.x, self._targets(train.y)
        self.val = (val.x, self._targets(val.y)) if val is not None else None
        self.steps = math.ceil(self.n / settings.batch_size)
        spe = settings.steps_per_execution
        if spe == "auto":
            spe = GPU_STEPS_PER_EXECUTION if settings.device.startswith("cuda") else CPU_STEPS_PER_EXECUTION
        if keras_backend() == "torch":
            spe = 1  # Keras's PyTorch trainer runs exactly one step per execution
        self.steps_per_execution = max(1, min(int(spe), self.steps))
        self.per_step_lr = settings.schedule.per_step
        schedule = settings.schedule.options
        lr = (OneCycle(self.steps * settings.epochs, schedule["max_lr"], schedule.get("pct_start", 0.3))
              if self.per_step_lr else settings.lr)
        losses = settings.losses
        if self.replicated is not None:
            self.replicated.prepare(self.model)
        with self.scope:
            self.model.compile(
                optimizer=_optimizer(settings.optimizer, settings.gradient_clip, lr),
                loss={h: _loss(losses[h]) for h in self.heads} if len(self.heads) > 1 else _loss(losses[self.heads[0]]),
                loss_weights={h: losses[h].weight for h in self.heads} if len(self.heads) > 1 else None,
                metrics=self._metrics(),
                steps_per_execution=self.steps_per_execution,
                jit_compile=True if settings.compile else "auto",
            )

    def _metrics(self):
        s = self.settings
        per_head = {h: [_metric(m, s.losses[h], s.top_k) for m in applicable_metrics(s, h)] for h in self.heads}
        return per_head if len(self.heads) > 1 else per_head[self.heads[0]]

    def _targets(self, ys: dict) -> dict:
        """Canonical targets -> what Keras's losses take (one-hot for categorical cross-entropy)."""
        out = {}
        for head in self.heads:
            loss = self.settings.losses[head]
            y = ys[head]
            if loss.type == "categorical_crossentropy":
                k = self.spec.analysis.nodes[self.spec.graph.heads[head]].output_shape[-1]
                y = one_hot(y, k)
            out[head] = y
        return out

    def _x(self, x: dict):
        return x if len(x) > 1 else next(iter(x.values()))

    def _y(self, y: dict):
        return y if len(y) > 1 else next(iter(y.values()))

    def fit(self, start: int, end: int, epochs) -> None:
        from nnspec.training.control import epoch_seed

        s = self.settings
        bridge = _Bridge(self, epochs)
        val = (self._x(self.val[0]), self._y(self.val[1])) if self.val is not None else None
        kwargs = {"batch_size": s.batch_size, "validation_data": val, "verbose": 0, "callbacks": [bridge],
                  "validation_batch_size": max(s.batch_size, EVAL_BATCH), "shuffle": True}
        with self.scope:
            if self.augment is None:
                self.model.fit(self._x(self.x), self._y(self.y), epochs=end, initial_epoch=start, **kwargs)
                return
            for epoch in range(start, end):
                x = self.augment(self.x, np.random.default_rng(epoch_seed(s.seed, epoch)))
                x = x if isinstance(x, dict) else {next(iter(self.x)): x}
                self.model.fit(self._x(x), self._y(self.y), epochs=epoch + 1, initial_epoch=epoch, **kwargs)
                if bridge.stop:
                    return

    def predict(self, x: dict) -> dict:
        n = len(next(iter(x.values())))
        if self.replicated is not None:
            x, n = self.replicated.pad(x)
        with self.scope:
            out = self.model.predict(self._x(x), batch_size=EVAL_BATCH, verbose=0)
        if not isinstance(out, dict):
            out = {self.heads[0]: out}
        return {h: np.asarray(out[h], dtype=np.float32)[:n] for h in self.heads}

    def set_lr(self, lr: float) -> None:
        if not self.per_step_lr:
            self.model.optimizer.learning_rate.assign(lr)

    # --- state ---------------------------------------------------------------------------
    def get_weights(self) -> dict:
        return self.backend.get_weights(self.model, self.spec)

    def set_weights(self, weights: dict) -> None:
        self.backend.set_weights(self.model, self.spec, weights)

    def save_optimizer(self, path: str) -> None:
        from nnspec.fileio import atomic_write

        opt = self.model.optimizer
        arrays = {f"{i:04d}": _host(v.value) for i, v in enumerate(opt.variables)}
        buf = io.BytesIO()
        np.savez(buf, **arrays)  # type: ignore[arg-type]  # numpy stubs type **kwds as allow_pickle
        atomic_write(path, buf.getvalue())

    def load_optimizer(self, path: str) -> None:
        opt = self.model.optimizer
        if not opt.built:
            with self.scope:
                opt.build(self.model.trainable_variables)
        with np.load(path) as saved:
            values = [saved[k] for k in sorted(saved.files)]
        if len(values) != len(opt.variables):
            return  # a different optimiser layout: keep fresh moments rather than mix them up
        for var, value in zip(opt.variables, values, strict=True):
            var.assign(value)


def _host(value) -> np.ndarray:
    """A variable's value as numpy; a TensorFlow value mirrored over devices needs its own ``numpy()``."""
    numpy = getattr(value, "numpy", None)
    if numpy is not None and keras.backend.backend() == "tensorflow":
        return np.asarray(numpy())
    return np.asarray(keras.ops.convert_to_numpy(value))


class _Bridge(keras.callbacks.Callback):
    """Hands Keras's epoch logs to :class:`Epochs`; sets learning rates; catches NaN losses."""

    def __init__(self, loop: Loop, epochs):
        super().__init__()
        self.loop, self.epochs = loop, epochs
        self.stop = False
        self.epoch = 0
        self.started = 0.0
        self.lr = loop.settings.lr

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.epochs.epoch_begin(epoch)
        if self.loop.per_step_lr:
            schedule = self.loop.settings.schedule.options
            self.lr = one_cycle_lr(epoch * self.loop.steps, self.epochs.total_steps, schedule["max_lr"],
                                   schedule.get("pct_start", 0.3))
        else:
            self.lr = self.epochs.lr_for_epoch(epoch)
            self.loop.set_lr(self.lr)
        self.started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if not logs or "loss" not in logs:
            return
        value = float(logs["loss"])
        steps, spe = self.loop.steps, self.loop.steps_per_execution
        if not math.isfinite(value):
            last = batch + 1
            raise NonFiniteLoss(self.epoch + 1, last, steps, value, (max(1, last - spe + 1), last))
        progress = self.epochs.progress
        if progress.wants_steps and progress.due():
            progress.step(self.epoch, min(batch + 1, steps), steps, _rename(logs, self.loop.heads))

    def on_epoch_end(self, epoch, logs=None):
        logs = _rename(dict(logs or {}), self.loop.heads)
        seconds = time.perf_counter() - self.started
        if self.epochs.epoch_end(epoch, logs, seconds, self.lr):
            self.stop = True
            self.model.stop_training = True


def _rename(logs: dict, heads: list[str]) -> dict:
    """Keras's log names -> nnspec's (identical for one head; ``<head>_<metric>`` for several)."""
    out = {}
    for k, v in logs.items():
        if k in ("learning_rate", "lr", "val_learning_rate"):
            continue
        out[k] = float(v)
    return out
