"""Experiment tracking: ``train.log: [tensorboard, mlflow]`` (or ``nnspec train --log``).

A small registry of loggers, each called at three points of a run: :meth:`RunLogger.start` once the run
directory and settings exist (settings as hyper-parameters, the spec, the summary and the diagram),
:meth:`RunLogger.epoch` after every recorded epoch (loss, metrics, validation, learning rate), and
:meth:`RunLogger.finish` at the end (test metrics, the plots, the run's status). The trackers' packages are
optional extras, imported only when a run asks for them; a missing one is one clear line before training starts.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from nnspec.training.errors import TrainingError
from nnspec.training.rundir import RunDir


class RunLogger(Protocol):
    """What training calls; epochs are 1-based, ``row`` is the history row (loss, metrics, val_*, lr, seconds)."""

    def start(self, run: RunDir, spec: Any, settings: dict) -> None: ...
    def epoch(self, epoch: int, row: dict) -> None: ...
    def finish(self, run: RunDir, metrics: dict, status: str) -> None: ...


@dataclass(frozen=True)
class LoggerInfo:
    name: str
    requires: str  # import name of the tracker's package
    install: str
    factory: Callable[[], RunLogger]


def _tensorboard() -> RunLogger:
    return TensorBoardLogger()


def _mlflow() -> RunLogger:
    return MlflowLogger()


LOGGERS: dict[str, LoggerInfo] = {
    "tensorboard": LoggerInfo("tensorboard", "tensorboard", "pip install tensorboard", _tensorboard),
    "mlflow": LoggerInfo("mlflow", "mlflow", "pip install mlflow", _mlflow),
}


def open_loggers(names: list[str], run: RunDir, spec: Any, settings: dict) -> list[RunLogger]:
    """Start the loggers a run asks for; a missing package or an unknown name is a :class:`TrainingError`."""
    loggers = []
    for name in names:
        info = LOGGERS.get(name)
        if info is None:
            raise TrainingError(f"unknown logger `{name}` in train.log; choose from {', '.join(LOGGERS)}")
        if importlib.util.find_spec(info.requires) is None:
            raise TrainingError(f"train.log asks for {name}, which is not installed: {info.install}")
        logger = info.factory()
        logger.start(run, spec, settings)
        loggers.append(logger)
    return loggers


def close_loggers(loggers: list[RunLogger], run: RunDir, metrics: dict | None, status: str) -> None:
    for logger in loggers:
        logger.finish(run, metrics or {}, status)


def flat_params(settings: dict, prefix: str = "") -> dict[str, str]:
    """Settings as flat ``a.b: value`` text pairs (what trackers take as hyper-parameters)."""
    out: dict[str, str] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat_params(value, name + "."))
        elif isinstance(value, (list, tuple)):
            out[name] = json.dumps(value)[:500]
        elif value is not None:
            out[name] = str(value)[:500]
    return out


def _artifacts(run: RunDir, spec: Any) -> dict[str, str]:
    """The text artifacts every tracker gets: the summary table and the diagram's DOT (and SVG with graphviz)."""
    from nnspec.report import diagram
    from nnspec.report.summary import format_markdown, summarize

    os.makedirs(run.file("tracking"), exist_ok=True)
    files = {"summary.md": format_markdown(summarize(spec)) + "\n", "diagram.dot": diagram.render(spec).dot}
    paths = {}
    for name, text in files.items():
        path = run.file("tracking", name)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        paths[name] = path
    try:
        svg = diagram.Drawing(files["diagram.dot"], spec.name).svg()
    except diagram.DiagramError:
        return paths  # no graphviz: the DOT text is there
    paths["diagram.svg"] = run.file("tracking", "diagram.svg")
    with open(paths["diagram.svg"], "w", encoding="utf-8") as fh:
        fh.write(svg)
    return paths


def _plots(run: RunDir) -> list[str]:
    folder = run.file("plots")
    return sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".png")) if os.path.isdir(folder) \
        else []


# --- TensorBoard ---------------------------------------------------------------------------------
class TensorBoardLogger:
    """Event files in ``RUN_DIR/tensorboard`` (``tensorboard --logdir runs``), written with TensorBoard's own
    writer and protocol buffers (no TensorFlow or torch needed)."""

    def start(self, run: RunDir, spec: Any, settings: dict) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.summary.writer.record_writer import RecordWriter

        # TensorBoard's record writer on a plain file: its EventFileWriter would import TensorFlow when installed.
        os.makedirs(run.file("tensorboard"), exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}.nnspec"
        self.writer = RecordWriter(open(run.file("tensorboard", name), "wb"))  # noqa: SIM115  (closed in finish)
        self.writer.write(Event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString())
        artifacts = _artifacts(run, spec)
        with open(artifacts["summary.md"], encoding="utf-8") as fh:
            self._text("summary", fh.read(), 0)
        params = "\n".join(f"| {k} | {v} |" for k, v in flat_params(settings).items())
        self._text("settings", "| setting | value |\n|---|---|\n" + params, 0)
        self._text("spec", "```yaml\n" + spec.source.text + "\n```", 0)
        self.writer.flush()

    def _event(self, step: int, summary: Any) -> None:
        from tensorboard.compat.proto.event_pb2 import Event

        self.writer.write(Event(wall_time=time.time(), step=step, summary=summary).SerializeToString())

    def _text(self, tag: str, text: str, step: int) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
        from tensorboard.compat.proto.tensor_pb2 import TensorProto
        from tensorboard.compat.proto.types_pb2 import DT_STRING

        meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="text"))
        tensor = TensorProto(dtype=DT_STRING, string_val=[text.encode("utf-8")])
        self._event(step, Summary(value=[Summary.Value(tag=tag, metadata=meta, tensor=tensor)]))

    def _scalars(self, values: dict[str, float], step: int) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary

        self._event(step, Summary(value=[Summary.Value(tag=k, simple_value=float(v)) for k, v in values.items()]))

    def epoch(self, epoch: int, row: dict) -> None:
        values = {k: v for k, v in row.items() if k != "epoch" and isinstance(v, (int, float))}
        self._scalars(values, epoch)
        self.writer.flush()

    def finish(self, run: RunDir, metrics: dict, status: str) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary

        step = len(run.read_history())
        tests = {k: v for k, v in metrics.items() if k.startswith("test_") and isinstance(v, (int, float))
                 and not isinstance(v, bool)}
        if tests:
            self._scalars(tests, step)
        for path in _plots(run):
            with open(path, "rb") as fh:
                png = fh.read()
            width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
            image = Summary.Image(encoded_image_string=png, height=height, width=width, colorspace=4)
            name = os.path.splitext(os.path.basename(path))[0]
            self._event(step, Summary(value=[Summary.Value(tag=f"plots/{name}", image=image)]))
        self._text("status", status, step)
        self.writer.close()


# --- MLflow --------------------------------------------------------------------------------------
class MlflowLogger:
    """One MLflow run per nnspec run: experiment = spec name, run name = the run directory's name.

    The tracking URI is ``MLFLOW_TRACKING_URI`` when set, else a local store beside the runs: ``<out>/mlflow.db``
    (SQLite, MLflow's default backend) with artifacts in ``<out>/mlartifacts``
    (``mlflow ui --backend-store-uri sqlite:///<out>/mlflow.db``).
    """

    STATUS = {"finished": "FINISHED", "failed": "FAILED", "interrupted": "KILLED", "pruned": "KILLED"}

    def start(self, run: RunDir, spec: Any, settings: dict) -> None:
        from mlflow.entities import Param, RunTag
        from mlflow.tracking import MlflowClient

        logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)  # no table-creation chatter per run

        uri = os.environ.get("MLFLOW_TRACKING_URI")
        artifacts = None
        if not uri:
            uri, artifacts = local_store(run)
        self.client = MlflowClient(tracking_uri=uri)
        experiment = self.client.get_experiment_by_name(spec.name)
        experiment_id = experiment.experiment_id if experiment else \
            self.client.create_experiment(spec.name, artifact_location=artifacts)
        self.run_id = self.client.create_run(experiment_id, run_name=os.path.basename(run.path)).info.run_id
        params = [Param(k, v) for k, v in flat_params(settings).items()]
        tags = [RunTag("nnspec.run_dir", run.path), RunTag("nnspec.spec", spec.name)]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=params[i:i + 100], tags=tags if i == 0 else [])
        for path in [run.file("spec.yaml"), run.file("settings.json"), *_artifacts(run, spec).values()]:
            self.client.log_artifact(self.run_id, path)

    def epoch(self, epoch: int, row: dict) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        metrics = [Metric(k, float(v), stamp, epoch) for k, v in row.items()
                   if k != "epoch" and isinstance(v, (int, float))]
        self.client.log_batch(self.run_id, metrics=metrics)

    def finish(self, run: RunDir, metrics: dict, status: str) -> None:
        step = len(run.read_history())
        for key, value in metrics.items():
            if key.startswith("test_") and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.client.log_metric(self.run_id, key, float(value), step=step)
        for path in _plots(run):
            self.client.log_artifact(self.run_id, path, artifact_path="plots")
        if run.exists("metrics.json"):
            self.client.log_artifact(self.run_id, run.file("metrics.json"))
        self.client.set_terminated(self.run_id, self.STATUS.get(status, "FAILED"))


def local_store(run: RunDir) -> tuple[str, str]:
    """The default MLflow store of a run: ``<out>/mlflow.db`` and ``<out>/mlartifacts`` (runs are
    ``<out>/<spec>/<name>``)."""
    from pathlib import Path

    out = Path(os.path.dirname(os.path.dirname(run.path)))
    return f"sqlite:///{out / 'mlflow.db'}", (out / "mlartifacts").as_uri()
