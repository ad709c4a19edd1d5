"""Progress output: a live line per epoch on a terminal, one plain line per epoch otherwise,
and the results table at the end."""

from __future__ import annotations

import sys
import time


def _fmt(value) -> str:
    if isinstance(value, float):
        if value != value:
            return "nan"
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:.4g}"
    return str(value)


def log_order(logs: dict) -> list[str]:
    """loss, per-head losses, metrics, then the same for validation (Keras's order varies)."""
    def key(name: str):
        val = name.startswith("val_")
        base = name[4:] if val else name
        return (val, base != "loss", not base.endswith("loss"), base)

    return sorted(logs, key=key)


def _logs(logs: dict, keys: list[str] | None = None) -> str:
    keys = keys or [k for k in log_order(logs) if k not in ("epoch", "lr", "seconds")]
    return "  ".join(f"{k} {_fmt(logs[k])}" for k in keys if k in logs)


class Progress:
    """Writes progress to ``stream`` (nothing when ``stream`` is None)."""

    def __init__(self, stream=None, epochs: int = 0, prefix: str = ""):
        self.stream = stream
        self.epochs = epochs
        self.prefix = prefix
        self.live = bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())
        self._last = 0.0
        self._started = time.monotonic()

    @property
    def wants_steps(self) -> bool:
        """Only a terminal shows within-epoch updates (they cost a device sync each)."""
        return self.live

    def due(self) -> bool:
        """True at most every 0.25 s: callers sync and call :meth:`step` only then."""
        now = time.monotonic()
        if now - self._last >= 0.25:
            self._last = now
            return True
        return False

    def epoch_begin(self, epoch: int) -> None:
        self._started = time.monotonic()

    def step(self, epoch: int, step: int, steps: int, logs: dict) -> None:
        if not self.live:
            return
        width = 24
        step = max(0, min(step, steps))  # Keras reports the last step of an execution, which can pass the total
        done = min(width, int(width * step / max(1, steps)))
        bar = "=" * done + "." * (width - done)
        elapsed = time.monotonic() - self._started
        eta = max(0.0, elapsed / max(1, step) * (steps - step))
        line = f"\r{self.prefix}epoch {epoch + 1}/{self.epochs} [{bar}] {step}/{steps} eta {eta:4.0f}s  {_logs(logs)}"
        self.stream.write(line[:200].ljust(80))
        self.stream.flush()

    def epoch_end(self, row: dict, note: str = "") -> None:
        if self.stream is None:
            return
        text = (f"{self.prefix}epoch {row['epoch']}/{self.epochs}  {_logs(row)}  lr {row['lr']:.3g}  "
                f"{row['seconds']:.1f}s{('  ' + note) if note else ''}")
        if self.live:
            self.stream.write("\r" + text.ljust(80) + "\n")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        if self.stream is not None:
            self.stream.write(f"{self.prefix}{text}\n")
            self.stream.flush()


def results_table(rows: list[tuple[str, str]], title: str = "") -> str:
    """A two-column table: name, value."""
    width = max((len(k) for k, _ in rows), default=4)
    vwidth = max((len(v) for _, v in rows), default=5)
    line = "+" + "-" * (width + 2) + "+" + "-" * (vwidth + 2) + "+"
    out = []
    if title:
        out.append(title)
    out.append(line)
    for k, v in rows:
        out.append(f"| {k.ljust(width)} | {v.rjust(vwidth)} |")
    out.append(line)
    return "\n".join(out)


def format_metric(name: str, value) -> str:
    if isinstance(value, float) and "accuracy" in name:
        return f"{value:.2%}"
    return _fmt(value)


def default_stream():
    return sys.stdout
