"""The run directory: the one record of a training run, read by ``evaluate``, ``predict``,
``inspect`` and ``--resume``. Its layout is fixed::

    runs/<spec name>/<YYYYmmdd-HHMMSS>/
      spec.yaml            copy of the spec as trained
      settings.json        fully resolved settings (backend, optimiser, schedule, seed, versions, ...)
      history.csv          one row per completed epoch: epoch, loss, metrics, val_*, lr, seconds
      metrics.json         final test metrics (test_loss, test_accuracy / test_mae, ...)
      weights/best.safetensors, weights/last.safetensors   (nnspec.backends.weights format)
      checkpoints/state.json + model-<epoch>.safetensors + optimizer-<epoch>.*   (resume)
      plots/curves.png, plots/confusion_matrix.png | plots/predicted_vs_true.png
      members/<i>/         (ensembles) one run directory per member; ensemble.json beside them

Every file is written atomically (temp file + rename). ``checkpoints/state.json`` is written
last and names the checkpoint files it belongs to, so a run killed at any instant resumes
from a complete epoch.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from typing import TYPE_CHECKING

from nnspec.fileio import atomic_write
from nnspec.training.errors import TrainingError

if TYPE_CHECKING:
    from nnspec.training.settings import Settings


def _json(data) -> str:
    return json.dumps(_clean(data), indent=2, sort_keys=False) + "\n"


def _clean(value):
    """JSON-safe: NaN/inf become strings, numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class RunDir:
    """Paths and atomic readers/writers of one run directory."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)

    @classmethod
    def create(cls, root: str, spec_name: str, now: float | None = None) -> RunDir:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
        base = os.path.join(root, spec_name, stamp)
        path, n = base, 1
        while True:
            try:
                os.makedirs(path)
                break
            except FileExistsError:
                n += 1
                path = f"{base}-{n}"
        return cls(path)

    @classmethod
    def open(cls, path: str) -> RunDir:
        run = cls(path)
        if not os.path.isfile(run.file("settings.json")):
            raise TrainingError(f"{path} is not a run directory (no settings.json in it)")
        return run

    def file(self, *parts: str) -> str:
        return os.path.join(self.path, *parts)

    # --- plain records -------------------------------------------------------------------
    def write_text(self, name: str, text: str) -> None:
        atomic_write(self.file(name), text)

    def write_json(self, name: str, data) -> None:
        atomic_write(self.file(name), _json(data))

    def read_json(self, name: str):
        with open(self.file(name), encoding="utf-8") as fh:
            return json.load(fh)

    def read_settings(self) -> Settings:
        """``settings.json`` as typed :class:`~nnspec.training.settings.Settings`."""
        from nnspec.training.settings import Settings

        return Settings.from_json(self.read_json("settings.json"))

    def write_settings(self, settings: Settings) -> None:
        self.write_json("settings.json", settings.to_json())

    def exists(self, name: str) -> bool:
        return os.path.exists(self.file(name))

    @property
    def weights_best(self) -> str:
        return self.file("weights", "best.safetensors")

    @property
    def weights_last(self) -> str:
        return self.file("weights", "last.safetensors")

    def plot(self, name: str) -> str:
        os.makedirs(self.file("plots"), exist_ok=True)
        return self.file("plots", name)

    def member(self, index: int) -> RunDir:
        path = self.file("members", str(index))
        os.makedirs(path, exist_ok=True)
        return RunDir(path)

    # --- history -------------------------------------------------------------------------
    def write_history(self, rows: list[dict]) -> None:
        columns: list[str] = []
        for row in rows:
            for key in row:
                if key not in columns:
                    columns.append(key)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _format_cell(v) for k, v in row.items()})
        atomic_write(self.file("history.csv"), buf.getvalue())

    def read_history(self) -> list[dict]:
        if not self.exists("history.csv"):
            return []
        with open(self.file("history.csv"), encoding="utf-8", newline="") as fh:
            rows = []
            for row in csv.DictReader(fh):
                rows.append({k: (int(v) if k == "epoch" else _parse_cell(v)) for k, v in row.items()})
            return rows

    # --- checkpoints ---------------------------------------------------------------------
    def checkpoint_file(self, kind: str, epoch: int, ext: str) -> str:
        os.makedirs(self.file("checkpoints"), exist_ok=True)
        return self.file("checkpoints", f"{kind}-{epoch}.{ext}")

    def commit_checkpoint(self, state: dict) -> None:
        """Make ``state`` (which names its files) the current checkpoint; drop older files."""
        self.write_json(os.path.join("checkpoints", "state.json"), state)
        keep = {os.path.basename(p) for p in state.get("files", {}).values()} | {"state.json"}
        for name in os.listdir(self.file("checkpoints")):
            if name not in keep and not name.startswith(".tmp-"):
                try:
                    os.unlink(self.file("checkpoints", name))
                except OSError:
                    pass

    def read_checkpoint(self) -> dict | None:
        name = os.path.join("checkpoints", "state.json")
        return self.read_json(name) if self.exists(name) else None


def _format_cell(value):
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return value


def _parse_cell(value: str):
    try:
        return float(value)
    except (TypeError, ValueError):
        return value
