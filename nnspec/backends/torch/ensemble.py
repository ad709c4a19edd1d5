"""Ensemble members trained together: one batched model instead of M models one after another.

The members' parameters and buffers are stacked (``torch.func.stack_module_state``: one tensor of
shape (M, ...) per parameter) and one forward runs them all (``torch.func.vmap`` over
``functional_call``; a convolution of M members becomes one grouped convolution). Each member keeps
everything it has when trained alone:

- its own initial weights (the member's seed), its own shuffling (the member's epoch seeds) and,
  with augmentation, its own augmented images; the same data set and schedule,
- its own optimiser: Adam, SGD and RMSprop are element-wise, so one optimiser over the stacked
  tensors is M independent ones; gradient clipping uses each member's own gradient norm,
- its own losses, metrics, validation, history, checkpoints (weights and an optimiser file in the
  one-member format), early stopping and best weights, through one :class:`Epochs` per member.

Dropout draws differ from one-by-one training (one random stream for the batch), so members match
sequential training exactly without dropout and statistically with it. On a GPU the batched step is
captured as CUDA graphs like a single model's (:mod:`.graphs`).
"""

from __future__ import annotations

import copy
import io
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from nnspec.backends.torch.loop import EVAL_BATCH, Loop, _metric_sum, cpu_threads, head_loss
from nnspec.training.errors import NonFiniteLoss, TrainingError
from nnspec.training.metrics import applicable_metrics
from nnspec.training.settings import Settings


class BatchingUnsupported(TrainingError):
    """This spec's members cannot be batched (the reason is the message); train them one by one."""


class EnsembleLoop(Loop):
    """M members of one spec trained as one batched model; :meth:`member` gives member i's trainer view."""

    def __init__(self, spec, settings: Sequence[Settings], train, val, augment=None):
        from torch.func import stack_module_state

        from nnspec.backends import get_backend

        first = settings[0]
        self.spec, self.settings, self.member_settings = spec, first, list(settings)
        self.members = len(settings)
        self.backend = get_backend("torch")
        self.device = torch.device(first.device)
        torch.set_num_threads(cpu_threads())
        self.models = [self.backend.build(spec, seed=s.seed).to(self.device) for s in settings]
        model = self.models[0]
        if getattr(model, "penalties", None) or getattr(model, "activity", None):
            raise BatchingUnsupported("regularisation penalties are recorded per model")
        self.heads = list(spec.graph.heads)
        self.augment = augment
        self.amp = first.mixed_precision and self.device.type == "cuda"
        self.has_penalty = False
        self._plan = None
        self.replicas = None  # members are batched on one device, not data-parallel
        self.graph = None
        self.graph_mode = self._graph_mode(first)
        self.capture_seconds = 0.0
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        params, buffers = stack_module_state(self.models)
        self.trainable = [name for name, p in model.named_parameters() if p.requires_grad]
        self.stacked = {name: (p if name in self.trainable else p.detach()) for name, p in params.items()}
        self.stacked_buffers = buffers
        self.template = copy.deepcopy(model).to("meta")
        self.model = self.template  # what the shared loop code puts in train mode
        self.params = [self.stacked[name] for name in self.trainable]
        self.train_np = train.x
        self.n = len(train)
        self.x = self._tensors(train.x)
        self._x_per_member = augment is not None  # each member gets its own augmented images each epoch
        if self._x_per_member:
            self.x = {k: v.unsqueeze(0).repeat(self.members, *([1] * v.dim())) for k, v in self.x.items()}
        self.y = self._tensors(train.y)
        self.val = (self._tensors(val.x), self._tensors(val.y), len(val)) if val is not None else None
        self.clip = first.gradient_clip
        self.lr_tensor = None
        self.optimizer = self._optimizer(first.optimizer, tensor_lr=self.graph_mode != "off")
        self._vmapped = torch.func.vmap(self._member_step, in_dims=(0, 0, 0, 0), randomness="different")
        self._check_batching()

    # --- the batched model ------------------------------------------------------------------
    def _forward(self, params: dict, buffers: dict, xb: dict) -> dict:
        out = torch.func.functional_call(self.template, (params, buffers), (xb,))
        return out if isinstance(out, dict) else {self.heads[0]: out}

    def _member_step(self, params: dict, buffers: dict, xb: dict, yb: dict):
        """One member's loss and metric sums on its batch (run under vmap)."""
        if self.amp:
            with torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False):
                outs = self._forward(params, buffers, xb)
        else:
            outs = self._forward(params, buffers, xb)
        loss = self._loss(outs, yb)
        return loss, self._stats(outs, yb)

    def _stats(self, outs: dict, ys: dict) -> dict:
        s = self.settings
        if self._plan is None:
            self._plan = [(self._name(h, m), h, m, s.losses[h]) for h in self.heads
                          for m in applicable_metrics(s, h)]
        stats = {}
        with torch.no_grad():
            if len(self.heads) > 1:
                for head in self.heads:
                    stats[f"{head}_loss"] = head_loss(outs[head], ys[head], s.losses[head]).double()
            for key, head, metric, lossdef in self._plan:
                stats[key] = _metric_sum(metric, outs[head], ys[head], lossdef, s.top_k).double()
        return stats

    def _check_batching(self) -> None:
        """Run the batched step once on two examples (weights untouched) to learn whether vmap can batch it."""
        idx = torch.arange(min(2, self.n), device=self.device).expand(self.members, -1)
        xb, yb = self.gather(self.x, idx)
        saved = [b.clone() for b in self.stacked_buffers.values()]
        try:
            self.template.train()
            losses, _ = self._vmapped(self.stacked, self.stacked_buffers, xb, yb)
            torch.autograd.grad(losses.sum(), self.params, allow_unused=True)
        except Exception as exc:  # vmap has no batching rule for some layer: one by one instead
            raise BatchingUnsupported(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
        finally:
            with torch.no_grad():
                for b, value in zip(self.stacked_buffers.values(), saved, strict=True):
                    b.copy_(value)

    # --- what the step and the captured epoch use -------------------------------------------
    def state_tensors(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        return list(self.stacked.values()), list(self.stacked_buffers.values())

    def gather(self, x: dict, idx: torch.Tensor) -> tuple[dict, dict]:
        """Each member's batch: ``idx`` is (M, batch); data shared (N, ...) or per member (M, N, ...)."""
        def take(v: torch.Tensor, per_member: bool) -> torch.Tensor:
            if not per_member:
                return v.index_select(0, idx.reshape(-1)).view(*idx.shape, *v.shape[1:])
            offsets = (torch.arange(self.members, device=idx.device) * v.shape[1]).view(-1, 1)
            flat = v.reshape(-1, *v.shape[2:]).index_select(0, (idx + offsets).reshape(-1))
            return flat.view(*idx.shape, *v.shape[2:])

        return ({k: take(v, self._x_per_member) for k, v in x.items()}, {k: take(v, False) for k, v in self.y.items()})

    def train_step(self, xb: dict, yb: dict, lr, sums: dict) -> torch.Tensor:
        """One optimiser step of every member on its own batch; returns the members' losses (M,)."""
        losses, stats = self._vmapped(self.stacked, self.stacked_buffers, xb, yb)
        self.optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()  # members are independent: each gets exactly its own gradient
        if self.clip:
            self._clip_per_member(self.clip)
        if self.decoupled_decay:
            with torch.no_grad():
                torch._foreach_mul_(self.params, 1.0 - lr * self.decoupled_decay)
        self.optimizer.step()
        losses = losses.detach()
        nb = next(iter(yb.values())).shape[1]
        with torch.no_grad():
            sums["loss"].add_(losses.double(), alpha=nb)
            for key, value in stats.items():
                sums[key].add_(value * nb if key.endswith("_loss") else value)
        return losses

    @torch.no_grad()
    def _clip_per_member(self, max_norm: float) -> None:
        grads = [p.grad for p in self.params if p.grad is not None]
        squares = sum(g.float().square().reshape(self.members, -1).sum(dim=1) for g in grads)
        coef = (max_norm / (squares.sqrt() + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(coef.view(-1, *([1] * (g.dim() - 1))).to(g.dtype))

    def _zero_sums(self) -> dict:
        z = torch.zeros(self.members, dtype=torch.float64, device=self.device)
        names = ["loss"] + ([f"{h}_loss" for h in self.heads] if len(self.heads) > 1 else [])
        names += [self._name(h, m) for h in self.heads for m in applicable_metrics(self.settings, h)]
        return {name: z.clone() for name in names}

    @staticmethod
    def _means(sums: dict, n: int) -> list[dict]:  # type: ignore[override]
        values = torch.stack(list(sums.values())).cpu().numpy()  # one host read: (metrics, M)
        return [{k: float(values[j, i]) / n for j, k in enumerate(sums)} for i in range(values.shape[1])]

    # --- epochs ------------------------------------------------------------------------------
    def fit(self, start: int, end: int, epochs: Sequence[Any]) -> None:  # type: ignore[override]
        """Train every member from ``start``; ``epochs[i]`` records member i. A member whose sink asks
        to stop (early stopping) is no longer recorded; its saved checkpoints are its result."""
        from nnspec.training.control import epoch_seed

        bs, n, m = self.settings.batch_size, self.n, self.members
        steps = math.ceil(n / bs)
        lead = epochs[0]
        graph = self._captured(lead) if self.graph_mode != "off" else None
        active = list(range(m))
        for epoch in range(start, end):
            for i in active:
                epochs[i].epoch_begin(epoch)
            started = time.perf_counter()
            seeds = [epoch_seed(s.seed, epoch) for s in self.member_settings]
            torch.manual_seed(seeds[0])  # dropout of this epoch (one stream for the batch)
            perms = torch.stack([torch.randperm(n, generator=torch.Generator().manual_seed(seed))
                                 for seed in seeds]).to(self.device)
            if self.augment is not None:  # in place: a captured graph reads these tensors
                fresh = [self.augment(self.train_np, np.random.default_rng(seed)) for seed in seeds]
                for k, v in self.x.items():
                    v.copy_(torch.from_numpy(np.stack([np.ascontiguousarray(f[k]) for f in fresh])))
            x = self.x
            lr = lead.lr_for_step(epoch * steps) if lead.lr.per_step else lead.lr_for_epoch(epoch)
            lrs = [lead.lr_for_step(epoch * steps + i) for i in range(steps)] if lead.lr.per_step else [lr] * steps
            if graph is not None:
                graph.run(perms, lrs)
                logs = graph.results(epoch)
            else:
                logs = self._eager_members(x, perms, epoch, lrs)
            if self.val is not None:
                for i, val_logs in enumerate(self.evaluate(*self.val)):
                    logs[i].update({f"val_{k}": v for k, v in val_logs.items()})
            seconds = time.perf_counter() - started
            active = [i for i in active if not epochs[i].epoch_end(epoch, logs[i], seconds, lr)]
            if not active:
                break

    def _eager_members(self, x: dict, perms: torch.Tensor, epoch: int, lrs: list[float]) -> list[dict]:
        bs, n = self.settings.batch_size, self.n
        steps = math.ceil(n / bs)
        sums = self._zero_sums()
        step_losses = torch.zeros(steps, self.members, device=self.device)
        for step in range(steps):
            self._set_lr(lrs[step])
            xb, yb = self.gather(x, perms[:, step * bs:(step + 1) * bs])
            step_losses[step] = self.train_step(xb, yb, lrs[step], sums)
        if not bool(torch.isfinite(step_losses).all()):
            bad = (~torch.isfinite(step_losses)).nonzero()[0]
            raise NonFiniteLoss(epoch + 1, int(bad[0]) + 1, steps, float(step_losses[tuple(bad)]))
        return self._means(sums, n)

    @torch.no_grad()
    def _outputs(self, xb: dict) -> dict:
        """Every member's head outputs for the same inputs (eval mode): {head: (M, batch, ...)}."""
        self.template.eval()
        forward = torch.func.vmap(self._forward, in_dims=(0, 0, None), randomness="different")
        try:
            if self.amp:
                with torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False):
                    return forward(self.stacked, self.stacked_buffers, xb)
            return forward(self.stacked, self.stacked_buffers, xb)
        finally:
            self.template.train()

    @torch.no_grad()
    def evaluate(self, x: dict, y: dict, n: int) -> list[dict]:  # type: ignore[override]
        sums = self._zero_sums()
        for start in range(0, n, EVAL_BATCH):
            xb = {k: v[start:start + EVAL_BATCH] for k, v in x.items()}
            yb = {k: v[start:start + EVAL_BATCH] for k, v in y.items()}
            outs = self._outputs(xb)
            per_member = torch.func.vmap(lambda o, t: (self._loss(o, t), self._stats(o, t)), in_dims=(0, None))
            losses, stats = per_member(outs, yb)
            nb = len(next(iter(yb.values())))
            sums["loss"].add_(losses.double(), alpha=nb)
            for key, value in stats.items():
                sums[key].add_(value * nb if key.endswith("_loss") else value)
        return self._means(sums, n)

    @torch.no_grad()
    def predict_members(self, x: dict) -> list[dict]:
        """Each member's head outputs (float32 numpy) for inputs ``{input name: array}``."""
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in x.items()}
        n = len(next(iter(tensors.values())))
        parts: dict[str, list] = {h: [] for h in self.heads}
        for start in range(0, n, EVAL_BATCH):
            outs = self._outputs({k: v[start:start + EVAL_BATCH].to(self.device) for k, v in tensors.items()})
            for h in self.heads:
                parts[h].append(outs[h].float().cpu().numpy())
        return [{h: np.concatenate([p[i] for p in parts[h]]) for h in self.heads} for i in range(self.members)]

    # --- one member's state ------------------------------------------------------------------
    def member(self, i: int) -> MemberView:
        return MemberView(self, i)

    def _sync_member(self, i: int) -> torch.nn.Module:
        """Copy member i's slice of the stacked state into its own module and return that module."""
        model = self.models[i]
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(self.stacked[name][i])
            for name, b in model.named_buffers():
                b.copy_(self.stacked_buffers[name][i])
        return model

    def member_weights(self, i: int) -> dict:
        return self.backend.get_weights(self._sync_member(i), self.spec)

    def set_member_weights(self, i: int, weights: dict) -> None:
        model = self.models[i]
        self.backend.set_weights(model, self.spec, weights)
        with torch.no_grad():
            for name, p in model.named_parameters():
                self.stacked[name][i].copy_(p)
            for name, b in model.named_buffers():
                self.stacked_buffers[name][i].copy_(b)

    def member_optimizer_state(self, i: int) -> dict:
        """Member i's optimiser state in the one-member loop's format (its parameter order and keys)."""
        state = self.optimizer.state_dict()
        for group in state["param_groups"]:
            if torch.is_tensor(group["lr"]):
                group["lr"] = float(group["lr"])
        state["state"] = {idx: {k: (v[i].clone() if torch.is_tensor(v) and v.dim() > 0 else v) for k, v in s.items()}
                          for idx, s in state["state"].items()}
        return state

    def save_member_optimizer(self, i: int, path: str) -> None:
        from nnspec.fileio import atomic_write

        buf = io.BytesIO()
        torch.save({"optimizer": self.member_optimizer_state(i)}, buf)
        atomic_write(path, buf.getvalue())

    def load_member_optimizers(self, paths: Sequence[str]) -> None:
        """Stack the members' saved optimiser states (one-member format) into this optimiser."""
        saved = [torch.load(p, map_location=self.device, weights_only=True)["optimizer"] for p in paths]
        state = {"param_groups": saved[0]["param_groups"], "state": {}}
        for idx, first in saved[0]["state"].items():
            state["state"][idx] = {k: (torch.stack([s["state"][idx][k] for s in saved])
                                       if torch.is_tensor(v) and v.dim() > 0 else v) for k, v in first.items()}
        own: list[dict[str, Any]] = [{k: g[k] for k in ("lr", "fused", "capturable", "foreach") if k in g}
               for g in self.optimizer.param_groups]
        self.optimizer.load_state_dict(state)
        self._keep_own_flags(own)

    def _keep_own_flags(self, own: list[dict]) -> None:
        for group, flags in zip(self.optimizer.param_groups, own, strict=True):
            group.update(flags)
            on_device = bool(group.get("fused") or group.get("capturable"))
            for p in group["params"]:
                step = self.optimizer.state.get(p, {}).get("step")
                if torch.is_tensor(step):
                    self.optimizer.state[p]["step"] = step.to(p.device if on_device else "cpu", torch.float32)


class MemberView:
    """Member ``i`` of an :class:`EnsembleLoop`, seen as one run's trainer (what :class:`Epochs` asks of it)."""

    optimizer_ext = "pt"

    def __init__(self, ensemble: EnsembleLoop, i: int):
        self.ensemble, self.i = ensemble, i

    def get_weights(self) -> dict:
        return self.ensemble.member_weights(self.i)

    def set_weights(self, weights: dict) -> None:
        self.ensemble.set_member_weights(self.i, weights)

    def save_optimizer(self, path: str) -> None:
        self.ensemble.save_member_optimizer(self.i, path)

    def predict(self, x: dict) -> dict:
        return self.ensemble.predict_members(x)[self.i]
