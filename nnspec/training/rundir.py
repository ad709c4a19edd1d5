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

Reading trusts nothing: a truncated, empty or edited file is a :class:`TrainingError` that names
the file and says what to do, never a raw ``JSONDecodeError`` or ``KeyError``. ``train`` and
``--resume`` hold an exclusive lock on the directory (two writers would interleave epochs) and
clear ``.tmp-*`` files a killed process left behind.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
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


_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def check_run_name(name: str | None) -> None:
    """Refuse a run name that is not one plain folder name (``--name``)."""
    if name is not None and not _RUN_NAME.fullmatch(name):
        raise TrainingError(f"run name {name!r} cannot be a folder name: use letters, digits, '.', '_' and '-' "
                            "(at most 100, starting with a letter or digit)")


class RunDir:
    """Paths and atomic readers/writers of one run directory."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self._lock_fd: int | None = None

    @classmethod
    def create(cls, root: str, spec_name: str, now: float | None = None, name: str | None = None) -> RunDir:
        """A new directory ``root/<spec name>/<name or timestamp>`` (``-2``, ``-3``, ... when it exists)."""
        check_run_name(name)
        stamp = name or time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
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
        if not os.path.isdir(run.path):
            raise TrainingError(f"{path} is not a run directory (no such directory)")
        if not os.path.isfile(run.file("settings.json")):
            raise TrainingError(f"{path} is not a run directory (no settings.json in it)")
        return run

    def damaged(self, name: str, reason: str) -> TrainingError:
        return TrainingError(f"{self.file(name)} is damaged ({reason}); this run directory cannot be used as it is "
                             "(restore the file from a backup, or train again)")

    # --- locking and leftovers -----------------------------------------------------------
    def lock(self) -> None:
        """Take an exclusive lock on the directory for this process (released when it exits).

        A second ``train --resume`` of the same directory would write the same checkpoints and
        history concurrently; it is refused instead. Leftover ``.tmp-*`` files are removed then.
        """
        import fcntl

        if self._lock_fd is not None:
            return
        try:
            fd = os.open(self.file(".lock"), os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise TrainingError(f"could not write {self.file('.lock')}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise TrainingError(f"{self.path} is in use by another nnspec process (train or --resume); wait for it "
                                "to finish, or stop it") from None
        self._lock_fd = fd
        self.clean_temporary()

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def clean_temporary(self) -> list[str]:
        """Remove ``.tmp-*`` files (left by a process killed mid-write); returns their paths."""
        removed = []
        for folder, dirs, files in os.walk(self.path):
            depth = os.path.relpath(folder, self.path).count(os.sep)
            if depth > 3:
                dirs[:] = []
            for name in files:
                if name.startswith(".tmp-"):
                    try:
                        os.unlink(os.path.join(folder, name))
                        removed.append(os.path.join(folder, name))
                    except OSError:
                        pass
        return removed

    def file(self, *parts: str) -> str:
        return os.path.join(self.path, *parts)

    # --- plain records -------------------------------------------------------------------
    def write_text(self, name: str, text: str) -> None:
        atomic_write(self.file(name), text)

    def write_json(self, name: str, data) -> None:
        atomic_write(self.file(name), _json(data))

    def read_json(self, name: str, kind: type = dict):
        """A JSON file of the run; a missing, unreadable or malformed one is a TrainingError naming it."""
        try:
            with open(self.file(name), encoding="utf-8") as fh:
                data = json.load(fh)
        except FileNotFoundError:
            raise TrainingError(f"{self.file(name)} is missing; this run directory is incomplete") from None
        except UnicodeDecodeError:
            raise self.damaged(name, "not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise self.damaged(name, f"not valid JSON: {exc.msg} at line {exc.lineno}") from None
        except OSError as exc:
            raise TrainingError(f"could not read {self.file(name)}: {exc.strerror or exc}") from None
        if not isinstance(data, kind):
            raise self.damaged(name, f"expected a JSON {'object' if kind is dict else kind.__name__}")
        return data

    def read_settings(self) -> Settings:
        """``settings.json`` as typed :class:`~nnspec.training.settings.Settings`."""
        from nnspec.training.settings import Settings

        record = self.read_json("settings.json")
        problems = [key for key, kind in REQUIRED_SETTINGS.items() if not isinstance(record.get(key), kind)]
        from nnspec.backends.base import names

        if not problems and record["backend"] not in names():
            problems = ["backend"]
        for key, kind in OPTIONAL_SETTINGS.items():
            if not problems and key in record and record[key] is not None and not isinstance(record[key], kind):
                problems = [key]
        if problems:
            raise self.damaged("settings.json", f"`{problems[0]}` is missing or has the wrong type")
        try:
            return Settings.from_json(record)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise self.damaged("settings.json", f"{type(exc).__name__}: {str(exc)[:200]}") from None

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
        """history.csv rows; a truncated or edited file (a row missing cells, epochs out of order) is an error."""
        if not self.exists("history.csv"):
            return []
        try:
            with open(self.file("history.csv"), encoding="utf-8", newline="") as fh:
                reader = csv.DictReader(fh)
                rows = []
                for row in reader:
                    if None in row or None in row.values() or not str(row.get("epoch", "")).isdigit():
                        raise self.damaged("history.csv", f"line {reader.line_num} is incomplete or malformed")
                    rows.append({k: (int(v) if k == "epoch" else _parse_cell(v)) for k, v in row.items()})
        except (UnicodeDecodeError, csv.Error) as exc:
            raise self.damaged("history.csv", str(exc)) from None
        except OSError as exc:
            raise TrainingError(f"could not read {self.file('history.csv')}: {exc.strerror or exc}") from None
        if [r["epoch"] for r in rows] != list(range(1, len(rows) + 1)):
            raise self.damaged("history.csv", "its epochs are not 1, 2, 3, ...")
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
        """checkpoints/state.json, checked: an epoch number and the names of existing checkpoint files."""
        name = os.path.join("checkpoints", "state.json")
        if not self.exists(name):
            return None
        state = self.read_json(name)
        epoch = state.get("epoch")
        files = state.get("files")
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
            raise self.damaged(name, "no valid `epoch`")
        if not isinstance(files, dict) or not isinstance(files.get("model"), str) or \
                not all(isinstance(v, str) for v in files.values()):
            raise self.damaged(name, "no valid `files`")
        for kind, base in files.items():
            if os.path.basename(base) != base or base in ("", ".", ".."):
                raise self.damaged(name, f"the {kind} file name {base!r} is not a plain file name")
            if not os.path.isfile(self.file("checkpoints", base)):
                raise TrainingError(f"{self.file('checkpoints', base)} is missing; the checkpoint of epoch {epoch} "
                                    "cannot be restored (train again, or restore the file)")
        return state


REQUIRED_SETTINGS: dict[str, type | tuple[type, ...]] = {"backend": str, "epochs": int, "batch_size": int,
                                                         "losses": dict}
OPTIONAL_SETTINGS: dict[str, type | tuple[type, ...]] = {"ensemble": int, "overrides": list, "spec_path": str,
                                                         "optimizer": dict, "schedule": dict, "metrics": list,
                                                         "class_names": list, "data": dict, "versions": dict}


def _format_cell(value):
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return value


def _parse_cell(value: str):
    try:
        return float(value)
    except (TypeError, ValueError):
        return value
