"""Training settings: the spec's ``train:`` section plus overrides -> one resolved dict.

Everything a run does is decided here, once, in plain Python; the backend loops only read
the result. Defaults follow Keras where the frameworks differ (Adam's epsilon 1e-7,
RMSprop's rho 0.9, AdamW's weight decay 0.004), so both backends train the same way.
The resolved dict is what ``settings.json`` in a run directory holds.
"""

from __future__ import annotations

import math
import platform

from nnspec.training.errors import TrainingError

DEFAULT_LR = {"adam": 1e-3, "adamw": 1e-3, "sgd": 1e-2, "rmsprop": 1e-3}
OPTIMIZER_DEFAULTS = {
    "adam": {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "weight_decay": 0.0},
    "adamw": {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "weight_decay": 0.004},
    "sgd": {"momentum": 0.0, "nesterov": False, "weight_decay": 0.0},
    "rmsprop": {"rho": 0.9, "momentum": 0.0, "epsilon": 1e-7, "weight_decay": 0.0},
}
OPTIMIZER_KEYS = {
    "adam": {"beta_1", "beta_2", "epsilon", "weight_decay"},
    "adamw": {"beta_1", "beta_2", "epsilon", "weight_decay"},
    "sgd": {"momentum", "nesterov", "weight_decay"},
    "rmsprop": {"rho", "momentum", "epsilon", "weight_decay"},
}
SCHEDULE_DEFAULTS = {
    "constant": {},
    "step": {"step_size": 10, "gamma": 0.1},
    "exponential": {"gamma": 0.95},
    "cosine": {"min_lr": 0.0},
    "one_cycle": {"max_lr": None, "pct_start": 0.3},
    "reduce_on_plateau": {"factor": 0.1, "patience": 3, "monitor": "val_loss", "min_lr": 0.0},
}
EARLY_STOPPING_DEFAULTS = {"monitor": "val_loss", "patience": 5, "min_delta": 0.0, "mode": "auto",
                           "restore_best_weights": True}
CLASSIFICATION_LOSSES = {"categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy"}
DEVICES = ("auto", "cpu", "cuda")


def resolve(spec, backend: str, overrides: dict | None = None, *, task: str | None = None) -> dict:
    """The spec's ``train:`` section with every default filled in and ``overrides`` applied.

    ``overrides`` are CLI-style: epochs, batch_size, lr, seed, device, limit, ensemble (None = keep).
    ``task`` ("classification" or "regression") picks the default metrics when the spec names none.
    Raises :class:`TrainingError` for combinations the schema cannot rule out.
    """
    train = spec.train
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    s: dict = {"spec": spec.name, "backend": backend}
    s["epochs"] = int(overrides.get("epochs", train.get("epochs", 10)))
    s["batch_size"] = int(overrides.get("batch_size", train.get("batch_size", 64)))
    s["optimizer"] = _optimizer(train, overrides.get("lr"))
    s["lr"] = s["optimizer"]["lr"]
    s["schedule"] = _schedule(train.get("schedule"), s["lr"])
    s["early_stopping"] = _early_stopping(train.get("early_stopping"))
    s["losses"] = _losses(spec, train.get("label_smoothing"))
    task = task or ("classification" if all(v["type"] in CLASSIFICATION_LOSSES for v in s["losses"].values())
                    else "regression")
    s["task"] = task
    default_metrics = {"classification": ["accuracy"], "regression": ["mae"]}.get(task, ["accuracy", "mae"])
    s["metrics"] = list(train.get("metrics") or default_metrics)
    s["top_k"] = int(train.get("top_k", 5))
    s["gradient_clip"] = train.get("gradient_clip")
    s["seed"] = int(overrides.get("seed", train.get("seed", 0)))
    s["ensemble"] = int(overrides.get("ensemble", train.get("ensemble", 1)))
    s["validation_split"] = float(train.get("validation_split", spec.data.get("validation_split", 0.1)))
    if "validation_split" in overrides:
        s["validation_split"] = float(overrides["validation_split"])
    s["device"] = overrides.get("device", train.get("device", "auto"))
    if s["device"] not in DEVICES:
        raise TrainingError(f"unknown device `{s['device']}`; choose one of: {', '.join(DEVICES)}")
    s["mixed_precision"] = bool(train.get("mixed_precision", False))
    s["compile"] = bool(train.get("compile", False))
    s["steps_per_execution"] = train.get("steps_per_execution", "auto")
    s["limit"] = overrides.get("limit", spec.data.get("limit"))
    monitor_ok = _monitor_names(s)
    for where, item in (("early_stopping", s["early_stopping"]), ("schedule", s["schedule"])):
        if item and item.get("monitor") and item["monitor"] not in monitor_ok:
            raise TrainingError(f"train.{where}.monitor `{item['monitor']}` is not a logged value; "
                                f"choose one of: {', '.join(monitor_ok)}")
    return s


def _optimizer(train: dict, lr_override) -> dict:
    opt = train.get("optimizer", "adam")
    opt = {"type": opt} if isinstance(opt, str) else dict(opt)
    kind = opt["type"]
    extra = set(opt) - OPTIMIZER_KEYS[kind] - {"type", "lr"}
    if extra:
        raise TrainingError(f"train.optimizer: {', '.join(sorted(extra))} does not apply to {kind}; "
                            f"it takes: lr, {', '.join(sorted(OPTIMIZER_KEYS[kind]))}")
    resolved = {"type": kind, **OPTIMIZER_DEFAULTS[kind]}
    resolved.update({k: v for k, v in opt.items() if k != "type"})
    lr = lr_override if lr_override is not None else opt.get("lr", train.get("lr", DEFAULT_LR[kind]))
    resolved["lr"] = float(lr)
    return resolved


def _schedule(schedule, lr: float) -> dict:
    if not schedule:
        return {"type": "constant"}
    kind = schedule["type"]
    resolved = {"type": kind, **SCHEDULE_DEFAULTS[kind]}
    for key, value in schedule.items():
        if key != "type" and key not in SCHEDULE_DEFAULTS[kind]:
            raise TrainingError(f"train.schedule.{key} does not apply to a `{kind}` schedule; it takes: "
                                f"{', '.join(SCHEDULE_DEFAULTS[kind]) or 'nothing'}")
        resolved[key] = value
    if kind == "one_cycle" and resolved["max_lr"] is None:
        resolved["max_lr"] = 10 * lr
    return resolved


def _early_stopping(value) -> dict | None:
    if value is None or value is False:
        return None
    resolved = dict(EARLY_STOPPING_DEFAULTS)
    if isinstance(value, dict):
        resolved.update(value)
    if resolved["mode"] == "auto":
        resolved["mode"] = monitor_mode(resolved["monitor"])
    return resolved


def monitor_mode(name: str) -> str:
    """``max`` for accuracies, ``min`` for losses and errors."""
    return "max" if "acc" in name else "min"


def _losses(spec, label_smoothing) -> dict:
    losses = {}
    for head, item in spec.losses().items():
        item = dict(item)
        kind = item["type"]
        resolved = {"type": kind, "weight": float(item.get("weight", 1.0))}
        if kind in CLASSIFICATION_LOSSES:
            smoothing = item.get("label_smoothing", label_smoothing or 0.0)
            if smoothing and kind == "sparse_categorical_crossentropy":
                raise TrainingError("label smoothing needs categorical_crossentropy (one-hot targets), "
                                    "not sparse_categorical_crossentropy")
            resolved["label_smoothing"] = float(smoothing)
            resolved["from_logits"] = bool(item.get("from_logits", _head_is_linear(spec, head)))
        if kind == "huber":
            resolved["delta"] = float(item.get("delta", 1.0))
        losses[head] = resolved
    return losses


def _head_is_linear(spec, head: str) -> bool:
    """A head whose last layer ends in no softmax/sigmoid outputs logits."""
    node = spec.graph.nodes[spec.graph.heads[head]]
    if node.type in ("softmax", "sigmoid"):
        return False
    if node.type == "linear":
        return True
    return node.attrs.get("activation") in (None, "linear")


def _monitor_names(s: dict) -> list[str]:
    names = ["loss", "val_loss"]
    heads = list(s["losses"])
    for m in s["metrics"]:
        names += [m, f"val_{m}"]
    if len(heads) > 1:
        for h in heads:
            names += [f"{h}_loss", f"val_{h}_loss"]
            for m in s["metrics"]:
                names += [f"{h}_{m}", f"val_{h}_{m}"]
    return names


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    return max(1, math.ceil(n_train / batch_size))


def versions(backend) -> dict:
    """Versions of what a run used: nnspec, Python, numpy, the platform and the backend's own."""
    from importlib import metadata

    import numpy

    out = {"nnspec": metadata.version("nnspec") if _installed("nnspec") else "unknown",
           "python": platform.python_version(), "numpy": numpy.__version__, "platform": platform.platform()}
    out.update(backend.versions())
    return out


def _installed(name: str) -> bool:
    from importlib import metadata

    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def resolve_device(requested: str, cuda_available: bool) -> str:
    """``auto`` -> cuda when a GPU is there, else cpu; ``cuda`` without a GPU is a clear error."""
    if requested == "auto":
        return "cuda" if cuda_available else "cpu"
    if requested == "cuda" and not cuda_available:
        raise TrainingError("--device cuda was asked for, but no CUDA GPU is visible to this framework; "
                            "use --device cpu (or auto)")
    return requested
