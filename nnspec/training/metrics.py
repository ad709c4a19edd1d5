"""Losses and metrics on numpy arrays: the one definition of the test scores of both backends.

Targets are kept in one canonical form per loss (see :func:`canonical_targets`): class indices
(int64) for categorical and sparse cross-entropy, float arrays shaped like the output for
binary cross-entropy and regression. Formulas are Keras's (probabilities clipped to
[1e-7, 1 - 1e-7], label smoothing towards the uniform distribution).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from nnspec.choices import CATEGORICAL, METRICS

if TYPE_CHECKING:
    from nnspec.training.settings import LossSettings, Settings

EPSILON = 1e-7


def canonical_targets(y: np.ndarray, loss: str, output_shape: tuple) -> np.ndarray:
    """Class indices for (sparse) categorical cross-entropy; float32 shaped like the output otherwise."""
    y = np.asarray(y)
    if loss in CATEGORICAL:
        if y.ndim == 2 and y.shape[1] > 1:  # one-hot given
            return y.argmax(axis=1).astype(np.int64)
        return y.reshape(len(y)).astype(np.int64)
    return y.astype(np.float32).reshape((len(y), *[d for d in output_shape[1:]]))


def one_hot(indices: np.ndarray, num_classes: int) -> np.ndarray:
    out = np.zeros((len(indices), num_classes), dtype=np.float32)
    out[np.arange(len(indices)), indices] = 1.0
    return out


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def probabilities(pred: np.ndarray, loss: LossSettings) -> np.ndarray:
    """The head's output as probabilities (softmax/sigmoid applied when the head gives logits)."""
    if not loss.from_logits:
        return pred
    if loss.type in CATEGORICAL:
        return np.exp(_log_softmax(pred.astype(np.float64))).astype(np.float32)
    return (1.0 / (1.0 + np.exp(-pred.astype(np.float64)))).astype(np.float32)


def loss_value(pred: np.ndarray, y: np.ndarray, loss: LossSettings) -> float:
    """Mean loss over examples (``y`` canonical)."""
    kind = loss.type
    pred = pred.astype(np.float64)
    if kind in CATEGORICAL:
        k = pred.shape[-1]
        if loss.from_logits:
            logp = _log_softmax(pred)
        else:
            p = pred / pred.sum(axis=-1, keepdims=True)
            logp = np.log(np.clip(p, EPSILON, 1 - EPSILON))
        target = one_hot(y, k).astype(np.float64)
        ls = loss.label_smoothing
        if ls:
            target = target * (1 - ls) + ls / k
        return float(-(target * logp).sum(axis=-1).mean())
    if kind == "binary_crossentropy":
        target = y.astype(np.float64)
        ls = loss.label_smoothing
        if ls:
            target = target * (1 - ls) + 0.5 * ls
        if loss.from_logits:
            per = np.maximum(pred, 0) - pred * target + np.log1p(np.exp(-np.abs(pred)))
        else:
            p = np.clip(pred, EPSILON, 1 - EPSILON)
            per = -(target * np.log(p) + (1 - target) * np.log(1 - p))
        return float(per.mean())
    diff = pred - y.astype(np.float64)
    if kind == "mse":
        return float((diff**2).mean())
    if kind == "mae":
        return float(np.abs(diff).mean())
    if kind == "huber":
        d = loss.delta
        a = np.abs(diff)
        return float(np.where(a <= d, 0.5 * diff**2, d * a - 0.5 * d * d).mean())
    raise ValueError(f"unknown loss {kind}")


def metric_value(name: str, pred: np.ndarray, y: np.ndarray, loss: LossSettings, top_k: int = 5) -> float:
    kind = loss.type
    if name == "accuracy":
        if kind in CATEGORICAL:
            return float((pred.argmax(axis=-1) == y).mean())
        if kind == "binary_crossentropy":
            p = probabilities(pred, loss)
            return float(((p > 0.5) == (y > 0.5)).mean())
        raise ValueError("accuracy needs a classification loss")
    if name == "top_k_accuracy":
        k = min(top_k, pred.shape[-1])
        top = np.argpartition(-pred, k - 1, axis=-1)[:, :k]
        return float((top == y[:, None]).any(axis=1).mean())
    if name == "mae":
        return float(np.abs(pred - y).mean())
    if name == "mse":
        return float(((pred - y) ** 2).mean())
    raise ValueError(f"unknown metric {name}")


def score(preds: dict, targets: dict, settings: Settings, prefix: str = "test_") -> dict:
    """Loss (weighted total, and per head when there are several) and metrics on one split."""
    heads = list(settings.losses)
    out: dict = {}
    total = 0.0
    for head in heads:
        loss = settings.losses[head]
        name = f"{prefix}{head}_" if len(heads) > 1 else prefix
        value = loss_value(preds[head], targets[head], loss)
        total += loss.weight * value
        if len(heads) > 1:
            out[f"{name}loss"] = value
        for metric in applicable_metrics(settings, head):
            out[f"{name}{metric}"] = metric_value(metric, preds[head], targets[head], loss, settings.top_k)
    out[f"{prefix}loss"] = total
    return dict(sorted(out.items()))


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows: true class; columns: predicted class."""
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(m, (true, predicted), 1)
    return m


def applicable_metrics(settings: Settings, head: str) -> list[str]:
    """The metrics that make sense for ``head``'s loss (the registry says which losses each metric fits)."""
    kind = settings.losses[head].type
    return [m for m in settings.metrics if kind in METRICS[m].losses]
