"""Training settings: the spec's ``train:`` section plus overrides -> one typed, frozen :class:`Settings`.

Everything a run does is decided here, once, in plain Python; the backends only read the result.
Every default comes from one place: the registries of :mod:`nnspec.choices` (optimisers,
schedules, losses, metrics) and the constants below. Defaults follow Keras where the frameworks
differ (Adam's epsilon 1e-7, RMSprop's rho 0.9, AdamW's weight decay 0.004), so both backends train
the same way. ``settings.json`` in a run directory is :meth:`Settings.to_json`, read back with
:meth:`Settings.from_json` for ``--resume``, ``evaluate``, ``predict`` and ``inspect``.
"""

from __future__ import annotations

import dataclasses
import math
import platform
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nnspec.choices import CLASSIFICATION_LOSSES, LOSSES, METRICS, OPTIMIZERS, SCHEDULES
from nnspec.data.load import spec_validation_split
from nnspec.training.errors import TrainingError

EARLY_STOPPING_DEFAULTS: dict[str, Any] = {"monitor": "val_loss", "patience": 5, "min_delta": 0.0, "mode": "auto",
                                           "restore_best_weights": True}
DEVICES = ("auto", "cpu", "cuda")  # and cuda:N, one GPU by index
PRECISIONS = ("fp32", "bf16", "fp16")
_CUDA_INDEX = re.compile(r"cuda:\d+")
DEFAULT_EPOCHS = 10
DEFAULT_BATCH_SIZE = 64
DEFAULT_VALIDATION_SPLIT = 0.1
DEFAULT_TOP_K = 5


@dataclass(frozen=True)
class OptimizerSettings:
    """An optimiser from :data:`nnspec.choices.OPTIMIZERS` with its learning rate and every option filled in."""

    type: str
    lr: float
    options: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, **self.options, "lr": self.lr}


@dataclass(frozen=True)
class ScheduleSettings:
    """A learning-rate schedule from :data:`nnspec.choices.SCHEDULES` with every option filled in."""

    type: str = "constant"
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def per_step(self) -> bool:
        return SCHEDULES[self.type].per_step

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, **self.options}


@dataclass(frozen=True)
class EarlyStopping:
    monitor: str = "val_loss"
    patience: int = 5
    min_delta: float = 0.0
    mode: str = "min"
    restore_best_weights: bool = True


@dataclass(frozen=True)
class LossSettings:
    """One head's loss from :data:`nnspec.choices.LOSSES`."""

    type: str
    weight: float = 1.0
    label_smoothing: float = 0.0
    from_logits: bool = False
    delta: float = 1.0

    @property
    def class_indices(self) -> bool:
        """Targets are class indices (categorical and sparse categorical cross-entropy)."""
        return LOSSES[self.type].class_indices

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "weight": self.weight}
        names = LOSSES[self.type].option_names()
        out.update({k: getattr(self, k) for k in ("label_smoothing", "from_logits", "delta") if k in names})
        return out


@dataclass(frozen=True)
class Settings:
    """Everything a run does, resolved once (``settings.json``)."""

    spec: str
    backend: str
    epochs: int
    batch_size: int
    optimizer: OptimizerSettings
    schedule: ScheduleSettings
    early_stopping: EarlyStopping | None
    losses: Mapping[str, LossSettings]
    task: str
    metrics: tuple[str, ...]
    top_k: int = DEFAULT_TOP_K
    gradient_clip: float | None = None
    seed: int = 0
    ensemble: int = 1
    validation_split: float = DEFAULT_VALIDATION_SPLIT
    device: str = "auto"
    mixed_precision: bool = False
    compile: bool = False
    steps_per_execution: int | str = "auto"
    cuda_graphs: bool | str = "auto"  # torch on a GPU: capture the training step (auto | True | False)
    parallel_ensemble: bool | str = "auto"  # train ensemble members as one batched model (auto: on GPUs)
    limit: int | None = None
    overrides: tuple[str, ...] = ()
    precision: str = "fp32"  # bf16/fp16: autocast on GPUs; the CPU trains in fp32
    log: tuple[str, ...] = ()  # experiment trackers (nnspec.training.loggers)
    name: str = ""  # the run directory's name (--name, else the start time)
    # filled in once the data is loaded and the run directory exists
    data: Mapping[str, Any] = field(default_factory=dict)
    num_classes: int | None = None
    class_names: tuple[str, ...] | None = None
    examples: Mapping[str, int] = field(default_factory=dict)
    augment: bool = False
    versions: Mapping[str, str] = field(default_factory=dict)
    spec_path: str | None = None
    created: str = ""
    member: int | None = None  # ensemble member index
    progress_prefix: str = ""
    # data parallelism (nnspec.training.parallel): replicas in all, processes, devices per process
    sync_batch_norm: bool | None = None  # train.sync_batch_norm; unset: true when there are several replicas
    world_size: int = 1
    processes: int = 1
    replicas: int = 1
    world_sizes: tuple[Mapping[str, int], ...] = ()  # {from_epoch, world_size} per stretch of epochs (resume)
    extra: Mapping[str, Any] = field(default_factory=dict)  # settings.json keys this version does not know

    @property
    def lr(self) -> float:
        return self.optimizer.lr

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The ``settings.json`` record (plain JSON types)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "extra":
                continue
            if f.name == "losses":
                value = {head: loss.to_json() for head, loss in value.items()}
            elif isinstance(value, (OptimizerSettings, ScheduleSettings)):
                value = value.to_json()
            elif isinstance(value, EarlyStopping):
                value = dataclasses.asdict(value)
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            out[f.name] = value
        out["lr"] = self.lr
        out.update(self.extra)
        return out

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> Settings:
        """Read ``settings.json`` back (unknown keys are kept in ``extra``, missing ones take defaults)."""
        record = dict(record)
        known = {f.name for f in dataclasses.fields(cls)}
        opt = dict(record.get("optimizer") or {"type": "adam"})
        kind = str(opt.pop("type", "adam"))
        lr = float(opt.pop("lr", record.get("lr", OPTIMIZERS.get(kind, OPTIMIZERS["adam"]).default_lr)))
        sched = dict(record.get("schedule") or {"type": "constant"})
        skind = str(sched.pop("type", "constant"))
        es = record.get("early_stopping")
        losses = {head: LossSettings(**{k: v for k, v in dict(item).items()
                                        if k in ("type", "weight", "label_smoothing", "from_logits", "delta")})
                  for head, item in dict(record.get("losses") or {}).items()}
        values: dict[str, Any] = {k: v for k, v in record.items() if k in known}
        values.update(
            optimizer=OptimizerSettings(kind, lr, opt),
            schedule=ScheduleSettings(skind, sched),
            early_stopping=EarlyStopping(**es) if isinstance(es, Mapping) else None,
            losses=losses,
            metrics=tuple(record.get("metrics") or ()),
            overrides=tuple(record.get("overrides") or ()),
            world_sizes=tuple(record.get("world_sizes") or ()),
            log=tuple(record.get("log") or ()),
            class_names=tuple(record["class_names"]) if record.get("class_names") else None,
            extra={k: v for k, v in record.items() if k not in known and k != "lr"},
        )
        values.setdefault("spec", "")
        values.setdefault("backend", "torch")
        values.setdefault("epochs", DEFAULT_EPOCHS)
        values.setdefault("batch_size", DEFAULT_BATCH_SIZE)
        values.setdefault("task", "classification")
        return cls(**values)


def resolve(spec: Any, backend: str, overrides: Mapping[str, Any] | None = None, *,
            task: str | None = None) -> Settings:
    """The spec's ``train:`` section with every default filled in and ``overrides`` applied.

    ``overrides`` are CLI-style: epochs, batch_size, lr, seed, device, limit, ensemble,
    validation_split (None = keep). ``task`` ("classification" or "regression") picks the default
    metrics when the spec names none. Raises :class:`TrainingError` for combinations the schema
    cannot rule out; an unknown optimiser, schedule or loss name is an error, never a fallback.
    """
    train = spec.train
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    optimizer = _optimizer(train, given.get("lr"))
    losses = _losses(spec, train.get("label_smoothing"))
    task = task or ("classification" if all(v.type in CLASSIFICATION_LOSSES for v in losses.values())
                    else "regression")
    default_metrics = {"classification": ("accuracy",), "regression": ("mae",)}.get(task, ("accuracy", "mae"))
    metrics = tuple(train.get("metrics") or default_metrics)
    for metric in metrics:
        if metric not in METRICS:
            raise TrainingError(f"unknown metric `{metric}`; choose one of: {', '.join(METRICS)}")
    device = str(given.get("device", train.get("device", "auto")))
    if device not in DEVICES and not _CUDA_INDEX.fullmatch(device):
        raise TrainingError(f"unknown device `{device}`; choose one of: {', '.join(DEVICES)}, cuda:N")
    precision = given.get("precision", train.get("precision")) or ("bf16" if train.get("mixed_precision") else "fp32")
    if precision not in PRECISIONS:
        raise TrainingError(f"unknown precision `{precision}`; choose one of: {', '.join(PRECISIONS)}")
    validation_split = float(given.get("validation_split", spec_validation_split(spec)))
    settings = Settings(
        spec=spec.name,
        backend=backend,
        epochs=int(given.get("epochs", train.get("epochs", DEFAULT_EPOCHS))),
        batch_size=int(given.get("batch_size", train.get("batch_size", DEFAULT_BATCH_SIZE))),
        optimizer=optimizer,
        schedule=_schedule(train.get("schedule"), optimizer.lr),
        early_stopping=_early_stopping(train.get("early_stopping")),
        losses=losses,
        task=task,
        metrics=metrics,
        top_k=int(train.get("top_k", DEFAULT_TOP_K)),
        gradient_clip=train.get("gradient_clip"),
        seed=int(given.get("seed", train.get("seed", 0))),
        ensemble=int(given.get("ensemble", train.get("ensemble", 1))),
        validation_split=validation_split,
        device=device,
        mixed_precision=precision != "fp32",
        precision=precision,
        log=tuple(train.get("log") or ()),
        compile=bool(train.get("compile", False)),
        steps_per_execution=train.get("steps_per_execution", "auto"),
        cuda_graphs=train.get("cuda_graphs", "auto"),
        parallel_ensemble=train.get("parallel_ensemble", "auto"),
        limit=given.get("limit", spec.data.get("limit")),
        overrides=tuple(getattr(spec, "overrides", ()) or ()),
        sync_batch_norm=train.get("sync_batch_norm"),
    )
    monitor_ok = monitor_names(settings)
    watched = (("early_stopping", settings.early_stopping.monitor if settings.early_stopping else None),
               ("schedule", settings.schedule.options.get("monitor")))
    for where, monitor in watched:
        if monitor and monitor not in monitor_ok:
            raise TrainingError(f"train.{where}.monitor `{monitor}` is not a logged value; "
                                f"choose one of: {', '.join(monitor_ok)}")
    return settings


def _optimizer(train: Mapping[str, Any], lr_override: float | None) -> OptimizerSettings:
    given = train.get("optimizer", "adam")
    opt = {"type": given} if isinstance(given, str) else dict(given)
    kind = opt["type"]
    if kind not in OPTIMIZERS:
        raise TrainingError(f"unknown optimizer `{kind}`; choose one of: {', '.join(OPTIMIZERS)}")
    entry = OPTIMIZERS[kind]
    extra = set(opt) - set(entry.option_names()) - {"type", "lr"}
    if extra:
        raise TrainingError(f"train.optimizer: {', '.join(sorted(extra))} does not apply to {kind}; "
                            f"it takes: lr, {', '.join(sorted(entry.option_names()))}")
    options = entry.defaults()
    options.update({k: v for k, v in opt.items() if k not in ("type", "lr")})
    lr = lr_override if lr_override is not None else opt.get("lr", train.get("lr", entry.default_lr))
    return OptimizerSettings(kind, float(lr), options)


def _schedule(schedule: Mapping[str, Any] | None, lr: float) -> ScheduleSettings:
    if not schedule:
        return ScheduleSettings("constant", {})
    kind = schedule["type"]
    if kind not in SCHEDULES:
        raise TrainingError(f"unknown schedule `{kind}`; choose one of: {', '.join(SCHEDULES)}")
    entry = SCHEDULES[kind]
    options = entry.defaults()
    for key, value in schedule.items():
        if key != "type" and key not in options:
            raise TrainingError(f"train.schedule.{key} does not apply to a `{kind}` schedule; it takes: "
                                f"{', '.join(options) or 'nothing'}")
        if key != "type":
            options[key] = value
    if kind == "one_cycle" and options.get("max_lr") is None:
        options["max_lr"] = 10 * lr
    return ScheduleSettings(kind, options)


def _early_stopping(value: Any) -> EarlyStopping | None:
    if value is None or value is False:
        return None
    resolved = dict(EARLY_STOPPING_DEFAULTS)
    if isinstance(value, Mapping):
        resolved.update(value)
    if resolved["mode"] == "auto":
        resolved["mode"] = monitor_mode(resolved["monitor"])
    return EarlyStopping(**resolved)


def monitor_mode(name: str) -> str:
    """``max`` for accuracies, ``min`` for losses and errors."""
    return "max" if "acc" in name else "min"


def _losses(spec: Any, label_smoothing: float | None) -> dict[str, LossSettings]:
    losses: dict[str, LossSettings] = {}
    for head, item in spec.losses().items():
        item = dict(item)
        kind = item["type"]
        if kind not in LOSSES:
            raise TrainingError(f"unknown loss `{kind}`; choose one of: {', '.join(LOSSES)}")
        entry = LOSSES[kind]
        names = entry.option_names()
        values: dict[str, Any] = {"type": kind, "weight": float(item.get("weight", 1.0))}
        if "label_smoothing" in names or kind == "sparse_categorical_crossentropy":
            smoothing = item.get("label_smoothing", label_smoothing or 0.0)
            if smoothing and kind == "sparse_categorical_crossentropy":
                raise TrainingError("label smoothing needs categorical_crossentropy (one-hot targets), "
                                    "not sparse_categorical_crossentropy")
            values["label_smoothing"] = float(smoothing)
        if "from_logits" in names:
            values["from_logits"] = bool(item.get("from_logits", _head_is_linear(spec, head)))
        if "delta" in names:
            values["delta"] = float(item.get("delta", 1.0))
        losses[head] = LossSettings(**values)
    return losses


def _head_is_linear(spec: Any, head: str) -> bool:
    """A head whose last layer ends in no softmax/sigmoid outputs logits."""
    node = spec.graph.nodes[spec.graph.heads[head]]
    if node.type in ("softmax", "sigmoid"):
        return False
    if node.type == "linear":
        return True
    return node.attrs.get("activation") in (None, "linear")


def monitor_names(settings: Settings) -> list[str]:
    """The values a run logs each epoch (what early stopping and reduce_on_plateau may watch)."""
    names = ["loss", "val_loss"]
    heads = list(settings.losses)
    for m in settings.metrics:
        names += [m, f"val_{m}"]
    if len(heads) > 1:
        for h in heads:
            names += [f"{h}_loss", f"val_{h}_loss"]
            for m in settings.metrics:
                names += [f"{h}_{m}", f"val_{h}_{m}"]
    return names


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    return max(1, math.ceil(n_train / batch_size))


def versions(backend: Any) -> dict[str, str]:
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


def resolve_device(requested: str, cuda_available: bool, count: int | None = None) -> str:
    """``auto`` -> cuda when a GPU is there, else cpu; ``cuda`` or ``cuda:N`` without that GPU is a clear error
    (``count``: how many GPUs the framework sees, when it can tell)."""
    if requested == "auto":
        return "cuda" if cuda_available else "cpu"
    if requested.startswith("cuda") and not cuda_available:
        raise TrainingError(f"--device {requested} was asked for, but no CUDA GPU is visible to this framework; "
                            "use --device cpu (or auto)")
    if requested.startswith("cuda:") and count is not None and int(requested[5:]) >= count:
        raise TrainingError(f"--device {requested} was asked for, but this framework sees {count} GPU(s): "
                            f"cuda:0 to cuda:{count - 1}")
    return requested
