"""Hyper-parameter sweeps with Optuna: ``nnspec sweep SPEC --param train.lr=loguniform(1e-4,1e-2) ...``.

Each trial is a normal training run (its own run directory, named ``<study>-trial<N>``) whose spec is the file
with ``--set`` overrides for the sampled values, so trials are checked, recorded and resumable like any run.
Optuna's TPE sampler proposes values; the median pruner stops trials whose per-epoch metric falls behind.
Workers on one or several machines share a study through an Optuna storage URL (``sqlite:///sweep.db`` here,
PostgreSQL or MySQL across machines). Optuna is an optional extra, imported only here.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

import yaml

from nnspec.training.errors import TrainingError

_RANGE = re.compile(r"(loguniform|uniform|int|logint)\(\s*([^,()]+?)\s*,\s*([^,()]+?)\s*\)")
_CHOICE = re.compile(r"choice\((.*)\)")


@dataclass(frozen=True)
class Param:
    """One searched value: ``path`` (a spec path, as ``--set`` takes it) and its distribution."""

    text: str
    path: str
    kind: str  # "float", "int" or "categorical"
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple = ()


def _error(text: str, message: str) -> TrainingError:
    return TrainingError(f"--param {text}: {message} (write PATH=loguniform(a,b), uniform(a,b), int(a,b), "
                         "logint(a,b) or a list of choices [a, b, c])")


def parse_param(text: str) -> Param:
    """``train.lr=loguniform(1e-4,1e-2)``, ``encoder[4].rate=[0.2,0.3,0.5]``, ``train.batch_size=int(32,256)``."""
    from nnspec.spec.overrides import parse_path

    path, sep, dist = text.partition("=")
    path, dist = path.strip(), dist.strip()
    if not sep or not path or not dist:
        raise _error(text, "expected PATH=DISTRIBUTION")
    try:
        parse_path(text, path)
    except Exception as exc:  # a SpecError naming the path: keep its message, one line
        raise _error(text, str(exc).split(": error: ", 1)[-1].split(" [", 1)[0]) from None
    match = _RANGE.fullmatch(dist)
    if match:
        kind, low_text, high_text = match.groups()
        try:
            low, high = float(low_text), float(high_text)
        except ValueError:
            raise _error(text, f"the bounds of {kind}() must be numbers") from None
        if not low < high:
            raise _error(text, f"the lower bound must be below the upper one (got {low:g}, {high:g})")
        if kind in ("loguniform", "logint") and low <= 0:
            raise _error(text, f"{kind}() needs bounds above 0 (got {low:g})")
        is_int = kind in ("int", "logint")
        if is_int and not (low.is_integer() and high.is_integer()):
            raise _error(text, f"{kind}() needs whole-number bounds")
        return Param(text, path, "int" if is_int else "float", low, high, kind.startswith("log"))
    choice = _CHOICE.fullmatch(dist)
    source = f"[{choice.group(1)}]" if choice else dist
    try:
        values = yaml.safe_load(source)
    except yaml.YAMLError:
        values = None
    if not isinstance(values, list) or not values:
        raise _error(text, f"cannot read {dist!r} as a distribution")
    if not all(isinstance(v, (str, int, float, bool)) or v is None for v in values):
        raise _error(text, "choices must be plain values (numbers, names, true/false)")
    return Param(text, path, "categorical", choices=tuple(values))


def suggest(trial: Any, param: Param) -> Any:
    if param.kind == "float":
        return trial.suggest_float(param.path, param.low, param.high, log=param.log)
    if param.kind == "int":
        return trial.suggest_int(param.path, int(param.low), int(param.high), log=param.log)
    return trial.suggest_categorical(param.path, list(param.choices))


def yaml_value(value: Any) -> str:
    """A value as ``--set`` reads it back exactly (``0.0012``, ``relu``, ``true``)."""
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


@dataclass
class TrialRow:
    number: int
    state: str  # COMPLETE, PRUNED, FAIL, RUNNING
    value: float | None
    params: dict[str, Any]
    run_dir: str | None
    epochs: int | None = None


@dataclass
class SweepResult:
    study: str
    metric: str
    direction: str
    trials: list[TrialRow] = field(default_factory=list)
    best: TrialRow | None = None
    folder: str = ""  # where the results table and Optuna's plots are
    plots: list[str] = field(default_factory=list)


class _RunLine:
    """A progress stream that keeps only the run directory (and passes lines on when verbose)."""

    def __init__(self, echo: Any = None):
        self.run_dir: str | None = None
        self.echo = echo

    def write(self, text: str) -> None:
        if text.startswith("run directory: "):
            self.run_dir = text.split(": ", 1)[1].strip()
        if self.echo is not None:
            self.echo.write(text)

    def flush(self) -> None:
        if self.echo is not None:
            self.echo.flush()


def direction_for(metric: str) -> str:
    return "maximize" if "acc" in metric or metric.endswith("r2") else "minimize"


def _storage(url: str | None) -> Any:
    import optuna

    if url and url.startswith("sqlite:"):
        # Several workers write one SQLite file: wait for its lock instead of failing at once.
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 120}})
    return url


def _open_study(name: str, storage: str | None, sampler: Any, pruner: Any, direction: str) -> Any:
    """Create or join a study. Workers starting together race to create the storage's tables; the loser waits and
    joins (Optuna's own schema set-up is not safe against that race)."""
    import time

    import optuna
    from sqlalchemy.exc import IntegrityError, OperationalError

    for attempt in range(5):
        try:
            return optuna.create_study(study_name=name, storage=_storage(storage), sampler=sampler, pruner=pruner,
                                       direction=optuna.study.StudyDirection[direction.upper()], load_if_exists=True)
        except (IntegrityError, OperationalError) as exc:
            if attempt == 4:
                raise TrainingError(f"cannot open the study `{name}` in {storage}: {exc.orig}") from None
            time.sleep(0.5 + attempt)
    raise AssertionError("unreachable")


def sweep(spec_path: str, params: list[str], *, trials: int = 10, metric: str = "val_loss",
          direction: str | None = None, storage: str | None = None, study: str | None = None, out: str = "runs",
          backend: str = "torch", overrides: tuple[str, ...] = (), prune: bool = True, seed: int | None = None,
          progress: Any = None, **train_options: Any) -> SweepResult:
    """Search ``params`` for the best ``metric`` over ``trials`` trials (counted across every worker of the study).

    ``train_options`` go to :func:`nnspec.training.run.train` (epochs, limit, device, ...). ``progress``: a stream
    for one line per trial. Returns every trial of the study (this worker's and the others') and the best one.
    """
    try:
        import optuna
    except ModuleNotFoundError:
        raise TrainingError("nnspec sweep needs Optuna, which is not installed: pip install optuna") from None
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    from nnspec.pipeline import load
    from nnspec.training.run import train

    searched = [parse_param(p) for p in params]
    if not searched:
        raise TrainingError("give at least one --param PATH=DISTRIBUTION to search")
    base = load(spec_path, overrides=overrides)  # a broken spec or override fails before any trial
    direction = direction or direction_for(metric)
    study_name = study or f"{base.name}-sweep"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(5, max(1, trials // 2)))
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1) if prune else optuna.pruners.NopPruner()
    the_study = _open_study(study_name, storage, sampler, pruner, direction)
    larger = direction == "maximize"

    def objective(trial: Any) -> float:
        values = {p.path: suggest(trial, p) for p in searched}
        spec = load(spec_path, overrides=(*overrides, *(f"{k}={yaml_value(v)}" for k, v in values.items())))
        stream = _RunLine()
        seen: list[float] = []

        def report(epoch: int, row: dict) -> None:
            if stream.run_dir:
                trial.set_user_attr("run_dir", stream.run_dir)
            value = row.get(metric)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise TrainingError(f"the sweep's metric `{metric}` is not in epoch {epoch}'s history; choose one "
                                    f"of: {', '.join(k for k in row if k not in ('epoch', 'seconds'))}")
            seen.append(float(value))
            trial.report(float(value), epoch)
            if trial.should_prune():
                stop = optuna.TrialPruned(f"{metric} {value:.4g} at epoch {epoch}")
                stop.run_status = "pruned"  # type: ignore[attr-defined]  # what loggers record
                raise stop

        try:
            train(spec, backend=backend, out=out, name=f"{study_name}-trial{trial.number:03d}", progress=stream,
                  callbacks=[report], **train_options)
        except optuna.TrialPruned:
            _mark(stream.run_dir, "pruned")
            _say(progress, trial.number, values, f"pruned after epoch {len(seen)}", stream.run_dir)
            raise
        if not seen:
            raise TrainingError(f"trial {trial.number} recorded no epoch with `{metric}`")
        best = max(seen) if larger else min(seen)
        _say(progress, trial.number, values, f"{metric} {best:.4g}", stream.run_dir)
        return best

    done_states = (TrialState.COMPLETE, TrialState.PRUNED)
    if len(the_study.get_trials(deepcopy=False, states=done_states)) < trials:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=optuna.exceptions.ExperimentalWarning)
            the_study.optimize(objective, n_trials=trials, callbacks=[MaxTrialsCallback(trials, states=done_states)])
    return _results(the_study, metric, direction, os.path.join(out, base.name, f"sweep-{study_name}"))


def _mark(run_dir: str | None, status: str) -> None:
    if not run_dir:
        return
    from nnspec.training.rundir import RunDir

    run = RunDir(run_dir)
    state = run.read_checkpoint()
    if state is not None:
        state["status"] = status
        run.commit_checkpoint(state)


def _say(progress: Any, number: int, values: dict, outcome: str, run_dir: str | None) -> None:
    if progress is None:
        return
    shown = ", ".join(f"{k}={yaml_value(v)}" for k, v in values.items())
    progress.write(f"trial {number}: {outcome} ({shown})" + (f" -> {run_dir}" if run_dir else "") + "\n")
    progress.flush()


def _results(study: Any, metric: str, direction: str, folder: str) -> SweepResult:
    from optuna.trial import TrialState

    rows = []
    for t in study.get_trials(deepcopy=False):
        rows.append(TrialRow(t.number, t.state.name, t.value if t.state == TrialState.COMPLETE else None,
                             dict(t.params), t.user_attrs.get("run_dir"),
                             max(t.intermediate_values) if t.intermediate_values else None))
    complete = [r for r in rows if r.value is not None]
    best = (max if direction == "maximize" else min)(complete, key=lambda r: r.value or 0.0) if complete else None
    result = SweepResult(study.study_name, metric, direction, rows, best, folder)
    os.makedirs(folder, exist_ok=True)
    from nnspec.fileio import atomic_write

    atomic_write(os.path.join(folder, "results.md"), format_results(result) + "\n")
    result.plots = _plots(study, folder) if complete else []
    return result


def format_results(result: SweepResult) -> str:
    """The trials as a Markdown table, best first (pruned and failed trials after the complete ones)."""
    names = list(dict.fromkeys(k for r in result.trials for k in r.params))
    larger = result.direction == "maximize"
    ordered = sorted(result.trials, key=lambda r: (r.value is None, -(r.value or 0) if larger else (r.value or 0)))
    lines = [f"study `{result.study}`: {result.metric} ({result.direction}), {len(result.trials)} trials", "",
             "| trial | state | " + " | ".join([result.metric, "epochs", *names, "run directory"]) + " |",
             "|" + "---|" * (5 + len(names))]
    for r in ordered:
        value = "-" if r.value is None else f"{r.value:.4g}"
        cells = [str(r.number), r.state.lower(), value, str(r.epochs or "-"),
                 *(yaml_value(r.params[n]) if n in r.params else "-" for n in names), r.run_dir or "-"]
        lines.append("| " + " | ".join(cells) + " |")
    if result.best is not None:
        best = ", ".join(f"{k}={yaml_value(v)}" for k, v in result.best.params.items())
        lines += ["", f"best: trial {result.best.number}, {result.metric} {result.best.value:.4g} with {best}"]
    return "\n".join(lines)


def _plots(study: Any, folder: str) -> list[str]:
    """Optuna's own plots (matplotlib): optimisation history, and parameter importances when they can be told."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as vis

    written = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, draw in (("optimization_history", vis.plot_optimization_history),
                           ("param_importances", vis.plot_param_importances), ("slice", vis.plot_slice)):
            try:
                ax = draw(study)
            except (ValueError, RuntimeError, ZeroDivisionError):  # e.g. importances of fewer than 2 trials
                continue
            figure: Any = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
            path = os.path.join(folder, f"{name}.png")
            figure.savefig(path, dpi=110, bbox_inches="tight")
            plt.close(figure)
            written.append(path)
    return written
