"""Predictions of a trained run for files: .npy / .npz arrays or images.

Raw inputs (integer arrays, images) get the run's own preprocessing, read from its
settings.json (``data.scale``, ``data.mean``, ``data.std``), and are reshaped to the spec's
input shape; ``prepared=True`` feeds float arrays unchanged.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from nnspec.training import metrics as M
from nnspec.training.errors import TrainingError
from nnspec.training.settings import Settings

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def read_inputs(paths: list[str], spec) -> tuple[dict, list[str]]:
    """Arrays keyed by input name, and a label per example (file name, or file[i])."""
    inputs = list(spec.graph.inputs)
    shapes = {name: tuple(spec.analysis.nodes[name].output_shape[1:]) for name in inputs}
    columns: dict[str, list] = {name: [] for name in inputs}
    labels: list[str] = []
    from nnspec.data.sources import _npz_arrays, check_features, load_npy

    for path in paths:
        if not os.path.exists(path):
            raise TrainingError(f"{path}: no such file")
        if os.path.isdir(path):
            raise TrainingError(f"{path}: is a directory; give .npy, .npz or image files")
        ext = os.path.splitext(path)[1].lower()
        if ext == ".npy":
            arrays = {inputs[0]: load_npy(path)}
        elif ext == ".npz":
            found = _npz_arrays(path)
            if len(inputs) == 1:
                key = next((k for k in ("x", inputs[0]) if k in found), next(iter(found), None))
                if key is None:
                    raise TrainingError(f"{path}: the .npz file holds no arrays")
                arrays = {inputs[0]: found[key]}
            else:
                missing = [n for n in inputs if n not in found]
                if missing:
                    raise TrainingError(f"{path}: needs one array per input; missing {', '.join(missing)}")
                arrays = {n: found[n] for n in inputs}
        elif ext in IMAGE_EXTENSIONS:
            if len(inputs) != 1:
                raise TrainingError(f"{path}: images can only feed a spec with one input")
            arrays = {inputs[0]: _image(path, shapes[inputs[0]])[None]}
        else:
            raise TrainingError(f"{path}: unsupported input file; give .npy, .npz or an image "
                                f"({', '.join(IMAGE_EXTENSIONS)})")
        n = 0
        for name, arr in arrays.items():
            arr = np.asarray(arr)
            if arr.ndim == 0:
                arr = arr.reshape(1)
            arr = check_features(arr, path, f"input `{name}`")
            if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
                raise TrainingError(f"{path}: input `{name}` has missing (NaN) or infinite values; predictions "
                                    "for them would be meaningless")
            if not all(isinstance(d, int) for d in shapes[name]):
                raise TrainingError(f"input `{name}` has the shape {shapes[name]} with unknown sizes; predict "
                                    "needs every size fixed in the spec")
            size = int(np.prod(shapes[name]))
            if arr.size == size:
                arr = arr.reshape((1, *shapes[name]))
            elif arr.ndim >= 1 and arr.size % size == 0 and arr[0].size == size:
                arr = arr.reshape((len(arr), *shapes[name]))
            else:
                raise TrainingError(f"{path}: array of shape {arr.shape} does not fit input `{name}` of shape "
                                    f"{shapes[name]} (one example or a batch of them)")
            columns[name].append(arr)
            n = len(arr)
        labels += [path] if n == 1 else [f"{path}[{i}]" for i in range(n)]
    return {k: np.concatenate(v) for k, v in columns.items()}, labels


def _image(path: str, shape: tuple) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError:
        raise TrainingError("reading images needs Pillow: pip install pillow") from None
    if len(shape) == 3:
        h, w, c = shape
    elif len(shape) == 1:
        side = int(round(shape[0] ** 0.5))
        if side * side != shape[0]:
            raise TrainingError(f"{path}: the spec's input {shape} is not an image")
        h = w = side
        c = 1
    else:
        h, w, c = shape[0], shape[1], 1
    import pathlib

    from nnspec.data.sources import read_image

    arr = read_image(pathlib.Path(path), "L" if c == 1 else "RGB", (h, w), Image)
    return arr.reshape(shape)


def prepare(arrays: dict, settings: Settings, prepared: bool) -> dict:
    """The run's scaling and normalisation (skipped when ``prepared``)."""
    data = settings.data or {}
    scale, mean, std = float(data.get("scale", 1.0)), float(data.get("mean", 0.0)), float(data.get("std", 1.0))
    out = {}
    for name, arr in arrays.items():
        if prepared:
            out[name] = arr.astype(np.float32)
        else:
            out[name] = ((arr.astype(np.float32) * np.float32(scale)) - np.float32(mean)) / np.float32(std)
    return out


def _looks_like(lo: float, hi: float, range_: list) -> bool:
    """Values [lo, hi] look like they come from ``range_``: inside it (give or take a quarter of its span)
    and spreading over at least a tenth of it."""
    r_lo, r_hi = range_
    span = r_hi - r_lo
    if span <= 0:
        return False
    return r_lo - span / 4 <= lo and hi <= r_hi + span / 4 and (hi - lo) >= span / 10


def check_input_range(arrays: dict, paths: list[str], settings: Settings, prepared: bool) -> dict | None:
    """Refuse inputs whose range contradicts the run's recorded input transform; returns that transform.

    Without ``--raw`` the run applies its transform (e.g. x / 255): input that already looks transformed
    would be transformed twice. With ``--raw`` it is fed as is: input that still looks raw is refused.
    """
    transform = (settings.data or {}).get("input_transform")
    if not transform or transform.get("formula") == "x":
        return transform
    raw, model = transform["raw_range"], transform["model_range"]
    what = ", ".join(paths)
    for arr in arrays.values():
        a = np.asarray(arr, dtype=np.float64)
        if not a.size:
            continue
        lo, hi = float(a.min()), float(a.max())
        looks_raw, looks_model = _looks_like(lo, hi, raw), _looks_like(lo, hi, model)
        if not prepared and looks_model and not looks_raw:
            raise TrainingError(
                f"{what}: values in [{lo:.4g}, {hi:.4g}] look already prepared, but this run was trained on raw "
                f"values in [{raw[0]:.4g}, {raw[1]:.4g}] ({transform['raw_dtype']}) and applies {transform['formula']} "
                f"itself, so they would be transformed twice; pass --raw to feed them unchanged, or give raw values")
        if prepared and looks_raw and not looks_model:
            raise TrainingError(
                f"{what}: --raw feeds values in [{lo:.4g}, {hi:.4g}] unchanged, but the model was trained on "
                f"[{model[0]:.4g}, {model[1]:.4g}] (after {transform['formula']}); these look raw: drop --raw so "
                "the run applies its transform")
    return transform


def predict_files(run_dir: str, paths: list[str], backend: str | None = None, prepared: bool = False,
                  top: int = 3) -> dict:
    """Predictions per example: top classes with probabilities, or values (regression)."""
    from nnspec.training.run import open_model

    run, spec, settings, loop = open_model(run_dir, backend)
    arrays, labels = read_inputs(paths, spec)
    transform = check_input_range(arrays, paths, settings, prepared)
    preds = loop.predict(prepare(arrays, settings, prepared))
    names = list(settings.class_names or [])
    out = []
    for i, label in enumerate(labels):
        heads: dict[str, Any] = {}
        for head, loss in settings.losses.items():
            p = M.probabilities(preds[head][i], loss)
            if loss.class_indices:
                order = np.argsort(-p)[:top]
                heads[head] = {"classes": [{"class": names[j] if j < len(names) else str(j), "index": int(j),
                                            "probability": float(p[j])} for j in order]}
            else:
                heads[head] = {"values": [float(v) for v in np.asarray(p).reshape(-1)]}
        out.append({"source": label, "heads": heads})
    return {"run_dir": run.path, "backend": settings.backend, "input_transform": transform,
            "applied_transform": not prepared, "predictions": out}
