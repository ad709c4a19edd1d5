"""The torch training step captured once as CUDA graphs: an epoch is ``steps`` graph replays.

At the course's batch sizes a GPU step is a few dozen tiny kernels, and launching them from
Python costs more than running them. Capturing the whole step - batch gather, forward, loss,
backward, gradient clipping, weight decay, the optimiser (fused Adam/AdamW/SGD, capturable
RMSprop, learning rate read from a device tensor), the epoch's metric sums and the step's loss -
as one CUDA graph removes that cost: the host only replays it.

Everything the graph reads or writes lives in static device tensors:

- the data set (``loop.x``/``loop.y``; augmentation copies each epoch's images into them),
- the epoch's permutation ``order`` and a step ``counter`` the graph advances itself, so the
  graph gathers its own batch: ``order[counter * bs : (counter + 1) * bs]``,
- ``lr_table`` (one learning rate per step of the epoch: a constant epoch rate or one-cycle's
  per-step rates), copied into the optimiser's learning-rate tensor by the graph,
- ``step_losses`` (one per step) and the metric ``sums``, read once at the epoch's end: a
  non-finite loss is found there, with its exact step, without a host sync inside the epoch.

A training set whose size is not a multiple of the batch size gets a second graph for the last,
smaller batch. Before capture the step runs a few times on a side stream (cuDNN picks its
kernels, the optimiser creates its state, autograd allocates the gradients); the weights,
buffers and optimiser state are restored afterwards, so capture does not train.

The captured function is :meth:`CapturedEpoch.one_step`; it also runs eagerly (``capture=False``),
which is how the CPU tests check that it trains exactly as the eager loop does.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from nnspec.training.errors import NonFiniteLoss

if TYPE_CHECKING:
    from nnspec.backends.torch.loop import Loop

WARMUP_STEPS = 3


class CaptureFailed(RuntimeError):
    """The step could not be captured as a CUDA graph (the reason is the message)."""


class CapturedEpoch:
    """An epoch of ``loop`` as graph replays (or, with ``capture=False``, the same steps run eagerly)."""

    def __init__(self, loop: Loop, n: int, batch_size: int, capture: bool = True):
        self.loop = loop
        self.n, self.bs = n, batch_size
        self.full_steps, self.tail = divmod(n, batch_size)
        self.steps = self.full_steps + (1 if self.tail else 0)
        device = loop.device
        self.members = getattr(loop, "members", 0)  # an ensemble trainer batches its members
        lead = (self.members,) if self.members else ()
        self.order = torch.arange(n, device=device).expand(*lead, n).contiguous()
        self.counter = torch.zeros((), dtype=torch.int64, device=device)
        self.lr_table = torch.zeros(self.steps, dtype=torch.float32, device=device)
        self.step_losses = torch.zeros(self.steps, *lead, dtype=torch.float32, device=device)
        self.sums = loop._zero_sums()
        if loop.lr_tensor is None:
            raise CaptureFailed("the optimiser's learning rate is not a device tensor (build it with tensor_lr=True)")
        self.lr: torch.Tensor = loop.lr_tensor
        self.graphs: list[Any] = []
        self.capture_seconds = 0.0
        if capture:
            self._capture()

    # --- the captured step ------------------------------------------------------------------
    def _rows(self, tail: bool) -> torch.Tensor:
        """The batch's rows of the data set: ``order[..., counter * bs : (counter + 1) * bs]``."""
        lead = self.order.shape[:-1]
        if tail:
            return self.order[..., self.full_steps * self.bs:]
        grid = self.order[..., :self.full_steps * self.bs].reshape(*lead, self.full_steps, self.bs)
        return grid.index_select(len(lead), self.counter.view(1)).reshape(*lead, self.bs)

    def one_step(self, tail: bool = False) -> None:
        """One training step on the batch the counter points at; advances the counter."""
        loop = self.loop
        xb, yb = loop.gather(loop.x, self._rows(tail))
        with torch.no_grad():
            self.lr.copy_(self.lr_table.index_select(0, self.counter.view(1)).view(()))
        loss = loop.train_step(xb, yb, self.lr, self.sums)
        with torch.no_grad():
            self.step_losses.index_copy_(0, self.counter.view(1), loss.float().view(1, *loss.shape))
            self.counter.add_(1)

    # --- an epoch -----------------------------------------------------------------------------
    def run(self, order: torch.Tensor, lrs: list[float], progress: Callable[[int], None] | None = None) -> None:
        """Train one epoch over ``order`` (a permutation of the training rows) with per-step ``lrs``."""
        with torch.no_grad():
            self.order.copy_(order)
            self.lr_table.copy_(torch.tensor(lrs, dtype=torch.float32), non_blocking=False)
            self.counter.zero_()
            self.step_losses.zero_()
            for value in self.sums.values():
                value.zero_()
        for step in range(self.steps):
            tail = step == self.full_steps
            if self.graphs:
                self.graphs[1 if tail else 0].replay()
            else:
                self.one_step(tail)
            if progress is not None:
                progress(step)

    def results(self, epoch: int) -> Any:
        """The epoch's means (the loop's ``_means``: one host read); raises :class:`NonFiniteLoss`
        naming the first bad step when a step's loss was not finite."""
        if not bool(torch.isfinite(self.step_losses).all()):
            bad = (~torch.isfinite(self.step_losses)).nonzero()[0]
            value = float(self.step_losses[tuple(bad)])
            raise NonFiniteLoss(epoch + 1, int(bad[0]) + 1, self.steps, value)
        return self.loop._means(self.sums, self.n)

    # --- capture ------------------------------------------------------------------------------
    def _capture(self) -> None:
        started = time.perf_counter()
        saved = _snapshot(self.loop)
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(WARMUP_STEPS):
                    self.counter.zero_()
                    if self.full_steps:
                        self.one_step(False)
                    if self.tail:
                        self.one_step(True)
            torch.cuda.current_stream().wait_stream(side)
            torch.cuda.synchronize()
            _restore(self.loop, saved)
            self.counter.zero_()
            kinds = ([False] if self.full_steps else []) + ([True] if self.tail else [])
            graphs = {}
            for tail in kinds:
                self.loop.optimizer.zero_grad(set_to_none=True)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    self.one_step(tail)
                graphs[tail] = graph
            torch.cuda.synchronize()
        except Exception as exc:
            with contextlib.suppress(Exception):  # a failed capture may leave an error on the stream
                torch.cuda.synchronize()
            _restore(self.loop, saved)
            self.loop.optimizer.zero_grad(set_to_none=True)
            raise CaptureFailed(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
        _restore(self.loop, saved)  # capture records kernels without running them; the state is as saved
        self.graphs = [graphs.get(False), graphs.get(True)]
        self.counter.zero_()
        self.capture_seconds = time.perf_counter() - started


def _snapshot(loop: Loop) -> dict:
    """Copies of everything warm-up steps change: weights, buffers, optimiser state."""
    params, buffers = loop.state_tensors()
    optimizer = loop.optimizer
    return {
        "params": [p.detach().clone() for p in params],
        "buffers": [b.detach().clone() for b in buffers],
        "optimizer": {id(p): {k: v.detach().clone() for k, v in state.items() if torch.is_tensor(v)}
                      for p, state in optimizer.state.items()},
    }


@torch.no_grad()
def _restore(loop: Loop, saved: dict) -> None:
    """Put the snapshot back in place (same tensors: a captured graph keeps their addresses).

    Optimiser state created by the warm-up did not exist before: it is zeroed, which is what a
    fresh Adam/AdamW/RMSprop state is and what SGD's first momentum step computes.
    """
    params, buffers = loop.state_tensors()
    optimizer = loop.optimizer
    for p, value in zip(params, saved["params"], strict=True):
        p.copy_(value)
    for b, value in zip(buffers, saved["buffers"], strict=True):
        b.copy_(value)
    for p, state in optimizer.state.items():
        before = saved["optimizer"].get(id(p), {})
        for key, value in state.items():
            if not torch.is_tensor(value):
                continue
            if key in before:
                value.copy_(before[key])
            else:
                value.zero_()
