"""The PyTorch training loop: as fast as a hand-written loop, recording through :class:`Epochs`.

- The data set is one pre-built tensor per input (on the training device); a batch is a tensor
  index of it (no DataLoader, no per-example Python).
- Metrics and the epoch loss are summed on the device; the host reads them once per epoch (on a
  terminal, also when the live line is redrawn, at most four times a second).
- Non-finite losses are caught with the exact step: on the CPU each step's loss is read (free,
  nothing to sync); on a GPU the step losses are kept on the device and checked every 50 steps
  (eager) or once at the epoch's end (CUDA graphs).
- One step is :meth:`Loop.train_step`. On a GPU it is captured once as a CUDA graph with the batch
  gather, the learning rate and the metric sums inside (:mod:`nnspec.backends.torch.graphs`,
  ``train.cuda_graphs``); fused optimisers on the GPU.
- GPU: bf16 autocast with ``train.mixed_precision``; ``torch.compile`` with ``train.compile``.
"""

from __future__ import annotations

import io
import math
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nnspec.training.errors import NonFiniteLoss, TrainingError
from nnspec.training.metrics import applicable_metrics
from nnspec.training.settings import LossSettings, OptimizerSettings, Settings, resolve_device

EPSILON = 1e-7
EVAL_BATCH = 1024
GPU_CHECK_EVERY = 50


def select_device(requested: str) -> str:
    """``auto`` | ``cpu`` | ``cuda`` -> the device this run uses (a clear error when cuda is missing)."""
    available = torch.cuda.is_available()
    return resolve_device(requested, available, torch.cuda.device_count() if available else 0)


def cpu_threads() -> int:
    """Threads torch should use: the cores this process may run on (torch's default can exceed them)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, min(torch.get_num_threads(), cores))


def _cross_entropy(out: torch.Tensor, y: torch.Tensor, loss: LossSettings) -> torch.Tensor:
    ls = loss.label_smoothing
    if loss.from_logits:
        return F.cross_entropy(out, y, label_smoothing=ls)
    logp = torch.log(out.clamp(EPSILON, 1.0 - EPSILON))
    nll = -logp.gather(1, y.unsqueeze(1)).squeeze(1)
    if ls:
        nll = (1.0 - ls) * nll - (ls / out.shape[-1]) * logp.sum(dim=1)
    return nll.mean()


def _binary_cross_entropy(out: torch.Tensor, y: torch.Tensor, loss: LossSettings) -> torch.Tensor:
    ls = loss.label_smoothing
    target = y * (1.0 - ls) + 0.5 * ls if ls else y
    if loss.from_logits:
        return F.binary_cross_entropy_with_logits(out, target)
    p = out.clamp(EPSILON, 1.0 - EPSILON)
    return -(target * torch.log(p) + (1.0 - target) * torch.log1p(-p)).mean()


# loss name (nnspec.choices.LOSSES) -> mean loss of one head, Keras's formulas (probabilities clipped
# to [1e-7, 1 - 1e-7]); targets are canonical (class indices for the categorical losses)
LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor, LossSettings], torch.Tensor]] = {
    "categorical_crossentropy": _cross_entropy,
    "sparse_categorical_crossentropy": _cross_entropy,
    "binary_crossentropy": _binary_cross_entropy,
    "mse": lambda out, y, loss: F.mse_loss(out, y),
    "mae": lambda out, y, loss: F.l1_loss(out, y),
    "huber": lambda out, y, loss: F.huber_loss(out, y, delta=loss.delta),
}


def head_loss(out: torch.Tensor, y: torch.Tensor, loss: LossSettings) -> torch.Tensor:
    """One head's mean loss (see :data:`LOSSES`)."""
    return LOSSES[loss.type](out.float(), y, loss)


def _accuracy(out: torch.Tensor, y: torch.Tensor, loss: LossSettings, top_k: int) -> torch.Tensor:
    if loss.class_indices:
        return (out.argmax(dim=-1) == y).sum()
    p = torch.sigmoid(out) if loss.from_logits else out
    hit = ((p > 0.5) == (y > 0.5)).float()
    return hit.reshape(len(hit), -1).mean(dim=1).sum()


def _top_k(out: torch.Tensor, y: torch.Tensor, loss: LossSettings, top_k: int) -> torch.Tensor:
    k = min(top_k, out.shape[-1])
    return (out.topk(k, dim=-1).indices == y.unsqueeze(1)).any(dim=1).sum()


def _error(square: bool) -> Callable[[torch.Tensor, torch.Tensor, LossSettings, int], torch.Tensor]:
    def metric(out: torch.Tensor, y: torch.Tensor, loss: LossSettings, top_k: int) -> torch.Tensor:
        diff = out.float() - y
        per = diff.square() if square else diff.abs()
        return per.reshape(len(per), -1).mean(dim=1).sum()

    return metric


# metric name (nnspec.choices.METRICS) -> its sum over a batch (mean over elements for mae/mse)
METRICS: dict[str, Callable[[torch.Tensor, torch.Tensor, LossSettings, int], torch.Tensor]] = {
    "accuracy": _accuracy,
    "top_k_accuracy": _top_k,
    "mae": _error(square=False),
    "mse": _error(square=True),
}


def _metric_sum(name: str, out: torch.Tensor, y: torch.Tensor, loss: LossSettings, top_k: int) -> torch.Tensor:
    return METRICS[name](out, y, loss, top_k)


# ``lr`` is the optimiser's rate: a float, or a device tensor a captured step reads; ``fast`` holds the
# kernel choice (fused/foreach/capturable, see ``Loop._optimizer``).
def _adam(params: list, opt: OptimizerSettings, lr: float | torch.Tensor, fast: dict) -> torch.optim.Optimizer:
    o = opt.options
    if opt.type == "adamw" or o["weight_decay"]:
        return torch.optim.AdamW(params, lr=lr, betas=(o["beta_1"], o["beta_2"]), eps=o["epsilon"],
                                 weight_decay=o["weight_decay"], **fast)
    return torch.optim.Adam(params, lr=lr, betas=(o["beta_1"], o["beta_2"]), eps=o["epsilon"], **fast)


def _sgd(params: list, opt: OptimizerSettings, lr: float | torch.Tensor, fast: dict) -> torch.optim.Optimizer:
    o = opt.options
    fast = {k: v for k, v in fast.items() if k != "capturable"}  # SGD has no such flag; fused SGD captures
    return torch.optim.SGD(params, lr=lr, momentum=o["momentum"], nesterov=o["nesterov"], **fast)


def _rmsprop(params: list, opt: OptimizerSettings, lr: float | torch.Tensor, fast: dict) -> torch.optim.Optimizer:
    o = opt.options
    if fast.get("fused"):  # no fused RMSprop: the capturable multi-tensor kernels instead
        fast = {"capturable": True, "foreach": True} if fast.get("capturable") else {"foreach": not torch.is_tensor(lr)}
    return torch.optim.RMSprop(params, lr=lr, alpha=o["rho"], eps=o["epsilon"], momentum=o["momentum"], **fast)


# optimiser name (nnspec.choices.OPTIMIZERS) -> (factory, decoupled weight decay applied by the loop):
# Keras's weight decay is decoupled for every optimiser; torch's SGD/RMSprop would couple it.
OPTIMIZERS: dict[str, tuple[Callable[[list, OptimizerSettings, float | torch.Tensor, dict], torch.optim.Optimizer],
                            bool]] = {
    "adam": (_adam, False),
    "adamw": (_adam, False),
    "sgd": (_sgd, True),
    "rmsprop": (_rmsprop, True),
}


class Loop:
    """Builds the model and optimiser for a run, runs epochs, predicts, saves and loads state."""

    optimizer_ext = "pt"

    def __init__(self, spec, settings: Settings, train, val, augment=None, parallel=None):
        from nnspec.backends import get_backend

        self.spec, self.settings = spec, settings
        self.backend = get_backend("torch")
        self.device = torch.device(settings.device)
        self.replicas = None  # data parallel (nnspec.backends.torch.distributed.Replicas) when several
        if parallel is not None and parallel.world.distributed:
            from nnspec.backends.torch.distributed import Replicas

            self.device = parallel.device
            self.replicas = Replicas(parallel, settings.sync_batch_norm is not False)
        self._wrapped = None
        torch.set_num_threads(cpu_threads())
        torch.manual_seed(settings.seed)
        self.model = self.backend.build(spec, seed=settings.seed).to(self.device)
        self.heads = list(spec.graph.heads)
        self.augment = augment
        self.amp = settings.mixed_precision and self.device.type == "cuda"
        self.amp_dtype = torch.float16 if settings.precision == "fp16" else torch.bfloat16
        # fp16 needs loss scaling (bf16 has fp32's range); a disabled scaler is a no-op
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and settings.precision == "fp16")
        self.forward = self.model
        self.has_penalty = bool(getattr(self.model, "penalties", None) or getattr(self.model, "activity", None))
        self._plan: list[tuple[str, str, str, LossSettings]] | None = None  # (log name, head, metric, loss)
        self.graph = None  # the captured epoch (graphs.CapturedEpoch), made on the first fit
        self.graph_mode = self._graph_mode(settings)
        self.capture_seconds = 0.0
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest kernels once
        if train is None:
            return
        self.train_np = train.x
        self.x = self._tensors(train.x)
        self.y = self._tensors(train.y)
        self.n = len(train)
        self.val = (self._tensors(val.x), self._tensors(val.y), len(val)) if val is not None else None
        if self.val is not None and self.replicas is not None:  # each replica scores its share; sums add up
            vx, vy = self.replicas.shard(self.val[0]), self.replicas.shard(self.val[1])
            self.val = (vx, vy, len(next(iter(vy.values()))))
        self.val_total = len(val) if val is not None else 0
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.clip = settings.gradient_clip
        self.lr_tensor: torch.Tensor | None = None
        self.optimizer = self._optimizer(settings.optimizer, tensor_lr=self.graph_mode != "off")
        if settings.compile:
            self.forward = torch.compile(self.model)

    def _graph_mode(self, settings: Settings) -> str:
        """``off`` (eager steps), ``auto`` (capture, fall back to eager with a note) or ``required``."""
        wanted = settings.cuda_graphs
        if wanted is False or wanted == "false" or self.replicas is not None:  # replicas: DDP steps, eager
            return "off"
        if self.device.type != "cuda":
            if wanted is True or wanted == "true":
                raise TrainingError(f"train.cuda_graphs: true needs a CUDA device, but this run trains on "
                                    f"{self.device.type}; use cuda_graphs: auto (or --device cuda)")
            return "off"
        return "required" if wanted is True or wanted == "true" else "auto"

    # --- setup ---------------------------------------------------------------------------
    def _tensors(self, arrays: dict) -> dict:
        return {k: torch.from_numpy(np.ascontiguousarray(v)).to(self.device) for k, v in arrays.items()}

    def _optimizer(self, opt: OptimizerSettings, tensor_lr: bool = False) -> torch.optim.Optimizer:
        """torch's optimiser with Keras's defaults; fused kernels on GPUs.

        ``tensor_lr``: the learning rate is a device tensor (``self.lr_tensor``) that a captured step
        reads, and the optimiser is one that can be captured (fused Adam/AdamW/SGD, capturable RMSprop).
        """
        factory, decoupled = OPTIMIZERS[opt.type]
        self.decoupled_decay = float(opt.options.get("weight_decay") or 0.0) if decoupled else 0.0
        lr: float | torch.Tensor = opt.lr
        if tensor_lr:
            self.lr_tensor = torch.tensor(float(opt.lr), dtype=torch.float32, device=self.device)
            lr = self.lr_tensor
        cuda = self.device.type == "cuda"
        fast: dict = {}
        if cuda or tensor_lr:
            fast["fused"] = True
        if cuda and tensor_lr:
            fast["capturable"] = True
        optimizer = factory(self.params, opt, lr, fast)
        optimizer._warned_capturable_if_run_uncaptured = True  # type: ignore[attr-defined]  # warm-up steps
        return optimizer

    def _set_lr(self, lr: float) -> None:
        if self.lr_tensor is not None:
            self.lr_tensor.fill_(lr)
            return
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    # --- training ------------------------------------------------------------------------
    def _run(self, forward, xb: dict) -> dict:
        """Head outputs of one batch (bf16 autocast on GPUs with mixed precision)."""
        if self.amp:  # no autocast weight cache: a captured graph must recompute the casts each replay
            with torch.autocast("cuda", dtype=self.amp_dtype, cache_enabled=False):
                out = forward(xb)
        else:
            out = forward(xb)
        return out if isinstance(out, dict) else {self.heads[0]: out}

    def _loss(self, outs: dict, ys: dict) -> torch.Tensor:
        losses = self.settings.losses
        total: torch.Tensor | None = None
        for head in self.heads:
            value = head_loss(outs[head], ys[head], losses[head])
            if losses[head].weight != 1.0:
                value = losses[head].weight * value
            total = value if total is None else total + value
        assert total is not None  # a spec has at least one head
        return total

    def state_tensors(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The model's parameters and buffers (what a step changes besides the optimiser's state)."""
        return list(self.model.parameters()), list(self.model.buffers())

    def gather(self, x: dict, idx: torch.Tensor) -> tuple[dict, dict]:
        """A batch: rows ``idx`` of the inputs ``x`` and of the targets."""
        return ({k: v.index_select(0, idx) for k, v in x.items()},  # cheaper than v[idx]
                {k: v.index_select(0, idx) for k, v in self.y.items()})

    def train_step(self, xb: dict, yb: dict, lr, sums: dict) -> torch.Tensor:
        """One optimiser step on one batch; adds the batch to the epoch's ``sums``; returns the loss.

        ``lr`` is the step's learning rate (a float, or the device tensor the optimiser reads). The
        same function runs eagerly and is captured as a CUDA graph (:mod:`.graphs`): nothing in it
        reads a value back to the host.
        """
        outs = self._run(self.forward, xb)
        loss = self._loss(outs, yb)
        if self.has_penalty:
            loss = loss + self.model.regularization_loss().to(loss.device)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip:
            torch.nn.utils.clip_grad_norm_(self.params, self.clip)
        if self.decoupled_decay:
            with torch.no_grad():
                torch._foreach_mul_(self.params, 1.0 - lr * self.decoupled_decay)
        self.optimizer.step()
        loss = loss.detach()
        self._accumulate(sums, loss, outs, yb, len(next(iter(yb.values()))))
        return loss

    def fit(self, start: int, end: int, epochs) -> None:
        from nnspec.training.control import epoch_seed

        s = self.settings
        bs, n = s.batch_size, self.n
        steps = math.ceil(n / bs)
        on_cpu = self.device.type == "cpu"
        progress = epochs.progress
        clip, params = self.clip, self.params
        replicas = self.replicas
        train_forward = self._data_parallel() if replicas is not None else self.forward
        # a captured step has no loss scaling: fp16 (GradScaler) trains eagerly
        graph = (self._captured(epochs) if self.graph_mode != "off" and replicas is None
                 and not self.scaler.is_enabled() else None)
        for epoch in range(start, end):
            epochs.epoch_begin(epoch)
            started = time.perf_counter()
            seed = epoch_seed(s.seed, epoch)
            # dropout of this epoch (its own stream per replica); the permutation is the global one
            torch.manual_seed(seed if replicas is None else epoch_seed(seed, replicas.world.rank))
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).to(self.device)
            x = self.x
            if self.augment is not None:
                fresh = self.augment(self.train_np, np.random.default_rng(seed))
                if graph is not None:  # the graph reads the data set in place
                    for k, v in fresh.items():
                        self.x[k].copy_(torch.from_numpy(np.ascontiguousarray(v)))
                else:
                    x = self._tensors(fresh)
            lr = epochs.lr_for_step(epoch * steps) if epochs.lr.per_step else epochs.lr_for_epoch(epoch)
            epoch_lr = lr  # history records the rate each epoch starts with (as for Keras)
            if graph is not None:
                lrs = ([epochs.lr_for_step(epoch * steps + i) for i in range(steps)] if epochs.lr.per_step
                       else [lr] * steps)
                graph.run(perm, lrs, self._graph_progress(progress, graph, epoch) if progress.wants_steps else None)
                logs = graph.results(epoch)
            else:
                self._set_lr(lr)
                sums = self._zero_sums()
                step_losses = torch.zeros(steps, device=self.device) if not on_cpu else None
                self.model.train()
                seen = 0  # examples this replica has counted
                for step in range(steps):
                    idx = perm[step * bs:(step + 1) * bs]
                    scale, nb = 1.0, len(idx)
                    if replicas is not None:  # this replica's contiguous slice of the global batch
                        idx, scale, nb = replicas.take(idx)
                    xb = {k: v.index_select(0, idx) for k, v in x.items()}  # cheaper than v[idx]
                    yb = {k: v.index_select(0, idx) for k, v in self.y.items()}
                    if epochs.lr.per_step:
                        lr = epochs.lr_for_step(epoch * steps + step)
                        self._set_lr(lr)
                    outs = self._run(train_forward, xb)
                    loss = self._loss(outs, yb)
                    if self.has_penalty:
                        loss = loss + self.model.regularization_loss().to(loss.device)
                    self.optimizer.zero_grad(set_to_none=True)
                    if replicas is not None:
                        # DDP averages the replicas' gradients: scaled, that is the global batch's gradient
                        self.scaler.scale(loss * scale).backward()
                        local_loss, loss = loss.detach(), replicas.global_mean_loss(loss.detach() * scale)
                    else:
                        self.scaler.scale(loss).backward()
                        local_loss = loss
                    if clip:
                        self.scaler.unscale_(self.optimizer)
                        torch.nn.utils.clip_grad_norm_(params, clip)
                    if self.decoupled_decay:
                        with torch.no_grad():
                            torch._foreach_mul_(params, 1.0 - lr * self.decoupled_decay)
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                    loss = loss.detach()
                    if on_cpu:
                        value = loss.item()
                        if not math.isfinite(value):
                            raise NonFiniteLoss(epoch + 1, step + 1, steps, value)
                    elif step_losses is not None:
                        step_losses[step] = loss
                        if (step + 1) % GPU_CHECK_EVERY == 0 or step + 1 == steps:
                            self._check_gpu_losses(step_losses, step + 1, epoch, steps)
                    if nb:
                        self._accumulate(sums, local_loss.detach(), outs, yb, nb)
                        seen += nb
                    if progress.wants_steps and progress.due():
                        progress.step(epoch, step + 1, steps, self._means(sums, max(1, seen)))
                logs = self._means(replicas.reduce(sums) if replicas is not None else sums, n)
            if self.val is not None:
                logs.update({f"val_{k}": v for k, v in self.evaluate(*self.val).items()})
            if epochs.epoch_end(epoch, logs, time.perf_counter() - started, epoch_lr):
                break

    def _data_parallel(self):
        """The model in DistributedDataParallel, wrapped once (after any resumed weights are set)."""
        if self._wrapped is None:
            assert self.replicas is not None
            ddp = self.replicas.wrap(self.model, self.device)
            self._wrapped = torch.compile(ddp) if self.settings.compile else ddp
        return self._wrapped

    def _captured(self, epochs):
        """The epoch as CUDA graph replays, captured on first use; None (eager) when capture fails under auto."""
        from nnspec.backends.torch.graphs import CapturedEpoch, CaptureFailed

        if self.graph is None:
            self.model.train()
            try:
                self.graph = CapturedEpoch(self, self.n, self.settings.batch_size)
            except CaptureFailed as exc:
                if self.graph_mode == "required":
                    raise TrainingError(f"train.cuda_graphs: true, but the training step could not be captured "
                                        f"as a CUDA graph ({exc}); set cuda_graphs: auto or false") from None
                epochs.progress.message(f"CUDA graphs off for this run: the step could not be captured ({exc}); "
                                        f"training eagerly")
                self.graph_mode = "off"
                return None
            self.capture_seconds = self.graph.capture_seconds
            epochs.progress.message(f"training step captured as a CUDA graph in {self.capture_seconds:.2f} s")
        return self.graph

    def _graph_progress(self, progress, graph, epoch: int):
        bs, n, steps = self.settings.batch_size, self.n, graph.steps

        def report(step: int) -> None:
            if progress.due():
                seen = (step + 1) * bs if step + 1 < steps else n
                progress.step(epoch, step + 1, steps, self._means(graph.sums, seen))

        return report

    def _check_gpu_losses(self, step_losses, upto: int, epoch: int, steps: int) -> None:
        seen = step_losses[:upto]
        if bool(torch.isfinite(seen).all()):
            return
        bad = int((~torch.isfinite(seen)).nonzero()[0, 0])
        raise NonFiniteLoss(epoch + 1, bad + 1, steps, float(seen[bad]))

    def _zero_sums(self) -> dict:
        z = torch.zeros((), dtype=torch.float64, device=self.device)
        sums = {"loss": z.clone()}
        if len(self.heads) > 1:
            for head in self.heads:
                sums[f"{head}_loss"] = z.clone()
        for head in self.heads:
            for m in applicable_metrics(self.settings, head):
                sums[self._name(head, m)] = z.clone()
        return sums

    def _name(self, head: str, metric: str) -> str:
        return f"{head}_{metric}" if len(self.heads) > 1 else metric

    def _accumulate(self, sums: dict, loss, outs: dict, ys: dict, nb: int) -> None:
        """Add one batch to the epoch's device-side sums (no host sync)."""
        s = self.settings
        if self._plan is None:
            self._plan = [(self._name(h, m), h, m, s.losses[h]) for h in self.heads
                          for m in applicable_metrics(s, h)]
        with torch.no_grad():
            sums["loss"].add_(loss, alpha=nb)
            if len(self.heads) > 1:
                for head in self.heads:
                    sums[f"{head}_loss"].add_(head_loss(outs[head], ys[head], s.losses[head]), alpha=nb)
            for key, head, metric, lossdef in self._plan:
                sums[key] += _metric_sum(metric, outs[head], ys[head], lossdef, s.top_k)

    @staticmethod
    def _means(sums: dict, n: int) -> dict:
        values = torch.stack(list(sums.values())).cpu().tolist()  # one host read
        return {k: v / n for k, v in zip(sums, values, strict=True)}

    @torch.no_grad()
    def evaluate(self, x: dict, y: dict, n: int) -> dict:
        """Loss and metrics over a split (eval mode), summed on the device."""
        self.model.eval()
        sums = self._zero_sums()
        for start in range(0, n, EVAL_BATCH):
            xb = {k: v[start:start + EVAL_BATCH] for k, v in x.items()}
            yb = {k: v[start:start + EVAL_BATCH] for k, v in y.items()}
            outs = self._run(self.forward, xb)
            loss = self._loss(outs, yb)
            if self.has_penalty:
                loss = loss + self.model.regularization_loss().to(loss.device)
            self._accumulate(sums, loss, outs, yb, len(next(iter(yb.values()))))
        self.model.train()
        if self.replicas is not None:  # every replica scored its share of the split
            return self._means(self.replicas.reduce(sums), self.val_total)
        return self._means(sums, n)

    @torch.no_grad()
    def predict(self, x: dict) -> dict:
        """Head outputs (float32 numpy) for inputs ``{input name: array}``."""
        self.model.eval()
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in x.items()}
        n = len(next(iter(tensors.values())))
        parts: dict[str, list] = {h: [] for h in self.heads}
        for start in range(0, n, EVAL_BATCH):
            xb = {k: v[start:start + EVAL_BATCH].to(self.device) for k, v in tensors.items()}
            outs = self._run(self.model, xb)
            for h in self.heads:
                parts[h].append(outs[h].float().cpu().numpy())
        return {h: np.concatenate(v) if v else np.zeros((0,)) for h, v in parts.items()}

    # --- state ---------------------------------------------------------------------------
    def get_weights(self) -> dict:
        return self.backend.get_weights(self.model, self.spec)

    def set_weights(self, weights: dict) -> None:
        self.backend.set_weights(self.model, self.spec, weights)

    def save_optimizer(self, path: str) -> None:
        from nnspec.fileio import atomic_write

        state = self.optimizer.state_dict()
        for group in state["param_groups"]:  # portable: a float rate, whichever loop (eager, graph) saved it
            if torch.is_tensor(group["lr"]):
                group["lr"] = float(group["lr"])
        buf = io.BytesIO()
        torch.save({"optimizer": state}, buf)
        atomic_write(path, buf.getvalue())

    def load_optimizer(self, path: str) -> None:
        """Moments and step counts from ``path``; this loop's own rate tensor and kernel choice are kept."""
        state = torch.load(path, map_location=self.device, weights_only=True)
        own: list[dict[str, Any]] = [{k: g[k] for k in ("lr", "fused", "capturable", "foreach") if k in g}
               for g in self.optimizer.param_groups]
        self.optimizer.load_state_dict(state["optimizer"])
        for group, flags in zip(self.optimizer.param_groups, own, strict=True):
            group.update(flags)
            on_device = bool(group.get("fused") or group.get("capturable"))
            for p in group["params"]:
                step = self.optimizer.state.get(p, {}).get("step")
                if torch.is_tensor(step):  # fused/capturable kernels read the step on the device, others on the host
                    self.optimizer.state[p]["step"] = step.to(p.device if on_device else "cpu", torch.float32)

