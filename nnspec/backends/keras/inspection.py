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
        return normalise_cams(up.numpy()), raw.numpy()
