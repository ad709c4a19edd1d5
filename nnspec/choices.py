"""The named choices of a spec's ``train:`` and ``loss:`` sections: optimisers, schedules, losses, metrics.

One registry per kind, pure data: each entry has its name, what it is, and its options with types
(JSON Schema fragments), defaults and descriptions. The schema (:mod:`nnspec.spec.schema`), the
settings resolution (:mod:`nnspec.training.settings`) and each backend's factory table read these
registries, so adding an optimiser is one entry here plus one factory per backend (a conformance
test fails when a backend lacks one). An unknown name is a located schema error, never a fallback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_POS_NUM: dict[str, Any] = {"type": "number", "exclusiveMinimum": 0}
_POS_INT: dict[str, Any] = {"type": "integer", "minimum": 1}
_UNIT: dict[str, Any] = {"type": "number", "minimum": 0, "exclusiveMaximum": 1}
_NONNEG: dict[str, Any] = {"type": "number", "minimum": 0}


@dataclass(frozen=True)
class Option:
    """One setting of a named choice: its JSON Schema fragment, default and description."""

    name: str
    schema: dict[str, Any]
    default: Any
    description: str


@dataclass(frozen=True)
class Choice:
    """A named choice (an optimiser, a schedule, a loss or a metric) and its options."""

    name: str
    description: str
    options: tuple[Option, ...] = ()

    def defaults(self) -> dict[str, Any]:
        return {o.name: o.default for o in self.options}

    def option_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.options)


@dataclass(frozen=True)
class OptimizerType(Choice):
    default_lr: float = 1e-3


@dataclass(frozen=True)
class ScheduleType(Choice):
    per_step: bool = False  # changes the rate every optimiser step (else once per epoch)


@dataclass(frozen=True)
class LossType(Choice):
    task: str = "classification"  # or "regression"
    class_indices: bool = False  # targets are class indices (categorical and sparse categorical CE)


@dataclass(frozen=True)
class MetricType(Choice):
    losses: tuple[str, ...] = ()  # the losses whose heads it applies to


def _opt(name: str, schema: dict[str, Any], default: Any, description: str) -> Option:
    return Option(name, schema, default, description)


_WEIGHT_DECAY = "Decoupled weight decay (as Keras)."
OPTIMIZERS: dict[str, OptimizerType] = {
    o.name: o
    for o in (
        OptimizerType("adam", "Adam (Keras defaults: epsilon 1e-7).", (
            _opt("beta_1", _UNIT, 0.9, "First-moment decay."),
            _opt("beta_2", _UNIT, 0.999, "Second-moment decay."),
            _opt("epsilon", _POS_NUM, 1e-7, "Numerical floor."),
            _opt("weight_decay", _NONNEG, 0.0, _WEIGHT_DECAY),
        ), default_lr=1e-3),
        OptimizerType("adamw", "Adam with decoupled weight decay (Keras defaults: weight decay 0.004).", (
            _opt("beta_1", _UNIT, 0.9, "First-moment decay."),
            _opt("beta_2", _UNIT, 0.999, "Second-moment decay."),
            _opt("epsilon", _POS_NUM, 1e-7, "Numerical floor."),
            _opt("weight_decay", _NONNEG, 0.004, _WEIGHT_DECAY),
        ), default_lr=1e-3),
        OptimizerType("sgd", "Stochastic gradient descent, optionally with (Nesterov) momentum.", (
            _opt("momentum", {"type": "number", "minimum": 0, "maximum": 1}, 0.0, "Momentum."),
            _opt("nesterov", {"type": "boolean"}, False, "Nesterov momentum."),
            _opt("weight_decay", _NONNEG, 0.0, _WEIGHT_DECAY),
        ), default_lr=1e-2),
        OptimizerType("rmsprop", "RMSprop (Keras defaults: rho 0.9, epsilon 1e-7).", (
            _opt("rho", _UNIT, 0.9, "Decay of the squared-gradient average."),
            _opt("momentum", {"type": "number", "minimum": 0, "maximum": 1}, 0.0, "Momentum."),
            _opt("epsilon", _POS_NUM, 1e-7, "Numerical floor."),
            _opt("weight_decay", _NONNEG, 0.0, _WEIGHT_DECAY),
        ), default_lr=1e-3),
    )
}

SCHEDULES: dict[str, ScheduleType] = {
    s.name: s
    for s in (
        ScheduleType("constant", "The same learning rate every epoch."),
        ScheduleType("step", "Multiply the rate by gamma every step_size epochs.", (
            _opt("step_size", _POS_INT, 10, "Epochs between drops."),
            _opt("gamma", _POS_NUM, 0.1, "Factor per drop."),
        )),
        ScheduleType("exponential", "Multiply the rate by gamma every epoch.", (
            _opt("gamma", _POS_NUM, 0.95, "Factor per epoch."),
        )),
        ScheduleType("cosine", "Cosine decay from lr to min_lr over the epochs.", (
            _opt("min_lr", _NONNEG, 0.0, "Final learning rate."),
        )),
        ScheduleType("one_cycle", "Warm up to max_lr, then anneal (per optimiser step).", (
            _opt("max_lr", _POS_NUM, None, "Peak learning rate (default: 10 x lr)."),
            _opt("pct_start", _UNIT, 0.3, "Fraction of the steps spent warming up."),
        ), per_step=True),
        ScheduleType("reduce_on_plateau", "Multiply the rate by factor when the monitored value stalls.", (
            _opt("factor", _UNIT, 0.1, "Multiply by this."),
            _opt("patience", {"type": "integer", "minimum": 0}, 3, "Epochs to wait."),
            _opt("monitor", {"type": "string"}, "val_loss", "Value watched."),
            _opt("min_lr", _NONNEG, 0.0, "Lowest rate."),
        )),
    )
}

_SMOOTHING = _opt("label_smoothing", _UNIT, 0.0, "Label smoothing towards the uniform distribution.")
_LOGITS = _opt("from_logits", {"type": "boolean"}, None,
               "The head outputs logits, not probabilities (default: true when the head has no softmax/sigmoid).")
LOSSES: dict[str, LossType] = {
    item.name: item
    for item in (
        LossType("categorical_crossentropy", "Cross-entropy of class probabilities (integer or one-hot labels).",
                 (_SMOOTHING, _LOGITS), task="classification", class_indices=True),
        LossType("sparse_categorical_crossentropy", "Cross-entropy with integer labels.",
                 (_LOGITS,), task="classification", class_indices=True),
        LossType("binary_crossentropy", "Cross-entropy of independent yes/no outputs (sigmoid).",
                 (_SMOOTHING, _LOGITS), task="classification"),
        LossType("mse", "Mean squared error.", task="regression"),
        LossType("mae", "Mean absolute error.", task="regression"),
        LossType("huber", "Huber loss: squared below delta, absolute above.",
                 (_opt("delta", _POS_NUM, 1.0, "Where the loss turns from squared to absolute."),),
                 task="regression"),
    )
}

_CATEGORICAL = ("categorical_crossentropy", "sparse_categorical_crossentropy")
_REGRESSION = ("mse", "mae", "huber")
METRICS: dict[str, MetricType] = {
    m.name: m
    for m in (
        MetricType("accuracy", "Fraction of examples classified right (argmax, or threshold 0.5 for binary).",
                   losses=(*_CATEGORICAL, "binary_crossentropy")),
        MetricType("top_k_accuracy", "Fraction of examples whose class is among the top_k scores.",
                   losses=_CATEGORICAL),
        MetricType("mae", "Mean absolute error.", losses=("binary_crossentropy", *_REGRESSION)),
        MetricType("mse", "Mean squared error.", losses=("binary_crossentropy", *_REGRESSION)),
    )
}

CATEGORICAL = _CATEGORICAL
CLASSIFICATION_LOSSES = tuple(name for name, loss in LOSSES.items() if loss.task == "classification")


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def option_schema(registry: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Every option of a registry's entries as JSON Schema properties, described with who takes it."""
    props: dict[str, dict[str, Any]] = dict(extra or {})
    users: dict[str, list[str]] = {}
    first: dict[str, Option] = {}
    defaults: dict[str, list[str]] = {}
    for entry in registry.values():
        for o in entry.options:
            users.setdefault(o.name, []).append(entry.name)
            first.setdefault(o.name, o)
            if o.default is not None:
                defaults.setdefault(o.name, []).append(f"{entry.name} {_show(o.default)}")
    for name, o in first.items():
        default = defaults.get(name)
        same = default and len({d.split(' ', 1)[1] for d in default}) == 1
        text = f"{'/'.join(users[name])}: {o.description}"
        if default:
            text += f" Default: {default[0].split(' ', 1)[1]}." if same else f" Default: {', '.join(default)}."
        props[name] = {**o.schema, "description": text}
    return props
