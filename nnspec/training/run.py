"""Training a spec, backend-neutral: settings, data, run directory, history, checkpoints,
early stopping, schedules, test scores, plots, ensembles, resume and NaN handling.

Backends are reached only through :mod:`nnspec.backends` (the registry and the ``Backend``
protocol): a backend's trainer runs epochs and, after each, hands the logs to :class:`Epochs`,
which records everything and says whether to stop.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from nnspec.errors import SpecError, UserError
from nnspec.training import metrics as M
from nnspec.training.control import LearningRate, Monitor, epoch_seed  # noqa: F401  (re-exported)
from nnspec.training.errors import NonFiniteLoss, TrainingError
from nnspec.training.parallel import Collective, Solo, World, local_batch_size, members_of
from nnspec.training.progress import Progress, format_metric, log_order
from nnspec.training.rundir import RunDir, check_run_name
from nnspec.training.settings import Settings, resolve, steps_per_epoch, versions

if TYPE_CHECKING:
    from nnspec.backends.base import Backend
    from nnspec.pipeline import Spec



class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; ``run_dir`` is the directory to ``--resume`` (every completed epoch is saved)."""

    def __init__(self, run_dir: str):
        super().__init__(run_dir)
        self.run_dir = run_dir


@dataclass
class RunResult:
    """What a run produced; everything is also in ``run_dir``."""

    run_dir: str
    settings: Settings
    history: list[dict] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    best_epoch: int | None = None
    stopped_early: bool = False
    ensemble: dict | None = None
    members: list = field(default_factory=list)

    @property
    def test_accuracy(self) -> float | None:
        return self.metrics.get("test_accuracy")


@dataclass
class Data:
    """A split as the loops see it: inputs by input name, canonical targets by head name."""

    x: dict
    y: dict

    def __len__(self) -> int:
        return len(next(iter(self.x.values())))


def train(spec, backend: str = "torch", epochs: int | None = None, batch_size: int | None = None,
          lr: float | None = None, seed: int | None = None, device: str | None = None, out: str | None = None,
          limit: int | None = None, ensemble: int | None = None, resume: str | None = None, progress=True,
          validation_split: float | None = None, callbacks: list | None = None,
          keras_backend: str | None = None, replicas: int | None = None, name: str | None = None,
          precision: str | None = None) -> RunResult:
    """Train ``spec`` and record the run under ``out`` (default ``runs``): ``<out>/<spec name>/<timestamp>/``.

    Arguments override the spec's ``train:`` section (None keeps the spec's value). ``resume``
    continues an interrupted run directory (its own spec and settings; ``epochs`` may extend it).
    ``progress``: True prints to stdout, a stream prints there, False is silent. ``callbacks``:
    functions ``f(epoch, row)`` called after each epoch is recorded (epoch is 1-based).
    ``name`` names the run directory (``<out>/<spec name>/<name>``) instead of the start time; ``precision``
    (fp32, bf16, fp16) overrides train.precision; ``device`` may name one GPU (``cuda:1``).
    ``keras_backend`` picks Keras's engine (tensorflow, jax, torch) for ``backend="keras"``.
    ``replicas`` (keras): train data-parallel on that many devices of this process (JAX DataParallel,
    TensorFlow MirroredStrategy); torch replicas are processes (``nnspec train --nproc N``, torchrun).
    Raises :class:`TrainingError` (a clear one-line message) when the run cannot go on, and
    :class:`RunInterrupted` (a KeyboardInterrupt naming the run directory) on Ctrl-C.
    """
    world = World.from_env()  # several replicas when started by torchrun / `nnspec train --nproc N`
    stream = _stream(progress) if world.is_main else None
    if resume:
        return _resume(resume, spec, epochs=epochs, stream=stream, callbacks=callbacks, device=device, world=world,
                       replicas=replicas)
    backend = backend or "torch"
    check_run_name(name)
    overrides = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed, "device": device,
                 "limit": limit, "ensemble": ensemble, "validation_split": validation_split, "precision": precision}
    settings = resolve(spec, backend, overrides)
    replicas = _device_replicas(backend, replicas, keras_backend, settings.device)
    if world.size * replicas > 1 and settings.ensemble == 1:
        local_batch_size(settings.batch_size, world.size * replicas, spec, from_flag=batch_size is not None)
    loop_module = _backend(backend, keras_backend)
    device = loop_module.select_device(settings.device)  # fail before loading data
    collective, device = _join(loop_module, world, device)
    try:
        result = _train_new(spec, overrides, loop_module, device, collective, replicas, out, stream, callbacks, name)
        collective.barrier()  # every replica is past its last collective before any tears the group down
        return result
    finally:
        collective.close()


def _train_new(spec, overrides: dict, loop_module, device: str, collective: Collective, replicas: int,
               out: str | None, stream, callbacks, name: str | None = None) -> RunResult:
    world = collective.world
    backend = loop_module.NAME
    splits = _load_data(spec, resolve(spec, backend, overrides))
    settings = resolve(spec, backend, overrides, task=splits.task)
    _check_task(spec, settings, splits)
    settings = settings.replace(
        data=dict(getattr(splits, "info", None) or {}), **_data_facts(splits), device=device,
        versions=versions(loop_module), **_parallel_facts(spec, world, replicas),
        spec_path=os.path.abspath(spec.path) if spec.path and os.path.exists(spec.path) else None,
        created=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )  # overrides (--set PATH=VALUE) are on the settings already and re-applied on resume
    own = None
    if world.is_main:  # rank 0 makes, locks and writes the run directory; the others learn its path
        own = RunDir.create(out or "runs", spec.name, name=name)
        own.lock()
    path = collective.broadcast(own.path if own is not None else None)
    settings = settings.replace(name=os.path.basename(path))
    try:
        return _train_in(spec, settings, own if own is not None else RunDir(path), splits, loop_module, stream,
                         callbacks, collective)
    finally:
        if own is not None:
            own.unlock()


def _train_in(spec, settings: Settings, run: RunDir, splits, loop_module, stream, callbacks,
              collective: Collective) -> RunResult:
    if collective.world.is_main:
        run.write_text("spec.yaml", spec.source.text)
        run.write_settings(settings)
    if stream:
        stream.write(f"run directory: {run.path}\n")
        gpu = settings.versions.get("gpu") if settings.device.startswith("cuda") else None
        stream.write(f"device: {settings.device}{f' ({gpu})' if gpu else ''}\n")
    from nnspec.training.loggers import close_loggers, open_loggers

    loggers = open_loggers(list(settings.log), run, spec, settings.to_json())
    callbacks = [*(callbacks or []), *(logger.epoch for logger in loggers)]
    try:
        if settings.ensemble > 1:
            result = _train_ensemble(spec, settings, run, splits, loop_module, stream, callbacks,
                                     collective=collective)
        else:
            result = _train_one(spec, settings, run, splits, loop_module, stream, callbacks, collective=collective)
    except KeyboardInterrupt:
        close_loggers(loggers, run, None, "interrupted")
        raise RunInterrupted(run.path) from None
    except BaseException as exc:
        close_loggers(loggers, run, None, getattr(exc, "run_status", "failed"))
        if isinstance(exc, Exception) and collective.world.is_main:
            _mark_failed(run, exc)
        raise
    close_loggers(loggers, run, result.metrics, "finished")
    return result


def _mark_failed(run: RunDir, exc: Exception) -> None:
    """A run that fails before its first epoch is recorded plainly as failed (FAILED.json), not as a run."""
    if run.exists("history.csv") or run.exists("members"):
        return  # completed epochs are kept: the run can be resumed
    run.write_json("FAILED.json", {"failed": True, "before_first_epoch": True, "error": str(exc),
                                   "error_type": type(exc).__name__, "at": time.strftime("%Y-%m-%dT%H:%M:%S")})


def _refuse_failed(run: RunDir) -> None:
    if run.exists("FAILED.json"):
        error = (run.read_json("FAILED.json") or {}).get("error", "")
        raise TrainingError(f"{run.path} is a run that failed before its first epoch ({error}); there is nothing "
                            "to evaluate, predict or resume: train again")


def _device_replicas(backend: str, replicas: int | None, keras_backend: str | None, device: str) -> int:
    """Replicas on the devices of this one process (keras); JAX's CPU devices are made here, before it starts."""
    replicas = int(replicas or 1)
    if replicas > 1 and backend != "keras":
        raise TrainingError(f"the {backend} backend runs one replica per process: start {replicas} with "
                            f"`nnspec train --nproc {replicas}` or torchrun")
    if replicas > 1:
        from nnspec.training.parallel import prepare_host_devices

        prepare_host_devices(keras_backend or os.environ.get("KERAS_BACKEND") or "tensorflow", replicas, device)
    return replicas


def _join(loop_module, world: World, device: str) -> tuple[Collective, str]:
    """The replicas' collectives (the backend's process group) and this process's device."""
    if not world.distributed:
        return Solo(), device
    init = getattr(loop_module, "init_parallel", None)
    if init is None:
        raise TrainingError(f"the {loop_module.NAME} backend does not train on several processes "
                            f"(WORLD_SIZE={world.size}); use --backend torch, or one process")
    return init(world, device)


def _parallel_facts(spec, world: World, replicas: int = 1) -> dict:
    """What a run records of its replicas (settings.json): the world size (replicas in all), the
    processes, the devices per process, synchronised BN, and the world size of each stretch of epochs."""
    total = world.size * replicas
    return {"world_size": total, "processes": world.size, "replicas": replicas,
            "sync_batch_norm": bool(spec.train.get("sync_batch_norm", total > 1)),
            "world_sizes": ({"from_epoch": 1, "world_size": total},)}


def _stream(progress):
    if progress is True:
        import sys

        return sys.stdout
    return progress or None


def _backend(name: str, variant: str | None = None) -> Backend:
    """The backend from the registry; unknown names and missing frameworks are one clear line."""
    from nnspec.backends.base import get_backend, names

    if name not in names():
        raise TrainingError(f"unknown backend `{name}`; choose one of: {', '.join(names())}")
    return get_backend(name, variant)


def _load_data(spec, settings: Settings):
    from nnspec.data import load_data

    return load_data(spec, limit=settings.limit, seed=settings.seed, validation_split=settings.validation_split)


def _data_facts(splits) -> dict:
    val = getattr(splits, "val", None)
    return {
        "num_classes": getattr(splits, "num_classes", None),
        "class_names": tuple(getattr(splits, "class_names", None) or []) or None,
        "examples": {"train": _count(splits.train), "val": _count(val) if val is not None else 0,
                     "test": _count(splits.test) if splits.test is not None else 0},
        "augment": splits.augment is not None,
    }


def _count(split) -> int:
    x = split.x
    return len(next(iter(x.values()))) if isinstance(x, dict) else len(x)


def _check_task(spec, settings: Settings, splits) -> None:
    head_tasks = getattr(splits, "head_tasks", None) or {}
    for head, loss in settings.losses.items():
        if head_tasks.get(head, splits.task) == "regression" and loss.class_indices:
            raise TrainingError(f"head `{head}` uses {loss.type}, but the data's targets are continuous "
                                f"(regression); use mse, mae or huber")


def as_data(spec, split, settings: Settings) -> Data | None:
    """A DataSplits split -> dicts keyed by input and head name, targets in canonical form."""
    if split is None:
        return None
    inputs, heads = list(spec.graph.inputs), list(spec.graph.heads)
    x = split.x if isinstance(split.x, dict) else {inputs[0]: split.x}
    y = split.y if isinstance(split.y, dict) else {heads[0]: split.y}
    xs = {}
    for name in inputs:
        arr = np.asarray(x[name])
        keep_ids = arr.dtype.kind in "iu" and _takes_ids(spec, name)
        xs[name] = np.ascontiguousarray(arr.astype(np.int64) if keep_ids else arr.astype(np.float32, copy=False))
    ys = {}
    for head in heads:
        shape = spec.analysis.nodes[spec.graph.heads[head]].output_shape
        ys[head] = M.canonical_targets(y[head], settings.losses[head].type, shape)
    if not len(next(iter(xs.values()))):
        return None
    return Data(xs, ys)


def _takes_ids(spec, name: str) -> bool:
    """An input feeding an embedding keeps integer ids."""
    node = spec.graph.nodes[name]
    return str(node.attrs.get("dtype", "float32")).startswith("int")


class Epochs:
    """Records each finished epoch: history, checkpoints, best weights, schedule, early stopping."""

    def __init__(self, spec, settings: Settings, run: RunDir, loop, stream, callbacks, n_train: int,
                 has_val: bool, state: dict | None = None, history: list | None = None, writes: bool = True):
        self.spec, self.settings, self.run, self.loop = spec, settings, run, loop
        self.writes = writes  # False on the replicas other than rank 0: they decide, but do not record
        self.callbacks = list(callbacks or [])
        self.progress = Progress(stream, settings.epochs, prefix=settings.progress_prefix)
        self.steps = steps_per_epoch(n_train, settings.batch_size)
        self.history = list(history or [])
        state = state or {}
        self.lr = LearningRate(settings.schedule, settings.lr, settings.epochs, state.get("schedule"))
        es = settings.early_stopping
        monitor = es.monitor if es else "val_loss"
        if monitor.startswith("val_") and not has_val:
            self.progress.message(f"no validation data: watching `{monitor[4:]}` instead of `{monitor}`")
            monitor = monitor[4:]
        self.best = Monitor(monitor, es.mode if es else "auto", es.min_delta if es else 0.0, state.get("best"))
        self.stopped_early = bool(state.get("stopped_early", False))
        self.total_steps = self.steps * settings.epochs

    # --- asked by the loops ---------------------------------------------------------------
    def lr_for_epoch(self, epoch: int) -> float:
        return self.lr.for_epoch(epoch)

    def lr_for_step(self, global_step: int) -> float:
        return self.lr.step_lr(global_step, self.total_steps)

    def epoch_begin(self, epoch: int) -> None:
        self.progress.epoch_begin(epoch)

    def epoch_end(self, epoch: int, logs: dict, seconds: float, lr: float) -> bool:
        """Record 0-based ``epoch``; True asks the loop to stop."""
        row: dict[str, float] = {"epoch": epoch + 1}
        row.update({k: float(logs[k]) for k in log_order(logs)})
        row["lr"] = float(lr)
        row["seconds"] = round(float(seconds), 4)
        self.history.append(row)
        improved = self.best.update(epoch + 1, row)
        self.lr.epoch_end(row)
        es = self.settings.early_stopping
        stop = es is not None and not improved and self.best.wait >= max(1, es.patience)
        self.stopped_early = stop and epoch + 1 < self.settings.epochs
        if self.writes:  # every replica decides the same (same reduced logs); rank 0 records
            self._record(epoch, row, improved)
        return stop

    def _record(self, epoch: int, row: dict, improved: bool) -> None:
        """History, checkpoint, best/last weights, progress line and callbacks of a finished epoch."""
        self.run.write_history(self.history)
        weights = self.loop.get_weights()
        from nnspec.backends.weights import write_weights

        meta = {"spec": self.spec.name, "epoch": str(epoch + 1), "backend": self.settings.backend}
        model_file = self.run.checkpoint_file("model", epoch + 1, "safetensors")
        opt_file = self.run.checkpoint_file("optimizer", epoch + 1, self.loop.optimizer_ext)
        write_weights(model_file, weights, meta)
        self.loop.save_optimizer(opt_file)
        write_weights(self.run.weights_last, weights, meta)
        if improved or not os.path.exists(self.run.weights_best):
            write_weights(self.run.weights_best, weights, {**meta, "monitor": self.best.name})
        self.run.commit_checkpoint({
            "epoch": epoch + 1,
            "status": "running",
            "files": {"model": os.path.basename(model_file), "optimizer": os.path.basename(opt_file)},
            "schedule": self.lr.state(),
            "best": self.best.state(),
            "stopped_early": self.stopped_early,
        })
        note = "*" if improved else ""
        if self.stopped_early:
            note += f" early stop: no {self.best.name} improvement in {self.best.wait} epochs"
        self.progress.epoch_end(row, note.strip())
        for callback in self.callbacks:
            callback(epoch + 1, row)

    def mark(self, status: str, **extra) -> None:
        if not self.writes:
            return
        state = self.run.read_checkpoint()
        if state is not None:
            state.update(status=status, **extra)
            self.run.commit_checkpoint(state)


def adapt_normalization(spec, data: Data, loop) -> list[str]:
    """Keras's ``Normalization.adapt`` before the first epoch: every ``normalization`` layer that reads a
    graph input directly and has no ``mean``/``variance`` in the spec gets the training split's
    statistics (mean, variance, count). Returns the names of the adapted layers."""
    from nnspec.backends.common import normalization_statistics

    graph = spec.graph
    nodes = [n for n in graph.nodes.values() if n.type == "normalization" and n.attrs.get("mean") is None
             and len(n.inputs) == 1 and n.inputs[0] in graph.inputs]
    if not nodes:
        return []
    weights = loop.get_weights()
    for node in nodes:
        for key, value in normalization_statistics(spec, node.name, data.x[node.inputs[0]]).items():
            weights[f"{node.name}/{key}"] = value
    loop.set_weights(weights)
    return [n.name for n in nodes]


def _train_one(spec, settings: Settings, run: RunDir, splits, loop_module, stream, callbacks,
               resume_state: dict | None = None, collective: Collective | None = None) -> RunResult:
    """One model; data-parallel over the replicas when ``collective`` has several."""
    collective = collective or Solo()
    main = collective.world.is_main
    train_data = as_data(spec, splits.train, settings)
    val_data = as_data(spec, getattr(splits, "val", None), settings)
    test_data = as_data(spec, splits.test, settings)
    extra = {"parallel": collective} if collective.world.distributed else {}
    loop = loop_module.trainer(spec, settings, train_data, val_data, augment=splits.augment, **extra)
    start = 0
    history = None
    if not resume_state and train_data is not None:
        adapt_normalization(spec, train_data, loop)
    if resume_state:
        start = resume_state["epoch"]
        history = run.read_history()
        if len(history) < start:
            raise run.damaged("history.csv", f"it records {len(history)} epoch(s) but the checkpoint is of epoch "
                              f"{start}")
        history = history[:start]
        model_file = run.file("checkpoints", resume_state["files"]["model"])
        if "optimizer" not in resume_state["files"]:
            raise run.damaged(os.path.join("checkpoints", "state.json"), "it names no optimizer file")
        opt_file = run.file("checkpoints", resume_state["files"]["optimizer"])
        _set_weights(loop, model_file, run)
        try:
            loop.load_optimizer(opt_file)
        except UserError:
            raise
        except Exception as exc:  # torch.load / Keras raise many kinds for a damaged file
            raise run.damaged(os.path.relpath(opt_file, run.path),
                              f"the optimizer state cannot be loaded: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:200] if str(exc) else ''}") from None
    if train_data is None:
        raise TrainingError("there are no training examples (check data.limit and validation_split)")
    epochs = Epochs(spec, settings, run, loop, stream, callbacks, len(train_data), val_data is not None,
                    resume_state, history, writes=main)
    if start < settings.epochs and not epochs.stopped_early:
        try:
            loop.fit(start, settings.epochs, epochs)
        except NonFiniteLoss as exc:
            done = len(epochs.history)
            epochs.mark("failed", error=str(exc))
            kept = (f"the last good checkpoint (epoch {done}) is in {run.weights_last}" if done
                    else "no epoch had completed, so there is no checkpoint")
            raise TrainingError(f"{exc}; training stopped, {kept}. Lower the learning rate "
                                f"(now {settings.lr:g}) or set train.gradient_clip") from None
        except KeyboardInterrupt:
            epochs.mark("interrupted")
            raise
    if not main:  # rank 0 scores the test set and writes the results
        return RunResult(run.path, settings, epochs.history, best_epoch=epochs.best.best_epoch,
                         stopped_early=epochs.stopped_early)
    es = settings.early_stopping
    which = "last"
    if es and es.restore_best_weights and os.path.exists(run.weights_best):
        from nnspec.backends.weights import read_weights

        loop.set_weights(read_weights(run.weights_best))
        which = "best"
    result = RunResult(run.path, settings, epochs.history, best_epoch=epochs.best.best_epoch,
                       stopped_early=epochs.stopped_early)
    if test_data is not None:
        preds = loop.predict(test_data.x)
        result.metrics = finish(spec, settings, run, preds, test_data, which, epochs.best)
    epochs.mark("finished")
    if stream:
        stream.write(results_text(result) + "\n")
    return result


def finish(spec, settings: Settings, run: RunDir, preds: dict, test: Data, which: str, best: Monitor | None) -> dict:
    """Test scores -> metrics.json, predictions.npz and the plots."""
    scores = M.score(preds, test.y, settings)
    record = dict(scores)
    record["weights"] = which
    record["test_examples"] = len(test)
    if best is not None:
        record["best_epoch"] = best.best_epoch
        record["monitor"] = best.name
    run.write_json("metrics.json", record)
    _save_predictions(run, preds, test)
    plot_run(run, settings, preds, test)
    return record


def _save_predictions(run: RunDir, preds: dict, test: Data) -> None:
    import io

    from nnspec.fileio import atomic_write

    buf = io.BytesIO()
    arrays = {f"pred/{h}": np.asarray(v) for h, v in preds.items()}
    arrays.update({f"true/{h}": np.asarray(v) for h, v in test.y.items()})
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]  # numpy stubs type **kwds as allow_pickle
    atomic_write(run.file("predictions.npz"), buf.getvalue())


def plot_run(run: RunDir, settings: Settings, preds: dict, test: Data) -> None:
    from nnspec.training import plots

    history = run.read_history()
    title = f"{settings.spec} ({settings.backend})"
    if history:
        record = run.read_json("metrics.json") if run.exists("metrics.json") else {}
        plots.curves(history, run.plot("curves.png"), title, best_epoch=record.get("best_epoch"),
                     monitor=record.get("monitor"))
    heads = list(settings.losses)
    for head in heads:
        loss = settings.losses[head]
        suffix = f"_{head}" if len(heads) > 1 else ""
        if loss.class_indices:
            k = preds[head].shape[-1]
            matrix = M.confusion_matrix(test.y[head], preds[head].argmax(axis=-1), k)
            plots.confusion(matrix, list(settings.class_names or []), run.plot(f"confusion_matrix{suffix}.png"), title)
        elif loss.type != "binary_crossentropy":
            plots.predicted_vs_true(test.y[head], preds[head], run.plot(f"predicted_vs_true{suffix}.png"), title)


def results_text(result: RunResult) -> str:
    from nnspec.training.progress import results_table

    rows = []
    if result.history:
        last = result.history[-1]
        rows.append(("epochs run", str(last["epoch"])))
        if result.best_epoch:
            rows.append(("best epoch", str(result.best_epoch)))
        secs = [r["seconds"] for r in result.history]
        rows.append(("seconds per epoch", f"{sum(secs) / len(secs):.2f}"))
        for k, v in last.items():
            if k not in ("epoch", "lr", "seconds"):
                rows.append((f"final {k}", format_metric(k, v)))
    for k, v in result.metrics.items():
        if k.startswith("test_") and k != "test_examples":
            rows.append((k, format_metric(k, v)))
    if result.ensemble:
        e = result.ensemble
        rows.append(("member test accuracy", f"{e['member_test_accuracy_mean']:.2%} ± {e['member_test_accuracy_std']:.2%}"))
        rows.append(("ensemble test accuracy", f"{e['ensemble_test_accuracy']:.2%}"))
    rows.append(("run directory", result.run_dir))
    return results_table(rows, "results")


# --- ensembles ------------------------------------------------------------------------------
def _train_ensemble(spec, settings: Settings, run: RunDir, splits, loop_module, stream, callbacks,
                    resume: bool = False, collective: Collective | None = None) -> RunResult:
    """Members one after another; with several replicas each rank trains whole members (member i on
    rank i mod N) and rank 0 assembles the ensemble once every member is done."""
    from nnspec.training.ensemble import aggregate

    collective = collective or Solo()
    world = collective.world
    n = settings.ensemble
    done: list[tuple[int, RunResult, np.ndarray]] = []
    test = as_data(spec, splits.test, settings)
    if test is None:
        raise TrainingError("ensembles are scored on the test set, and this run's data has none")
    head = list(settings.losses)[0]
    if not settings.losses[head].class_indices:
        raise TrainingError("ensembles average class probabilities: the first head needs a categorical "
                            "cross-entropy loss")
    together = {} if world.distributed else _members_together(spec, settings, run, splits, loop_module, stream,
                                                               callbacks, resume)
    for i in members_of(world.rank, n, world.size):
        member_run = run.member(i)
        member_settings = settings.replace(seed=settings.seed + i, ensemble=1, member=i,
                                           progress_prefix=f"[member {i + 1}/{n}] ")
        if i in together:
            result = together[i]
        elif resume and member_run.exists("metrics.json"):
            result = RunResult(member_run.path, member_settings, member_run.read_history(),
                               member_run.read_json("metrics.json"))
        else:
            state = member_run.read_checkpoint() if resume else None
            if not member_run.exists("settings.json"):
                member_run.write_text("spec.yaml", spec.source.text)
                member_run.write_settings(member_settings)
            result = _train_one(spec, member_settings, member_run, splits, loop_module, stream, callbacks, state)
        with np.load(member_run.file("predictions.npz")) as f:
            p = M.probabilities(f[f"pred/{head}"], settings.losses[head])
        done.append((i, result, p))
    if world.distributed:
        gathered = sorted((item for part in collective.all_gather(done) for item in part), key=lambda t: t[0])
        if not world.is_main:
            return RunResult(run.path, settings, members=[r for _, r, _ in gathered])
        done = gathered
    members, probs = [r for _, r, _ in done], [p for _, _, p in done]
    summary = aggregate(probs, test.y[head], list(settings.class_names or []) or None)
    summary["member_seeds"] = [settings.seed + i for i in range(n)]
    mean = np.mean(np.stack(probs), axis=0)
    _save_ensemble_examples(run, probs, mean, test.y[head])
    summary["per_example"] = "predictions.npz: mean_probabilities, confidence, disagreement, true (test order)"
    run.write_json("ensemble.json", summary)
    averaged = settings.replace(losses={head: dataclasses.replace(settings.losses[head], from_logits=False)})
    metrics = M.score({head: mean}, {head: test.y[head]}, averaged)
    metrics["test_accuracy"] = summary["ensemble_test_accuracy"]
    metrics["member_test_accuracy_mean"] = summary["member_test_accuracy_mean"]
    metrics["member_test_accuracy_std"] = summary["member_test_accuracy_std"]
    metrics["test_examples"] = len(test)
    run.write_json("metrics.json", metrics)
    from nnspec.training import plots

    matrix = M.confusion_matrix(test.y[head], mean.argmax(axis=-1), mean.shape[-1])
    plots.confusion(matrix, list(settings.class_names or []), run.plot("confusion_matrix.png"),
                    f"{settings.spec}: ensemble of {n}")
    result = RunResult(run.path, settings, metrics=metrics, ensemble=summary, members=members)
    if stream:
        stream.write(results_text(result) + "\n")
    return result


def _members_together(spec, settings: Settings, run: RunDir, splits, loop_module, stream, callbacks,
                      resume: bool) -> dict:
    """Members the backend trains together as one batched model (:func:`_train_together`):
    those not finished yet and, on resume, at the same checkpoint; ``{}`` when none are."""
    if not _batch_members(settings, loop_module, settings.device):
        return {}
    n = settings.ensemble
    todo, states = [], []
    for i in range(n):
        member_run = run.member(i)
        if resume and member_run.exists("metrics.json"):
            continue
        todo.append(settings.replace(seed=settings.seed + i, ensemble=1, member=i,
                                     progress_prefix=f"[member {i + 1}/{n}] "))
        states.append(member_run.read_checkpoint() if resume else None)
    if len(todo) < 2 or len({(s or {}).get("epoch", 0) for s in states}) > 1:
        return {}  # nothing to batch, or members stopped at different epochs: one by one
    for member in todo:
        member_run = run.member(int(member.member or 0))
        if not member_run.exists("settings.json"):
            member_run.write_text("spec.yaml", spec.source.text)
            member_run.write_settings(member)
    return _train_together(spec, settings, run, splits, loop_module, stream, callbacks, todo, states)


def _batch_members(settings: Settings, backend, device: str) -> bool:
    """Whether this ensemble's members should be trained together (``train.parallel_ensemble``:
    auto batches on GPUs, true wherever the backend can, false never)."""
    choice = settings.parallel_ensemble
    if choice is False or choice == "false":
        return False
    if not hasattr(backend, "ensemble_trainer"):
        if choice is True or choice == "true":
            raise TrainingError(f"train.parallel_ensemble: true, but the {settings.backend} backend trains "
                                f"members one by one; set parallel_ensemble: auto or false")
        return False
    return choice is True or choice == "true" or device == "cuda"


def _train_together(spec, settings: Settings, run, splits, backend, stream, callbacks,
                   member_settings: list[Settings], states: list[dict | None]) -> dict:
    """Train the members ``member_settings`` (each with its ``member`` index) together: the backend's
    batched trainer (``Backend.ensemble_trainer``) runs the epochs; each member is recorded by its own
    :class:`Epochs` in ``members/<i>/``, exactly as when members train one after another.

    ``states``: each member's checkpoint state when resuming (all at the same epoch), else None.
    Returns ``{member index: RunResult}``; empty when the backend cannot batch this spec (the reason
    is printed and the caller trains the members one by one).
    """
    from nnspec.backends.weights import read_weights

    train_data = as_data(spec, splits.train, settings)
    if train_data is None:
        raise TrainingError("the training split is empty")
    val_data = as_data(spec, getattr(splits, "val", None), settings)
    test_data = as_data(spec, splits.test, settings)
    try:
        trainer = backend.ensemble_trainer(spec, member_settings, train_data, val_data, augment=splits.augment)
    except TrainingError as exc:
        if settings.parallel_ensemble in (True, "true"):
            raise TrainingError(f"train.parallel_ensemble: true, but these members cannot be batched ({exc}); "
                                f"set parallel_ensemble: auto or false") from None
        if stream:
            stream.write(f"members train one by one: they cannot be batched ({exc})\n")
        return {}
    indices = [int(s.member or 0) for s in member_settings]
    runs = [run.member(i) for i in indices]
    start = 0
    saved = [s for s in states if s]
    if len(saved) == len(states):  # resuming: every member at the same checkpoint
        start = saved[0]["epoch"]
        for i, (member_run, state) in enumerate(zip(runs, saved, strict=True)):
            trainer.member(i).set_weights(read_weights(member_run.file("checkpoints", state["files"]["model"])))
        trainer.load_member_optimizers([r.file("checkpoints", s["files"]["optimizer"]) for r, s in zip(runs, saved,
                                                                                                       strict=True)])
    sinks = []
    for i, (member_run, member, member_state) in enumerate(zip(runs, member_settings, states, strict=True)):
        history = member_run.read_history()[:start] if member_state else None
        sinks.append(Epochs(spec, member, member_run, trainer.member(i), stream, callbacks, len(train_data),
                            val_data is not None, member_state, history))
    if stream:
        stream.write(f"training members {', '.join(str(i + 1) for i in indices)} together "
                     f"(one batched model)\n")
    if start < settings.epochs and not all(e.stopped_early for e in sinks):
        try:
            trainer.fit(start, settings.epochs, sinks)
        except NonFiniteLoss as exc:
            for e in sinks:
                e.mark("failed", error=str(exc))
            raise TrainingError(f"{exc} (members trained together); training stopped, each member's last good "
                                f"checkpoint is in its weights/last.safetensors. Lower the learning rate "
                                f"(now {settings.lr:g}) or set train.gradient_clip") from None
        except KeyboardInterrupt:
            for e in sinks:
                e.mark("interrupted")
            raise
    results = {}
    es = settings.early_stopping
    for i, (index, member_run, member, sink) in enumerate(zip(indices, runs, member_settings, sinks, strict=True)):
        view = trainer.member(i)
        which = "best" if es and es.restore_best_weights and os.path.exists(member_run.weights_best) else "last"
        path = member_run.weights_best if which == "best" else member_run.weights_last
        if os.path.exists(path):  # a member that stopped early kept training in the batch: its files are its result
            view.set_weights(read_weights(path))
        result = RunResult(member_run.path, member, sink.history, best_epoch=sink.best.best_epoch,
                           stopped_early=sink.stopped_early)
        if test_data is not None:
            result.metrics = finish(spec, member, member_run, view.predict(test_data.x), test_data, which, sink.best)
        sink.mark("finished")
        results[index] = result
    return results


def _save_ensemble_examples(run: RunDir, probs: list, mean: np.ndarray, true: np.ndarray) -> None:
    """Per test example: the averaged softmax, its max (confidence), and member disagreement."""
    import io

    from nnspec.fileio import atomic_write

    members = np.stack(probs).argmax(axis=2)
    ensemble = mean.argmax(axis=1)
    buf = io.BytesIO()
    np.savez_compressed(buf, mean_probabilities=mean.astype(np.float32), confidence=mean.max(axis=1),
                        disagreement=(members != ensemble[None]).mean(axis=0), member_predictions=members,
                        true=np.asarray(true))
    atomic_write(run.file("predictions.npz"), buf.getvalue())


# --- resume ---------------------------------------------------------------------------------
def _resume(path: str, spec, epochs: int | None, stream, callbacks, device: str | None,
            world: World | None = None, replicas: int | None = None) -> RunResult:
    """Continue a run from its last complete epoch, on any number of replicas (the global batch, the
    data order and so the optimisation are those of the run, whatever the world size). Rank 0 locks it."""
    world = world or World()
    run = RunDir.open(path)
    _refuse_failed(run)
    if world.is_main:
        run.lock()
    try:
        return _resume_locked(run, epochs, stream, callbacks, device, world, replicas)
    finally:
        run.unlock()


def _resume_locked(run: RunDir, epochs: int | None, stream, callbacks, device: str | None, world: World,
                   replicas: int | None) -> RunResult:
    settings = run.read_settings()
    spec = load_run_spec(run, settings)
    if epochs is not None:
        settings = settings.replace(epochs=int(epochs))
    if device is not None:
        settings = settings.replace(device=device)
    engine = settings.versions.get("keras_backend")
    count = _device_replicas(settings.backend, replicas, engine, settings.device)
    if world.size * count > 1 and settings.ensemble == 1:
        local_batch_size(settings.batch_size, world.size * count)
    loop_module = _backend(settings.backend, engine)
    settings = settings.replace(device=loop_module.select_device(settings.device))
    state = run.read_checkpoint()
    facts = _parallel_facts(spec, world, count)
    if settings.world_size != facts["world_size"]:  # a different number of replicas from here on
        before = settings.world_sizes or ({"from_epoch": 1, "world_size": settings.world_size},)
        facts["world_sizes"] = (*before, {"from_epoch": (state or {}).get("epoch", 0) + 1,
                                          "world_size": facts["world_size"]})
        settings = settings.replace(**facts)  # sync_batch_norm's default follows the new world size
    collective, device = _join(loop_module, world, settings.device)
    settings = settings.replace(device=device)
    try:
        if world.is_main:
            run.write_settings(settings)
        splits = _load_data(spec, settings)
        if stream:
            stream.write(f"resuming {run.path}\n")
        if settings.ensemble > 1:
            return _train_ensemble(spec, settings, run, splits, loop_module, stream, callbacks, resume=True,
                                   collective=collective)
        if state is None:
            recorded = len(run.read_history())
            if recorded or os.path.exists(run.weights_last):
                raise TrainingError(f"{run.file('checkpoints', 'state.json')} is missing although {recorded} "
                                    "epoch(s) are recorded, so the run cannot continue where it stopped; train "
                                    "again (or restore the file)")
            if stream:
                stream.write("no epoch had completed: starting at epoch 1\n")
        elif stream:
            stream.write(f"continuing after epoch {state['epoch']} of {settings.epochs}\n")
        result = _train_one(spec, settings, run, splits, loop_module, stream, callbacks, state, collective=collective)
        collective.barrier()  # every replica is past its last collective before any tears the group down
        return result
    except KeyboardInterrupt:
        raise RunInterrupted(run.path) from None
    finally:
        collective.close()


def load_run_spec(run: RunDir, settings: Settings | None = None) -> Spec:
    """The run's own spec copy, located at the original path so relative data paths still resolve."""
    from nnspec.pipeline import load

    settings = settings or run.read_settings()
    own = run.file("spec.yaml")
    try:
        with open(own, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise TrainingError(f"{own} is missing; the run's spec is needed to rebuild its model") from None
    except UnicodeDecodeError:
        raise run.damaged("spec.yaml", "not UTF-8 text") from None
    except OSError as exc:
        raise TrainingError(f"could not read {own}: {exc.strerror or exc}") from None
    path = settings.spec_path if isinstance(settings.spec_path, str) else None
    try:
        return load(path or own, text=text, overrides=settings.overrides)
    except SpecError as exc:
        # The text is the run's copy: blame that file, not the original spec (which may be fine).
        raise SpecError([replace(d, file=own) if d.file == (path or own) else d for d in exc.diagnostics]) from None


# --- evaluate / predict ---------------------------------------------------------------------
def open_model(run_dir: str, backend: str | None = None, weights: str = "best"):
    """Rebuild a trained run's model on ``backend`` (default: the one it trained on) with saved weights."""
    run = RunDir.open(run_dir)
    _refuse_failed(run)
    settings = run.read_settings()
    if settings.ensemble > 1:
        raise TrainingError(f"{run_dir} is an ensemble; evaluate or predict one member: {run.file('members', '0')}")
    spec = load_run_spec(run, settings)
    backend = backend or settings.backend
    loop_module = _backend(backend)
    path = run.weights_best if weights == "best" else run.weights_last
    if not os.path.exists(path):
        raise TrainingError(f"{run_dir} has no {weights} weights yet ({path})")
    settings = settings.replace(backend=backend, device=loop_module.select_device("auto"))
    loop = loop_module.trainer(spec, settings, None, None)
    _set_weights(loop, path, run)
    return run, spec, settings, loop


def _set_weights(loop, path: str, run: RunDir) -> None:
    """Load a weights file of the run into ``loop``; weights that do not fit the run's spec are a TrainingError."""
    from nnspec.backends.weights import read_weights

    weights = read_weights(path)
    try:
        loop.set_weights(weights)
    except (ValueError, KeyError) as exc:
        raise TrainingError(f"{path} does not fit the run's spec ({run.file('spec.yaml')}): "
                            f"{str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__}; was spec.yaml "
                            "edited?") from None


def evaluate(run_dir: str, backend: str | None = None, weights: str | None = None) -> dict:
    """Re-score a run's saved weights on the test set; returns the test metrics."""
    run = RunDir.open(run_dir)
    _refuse_failed(run)
    saved = run.read_json("metrics.json") if run.exists("metrics.json") else {}
    weights = weights or saved.get("weights", "best")
    run, spec, settings, loop = open_model(run_dir, backend, weights)
    splits = _load_data(spec, settings)
    test = as_data(spec, splits.test, settings)
    if test is None:
        raise TrainingError("this run's data has no test set")
    scores = M.score(loop.predict(test.x), test.y, settings)
    scores["weights"] = weights
    scores["backend"] = settings.backend
    scores["test_examples"] = len(test)
    if saved:
        scores["saved"] = {k: v for k, v in saved.items() if k.startswith("test_") and k != "test_examples"}
    return scores
