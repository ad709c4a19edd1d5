"""Shared CLI helpers: printing diagnostics and writing files atomically."""

from __future__ import annotations

import os
import tempfile


def use_color(stream) -> bool:
    return hasattr(stream, "isatty") and stream.isatty() and not os.environ.get("NO_COLOR")


def print_diagnostics(diagnostics, err) -> None:
    color = use_color(err)
    errors = sum(1 for d in diagnostics if d.severity == "error")
    for d in sorted(diagnostics):
        text = d.format()
        if color:
            first, _, rest = text.partition("\n")
            first = first.replace(": error:", ": \x1b[1;31merror:\x1b[0m", 1)
            text = first + ("\n" + rest if rest else "")
        print(text, file=err)
    if errors:
        print(f"{errors} error{'s' if errors != 1 else ''}", file=err)


def atomic_write(path: str, data: bytes | str) -> None:
    """Write a file so that readers see the old or the new content, never half of it."""
    mode = "wb" if isinstance(data, bytes) else "w"
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
