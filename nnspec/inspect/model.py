"""A trained run's model on a framework, for what needs one: predictions, feature maps, Grad-CAM.

The model is built from the run's spec on the chosen backend (torch or keras) and loaded with the
run's neutral weights file, so a run trained on either framework can be looked at on either one.
Frameworks are imported here, inside the runners, and nowhere else in :mod:`nnspec.inspect`.
"""

from __future__ import annotations

import contextlib

import numpy as np

from nnspec.inspect.errors import InspectError
from nnspec.inspect.run import InspectedRun

BATCH = 256


def default_backend() -> str:
    """torch when it is installed, else keras; a clear error when neither is."""
    from nnspec.backends import available

    have = available()
    for name in ("torch", "keras"):
        if name in have:
            return name
    raise InspectError(
        "feature maps and predictions need a framework, and neither torch nor keras is installed: "
        "pip install 'nnspec[torch]' or pip install 'nnspec[keras]'"
    )


def open_runner(run: InspectedRun, backend: str | None = None):
    """Build the run's model on ``backend`` (default: :func:`default_backend`) with its saved weights."""
    from nnspec.backends import get_backend
    from nnspec.backends.weights import WeightsFileError, load_weights
    from nnspec.errors import BackendMissing

    backend = backend or default_backend()
    try:
        module = get_backend(backend)
    except BackendMissing as exc:
        raise InspectError(str(exc)) from None
    model = module.build(run.spec, seed=0)
    try:
        load_weights(model, run.spec, run.weights_path)
    except WeightsFileError as exc:
        raise InspectError(str(exc)) from None
    return (TorchRunner if backend == "torch" else KerasRunner)(run, model)


class _Scores:
    """How to get a class score for Grad-CAM: the logits when the spec lets us reach them."""

    def __init__(self, run: InspectedRun):
        graph = run.spec.graph
        head = graph.nodes[graph.heads[run.head]]
        loss = (run.settings.get("losses") or {}).get(run.head) or {}
        self.head = head.name
        self.logits_node: str | None = None  # score = this node's output
        self.swap_activation = False  # the head's own softmax is switched off while scoring
        self.log_probs = False  # fall back to log-probabilities
        if head.type == "softmax" or (head.type == "activation" and head.attrs.get("activation") == "softmax"):
            self.logits_node = head.inputs[0]
        elif head.attrs.get("activation") == "softmax":
            self.logits_node, self.swap_activation = head.name, True
        elif loss.get("from_logits"):
            self.logits_node = head.name
        else:
            self.logits_node, self.log_probs = head.name, True
        self.from_logits = bool(loss.get("from_logits"))

    @property
    def description(self) -> str:
        if self.log_probs:
            return "log-probability"
        return "logit (pre-softmax score)"


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _normalise_cams(cams: np.ndarray) -> np.ndarray:
    """Each map divided by its own maximum, so it lies in [0, 1] (an all-zero map stays zero)."""
    peak = cams.reshape(len(cams), -1).max(axis=1)
    peak = np.where(peak > 0, peak, 1.0)
    return np.clip(cams / peak[:, None, None], 0.0, 1.0).astype(np.float32)


class TorchRunner:
    backend = "torch"

    def __init__(self, run: InspectedRun, model):
        import torch

        self.torch, self.run, self.model = torch, run, model
        self.scores = _Scores(run)
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
        return _softmax(p) if self.scores.from_logits else p

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
        captured: dict[str, torch.Tensor] = {}

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
        return _normalise_cams(up.cpu().numpy()), raw.cpu().numpy()


class KerasRunner:
    backend = "keras"

    def __init__(self, run: InspectedRun, model):
        import keras

        self.keras, self.run, self.model = keras, run, model
        self.scores = _Scores(run)

    def _call(self, model, x: np.ndarray):
        return model(np.ascontiguousarray(x, dtype=np.float32), training=False)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        out = [
            self.keras.ops.convert_to_numpy(self._call(self.model, x[i : i + BATCH])) for i in range(0, len(x), BATCH)
        ]
        p = np.concatenate(out) if out else np.zeros((0, len(self.run.class_names)), np.float32)
        return _softmax(p) if self.scores.from_logits else p

    def feature_maps(self, x: np.ndarray, layer: str) -> np.ndarray:
        sub = self.keras.Model(self.model.input, self.model.get_layer(layer).output)
        out = [self.keras.ops.convert_to_numpy(self._call(sub, x[i : i + BATCH])) for i in range(0, len(x), BATCH)]
        return np.concatenate(out)

    def grad_cam(self, x: np.ndarray, layer: str, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import tensorflow as tf

        keras = self.keras
        logits_layer = self.model.get_layer(self.scores.logits_node)
        sub = keras.Model(self.model.input, [self.model.get_layer(layer).output, logits_layer.output])
        saved = logits_layer.activation if self.scores.swap_activation else None
        if self.scores.swap_activation:
            logits_layer.activation = keras.activations.linear
        try:
            with tf.GradientTape() as tape:
                acts, logits = self._call(sub, x)
                if self.scores.log_probs:
                    logits = tf.math.log(tf.maximum(logits, 1e-12))
                score = tf.reduce_sum(tf.gather(logits, np.asarray(classes, dtype=np.int64), axis=1, batch_dims=1))
            grads = tape.gradient(score, acts)
        finally:
            if self.scores.swap_activation:
                logits_layer.activation = saved
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        raw = tf.nn.relu(tf.reduce_sum(weights * acts, axis=-1))
        size = tuple(self.run.input_shape[:2])
        up = tf.image.resize(raw[..., None], size, method="bilinear")[..., 0]
        return _normalise_cams(up.numpy()), raw.numpy()
