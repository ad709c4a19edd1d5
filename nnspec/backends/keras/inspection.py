"""Inspecting a trained run's Keras model: class probabilities, feature maps, Grad-CAM.

Built by :func:`nnspec.inspect.model.open_runner` through the backend registry; the neutral parts
(which score Grad-CAM explains, normalising maps) live in :mod:`nnspec.inspect.model`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from nnspec.backends.inspection import BATCH, Scores, normalise_cams, softmax

if TYPE_CHECKING:
    from nnspec.inspect.run import InspectedRun


class KerasRunner:
    backend = "keras"

    def __init__(self, run: InspectedRun, model):
        import keras

        self.keras, self.run, self.model = keras, run, model
        self.scores = Scores(run)

    def _call(self, model, x: np.ndarray):
        return model(np.ascontiguousarray(x, dtype=np.float32), training=False)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        out = [
            self.keras.ops.convert_to_numpy(self._call(self.model, x[i : i + BATCH])) for i in range(0, len(x), BATCH)
        ]
        p = np.concatenate(out) if out else np.zeros((0, len(self.run.class_names)), np.float32)
        return softmax(p) if self.scores.from_logits else p

    def feature_maps(self, x: np.ndarray, layer: str) -> np.ndarray:
        sub = self.keras.Model(self.model.input, self.model.get_layer(layer).output)
        out = [self.keras.ops.convert_to_numpy(self._call(sub, x[i : i + BATCH])) for i in range(0, len(x), BATCH)]
        return np.concatenate(out)

    def grad_cam(self, x: np.ndarray, layer: str, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Grad-CAM in ``keras.ops``; only the gradient comes from the engine (:mod:`..gradients`).

        The class score is a function of the target layer's activations through a second functional
        model that takes them as an input (beside the image, for paths that go around the layer).
        """
        from nnspec.backends.keras.gradients import gradient

        keras, ops = self.keras, self.keras.ops
        target = self.model.get_layer(layer).output
        logits_layer = self.model.get_layer(self.scores.logits_node)
        to_acts = keras.Model(self.model.input, target)
        to_logits = keras.Model([self.model.input, target], logits_layer.output)
        images = ops.convert_to_tensor(np.ascontiguousarray(x, dtype=np.float32))
        picked = ops.convert_to_tensor(np.asarray(classes, dtype="int32")[:, None])
        log_probs = self.scores.log_probs

        def score(acts):
            logits = to_logits([images, acts], training=False)
            if log_probs:
                logits = ops.log(ops.maximum(logits, 1e-12))
            return ops.sum(ops.take_along_axis(logits, picked, axis=1))

        saved = logits_layer.activation if self.scores.swap_activation else None
        if self.scores.swap_activation:
            logits_layer.activation = keras.activations.linear
        try:
            acts = to_acts(images, training=False)
            grads = gradient(score, acts)
        finally:
            if self.scores.swap_activation:
                logits_layer.activation = saved
        weights = ops.mean(grads, axis=(1, 2), keepdims=True)  # (N, 1, 1, C): channel importance
        raw = ops.relu(ops.sum(weights * acts, axis=-1))  # (N, h, w)
        size = tuple(self.run.input_shape[:2])
        up = ops.image.resize(raw[..., None], size, interpolation="bilinear", data_format="channels_last")[..., 0]
        return normalise_cams(ops.convert_to_numpy(up)), ops.convert_to_numpy(raw)
