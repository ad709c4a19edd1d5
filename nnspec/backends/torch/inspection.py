"""Inspecting a trained run's torch model: class probabilities, feature maps, Grad-CAM.

Built by :func:`nnspec.inspect.model.open_runner` through the backend registry; the neutral parts
(which score Grad-CAM explains, normalising maps) live in :mod:`nnspec.inspect.model`.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import numpy as np

from nnspec.backends.inspection import BATCH, Scores, normalise_cams, softmax

if TYPE_CHECKING:
    from nnspec.inspect.run import InspectedRun


class TorchRunner:
    backend = "torch"

    def __init__(self, run: InspectedRun, model):
        import torch

        self.torch, self.run, self.model = torch, run, model
        self.scores = Scores(run)
        model.eval()

    def _forward(self, x: np.ndarray):
        return self.model(self.torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32)))

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, classes)``."""
        out = []
        with self.torch.no_grad():
            for i in range(0, len(x), BATCH):
                out.append(self._forward(x[i : i + BATCH]).cpu().numpy())
        p = np.concatenate(out) if out else np.zeros((0, len(self.run.class_names)), np.float32)
        return softmax(p) if self.scores.from_logits else p

    def feature_maps(self, x: np.ndarray, layer: str) -> np.ndarray:
        """The output of ``layer`` for ``x``, channels-last as the spec writes it."""
        captured = []
        handle = self.model.layers[layer].register_forward_hook(lambda m, i, o: captured.append(o.detach()))
        try:
            with self.torch.no_grad():
                self._forward(x)
        finally:
            handle.remove()
        return captured[0].cpu().numpy()

    @contextlib.contextmanager
    def _logits(self):
        module = self.model.layers[self.scores.head]
        if not self.scores.swap_activation or not hasattr(module, "act"):
            yield
            return
        saved, module.act = module.act, "linear"
        try:
            yield
        finally:
            module.act = saved

    def grad_cam(self, x: np.ndarray, layer: str, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Grad-CAM of ``classes[i]`` for each image: (maps at the input's size in [0, 1], raw maps)."""
        torch = self.torch
        captured: dict[str, Any] = {}

        def keep(name):
            def hook(module, inputs, output):
                captured[name] = output
                if name == "target":
                    output.retain_grad()

            return hook

        handles = [self.model.layers[layer].register_forward_hook(keep("target"))]
        if self.scores.logits_node != self.scores.head:
            handles.append(self.model.layers[self.scores.logits_node].register_forward_hook(keep("logits")))
        try:
            with torch.enable_grad(), self._logits():
                out = self._forward(x)
                logits = captured.get("logits", out)
                if self.scores.log_probs:
                    logits = torch.log(logits.clamp_min(1e-12))
                idx = torch.as_tensor(np.asarray(classes, dtype=np.int64))
                score = logits.gather(1, idx[:, None]).sum()
                self.model.zero_grad(set_to_none=True)
                score.backward()
        finally:
            for h in handles:
                h.remove()
        acts = captured["target"].detach()
        grads = captured["target"].grad.detach()
        weights = grads.mean(dim=(1, 2), keepdim=True)  # (N, 1, 1, C): channel importance
        raw = torch.relu((weights * acts).sum(dim=-1))  # (N, h, w)
        size = tuple(self.run.input_shape[:2])
        up = torch.nn.functional.interpolate(raw[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
        return normalise_cams(up.cpu().numpy()), raw.cpu().numpy()
