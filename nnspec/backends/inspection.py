"""What every backend's inspection runner shares (no framework): which score Grad-CAM explains,
softmax, and normalising maps. The runners themselves are ``nnspec.backends.<name>.inspection``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

BATCH = 256


class Scores:
    """How to get a class score for Grad-CAM: the logits when the spec lets us reach them."""

    def __init__(self, run: Any):
        graph = run.spec.graph
        head = graph.nodes[graph.heads[run.head]]
        loss = run.settings.losses.get(run.head)
        self.head = head.name
        self.logits_node: str | None = None  # score = this node's output
        self.swap_activation = False  # the head's own softmax is switched off while scoring
        self.log_probs = False  # fall back to log-probabilities
        if head.type == "softmax" or (head.type == "activation" and head.attrs.get("activation") == "softmax"):
            self.logits_node = head.inputs[0]
        elif head.attrs.get("activation") == "softmax":
            self.logits_node, self.swap_activation = head.name, True
        elif loss is not None and loss.from_logits:
            self.logits_node = head.name
        else:
            self.logits_node, self.log_probs = head.name, True
        self.from_logits = bool(loss is not None and loss.from_logits)

    @property
    def description(self) -> str:
        if self.log_probs:
            return "log-probability"
        return "logit (pre-softmax score)"


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def normalise_cams(cams: np.ndarray) -> np.ndarray:
    """Each map divided by its own maximum, so it lies in [0, 1] (an all-zero map stays zero)."""
    peak = cams.reshape(len(cams), -1).max(axis=1)
    peak = np.where(peak > 0, peak, 1.0)
    return np.clip(cams / peak[:, None, None], 0.0, 1.0).astype(np.float32)
