"""Export a Keras-built spec as a ``.keras`` file (written to a temporary file, then renamed)."""

from __future__ import annotations

import os
import tempfile

import numpy as np

from nnspec.backends.export import ExportResult


def export(spec, model, format: str, output: str, inputs: list[np.ndarray], verify: bool = True) -> ExportResult:
    folder = os.path.dirname(os.path.abspath(output))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".keras", dir=folder)
    os.close(fd)
    try:
        model.save(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, output)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return ExportResult(output, "keras")
