"""What happens between epochs, decided in plain Python for both backends.

- :class:`LearningRate` gives the learning rate of each epoch (step, exponential, cosine,
  reduce-on-plateau) or, for one-cycle, of each step (:func:`one_cycle_lr`).
- :class:`Monitor` tracks the best value of a logged quantity (early stopping, best checkpoint).

Both keep their state as a small dict so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import math
from typing import Any

from nnspec.training.settings import ScheduleSettings, monitor_mode


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's shuffling and dropout: a resumed run repeats the same epochs."""
    return (seed * 1_000_003 + epoch) % (2**31 - 1)


class _FloatOps:
    """The four operations :func:`one_cycle_lr` needs, on Python floats (a backend passes its tensor ops)."""

    cos = staticmethod(math.cos)
    minimum = staticmethod(min)

    @staticmethod
    def clip(x: float, low: float, high: float) -> float:
        return min(max(x, low), high)

    @staticmethod
    def where(condition: bool, a: float, b: float) -> float:
        return a if condition else b


def one_cycle_lr(step: Any, total_steps: int, max_lr: float, pct_start: float = 0.3,
                 div_factor: float = 25.0, final_div_factor: float = 1e4, ops: Any = _FloatOps) -> Any:
    """PyTorch's OneCycleLR (cosine annealing): warm up to ``max_lr``, then anneal far below the start.

    ``step`` is a float, or a tensor with ``ops`` the framework's ``cos``/``minimum``/``clip``/``where``
    (``keras.ops``): the one formula serves the per-epoch log and Keras's in-graph schedule.
    """
    start = max_lr / div_factor
    end = start / final_div_factor
    up = max(1.0, pct_start * total_steps - 1)
    down = max(1.0, total_steps - 1 - up)

    def cos(a: float, b: float, frac: Any) -> Any:
        return b + (a - b) / 2.0 * (1.0 + ops.cos(math.pi * frac))

    warm = cos(start, max_lr, ops.minimum(step / up, 1.0))
    anneal = cos(max_lr, end, ops.clip((step - up) / down, 0.0, 1.0))
    return ops.where(step <= up, warm, anneal)


class LearningRate:
    """The learning rate per epoch for a resolved ``schedule`` (see settings)."""

    def __init__(self, schedule: ScheduleSettings, base_lr: float, epochs: int, state: dict | None = None):
        self.schedule = schedule
        self.base_lr = base_lr
        self.epochs = epochs
        self.kind = schedule.type
        self.plateau = dict(state or {"lr": base_lr, "best": None, "wait": 0})

    @property
    def per_step(self) -> bool:
        return self.schedule.per_step

    def for_epoch(self, epoch: int) -> float:
        """Learning rate of 0-based ``epoch`` (for one-cycle: its first step's)."""
        s, lr = self.schedule.options, self.base_lr
        if self.kind == "step":
            return lr * s["gamma"] ** (epoch // s["step_size"])
        if self.kind == "exponential":
            return lr * s["gamma"] ** epoch
        if self.kind == "cosine":
            return s["min_lr"] + (lr - s["min_lr"]) * (1 + math.cos(math.pi * epoch / max(1, self.epochs))) / 2
        if self.kind == "reduce_on_plateau":
            return self.plateau["lr"]
        return lr

    def step_lr(self, global_step: int, total_steps: int) -> float:
        return one_cycle_lr(global_step, total_steps, self.schedule.options["max_lr"],
                           self.schedule.options.get("pct_start", 0.3))

    def epoch_end(self, logs: dict) -> None:
        """Reduce-on-plateau looks at the monitored value after each epoch."""
        if self.kind != "reduce_on_plateau":
            return
        s, st = self.schedule.options, self.plateau
        value = logs.get(s["monitor"])
        if value is None or not math.isfinite(value):
            return
        better = st["best"] is None or (value < st["best"] if monitor_mode(s["monitor"]) == "min" else value > st["best"])
        if better:
            st["best"], st["wait"] = value, 0
            return
        st["wait"] += 1
        if st["wait"] > s["patience"]:
            st["lr"] = max(s.get("min_lr", 0.0), st["lr"] * s["factor"])
            st["wait"] = 0

    def state(self) -> dict:
        return dict(self.plateau)


class Monitor:
    """Best value of one logged quantity; counts epochs without improvement."""

    def __init__(self, name: str, mode: str = "auto", min_delta: float = 0.0, state: dict | None = None):
        self.name = name
        self.mode = monitor_mode(name) if mode == "auto" else mode
        self.min_delta = min_delta
        st = state or {}
        self.best = st.get("best")
        self.best_epoch = st.get("best_epoch")
        self.wait = st.get("wait", 0)

    def update(self, epoch: int, logs: dict) -> bool:
        """Record ``epoch``'s logs; True when it is a new best."""
        value = logs.get(self.name)
        if value is None or not math.isfinite(value):
            self.wait += 1
            return False
        if self.best is None:
            improved = True
        elif self.mode == "min":
            improved = value < self.best - self.min_delta
        else:
            improved = value > self.best + self.min_delta
        if improved:
            self.best, self.best_epoch, self.wait = float(value), epoch, 0
        else:
            self.wait += 1
        return improved

    def state(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}
