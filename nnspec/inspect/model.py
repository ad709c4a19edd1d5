"""A trained run's model on a framework, for what needs one: predictions, feature maps, Grad-CAM.

The model is built from the run's spec on the chosen backend and loaded with the run's neutral
weights file, so a run trained on either framework can be looked at on either one. The runners
themselves live in each backend (``backend.runner``); this module holds what they share and imports
no framework.
"""

from __future__ import annotations

import numpy as np

from nnspec.inspect.errors import InspectError
from nnspec.inspect.run import InspectedRun

BATCH = 256


def default_backend() -> str:
    """The first installed backend in the registry's order (torch, then keras); a clear error when none is."""
    from nnspec.backends.base import available, infos

    have = available()
    if have:
        return have[0]
    raise InspectError(
        "feature maps and predictions need a framework, and none is installed: "
        + " or ".join(i.install for i in infos().values())
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
    return module.runner(run, model)


class Scores:
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


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def normalise_cams(cams: np.ndarray) -> np.ndarray:
    """Each map divided by its own maximum, so it lies in [0, 1] (an all-zero map stays zero)."""
    peak = cams.reshape(len(cams), -1).max(axis=1)
    peak = np.where(peak > 0, peak, 1.0)
    return np.clip(cams / peak[:, None, None], 0.0, 1.0).astype(np.float32)
