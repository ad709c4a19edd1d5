"""``load_data(spec)``: the spec's ``data:`` section -> train / validation / test arrays.

Order of work: read (Fashion-MNIST or user files) -> test set (the data's own, or
``test_split``) -> ``limit`` / ``test_limit`` -> seeded validation split -> float32 and scale
-> rotation (when the angle is a target) -> normalisation -> reshape to each input's shape ->
labels per head (integers, one-hot, or float targets).
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from nnspec.data import fashion_mnist
from nnspec.data.errors import DataError, spec_error
from nnspec.data.sources import RawData, read_csv, read_image_folder, read_npz
from nnspec.data.transforms import make_image_augment, one_hot, random_angles, rotate

CLASSIFICATION_LOSSES = {"categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy"}
REGRESSION_LOSSES = {"mse", "mae", "huber"}
DEFAULT_VALIDATION_SPLIT = 0.1
TEST_SEED = 20240613  # test-set split and test rotations do not depend on the training seed

Arrays = np.ndarray | dict


@dataclass
class ArraySet:
    """One split. ``x``: float32 (N, *input_shape), or {input name: array} for several inputs.
    ``y``: one array, or {head name: array} for several heads."""

    x: Arrays
    y: Arrays

    def __len__(self) -> int:
        first = next(iter(self.x.values())) if isinstance(self.x, dict) else self.x
        return len(first)

    def take(self, index) -> ArraySet:
        """The examples at ``index`` (a slice or an integer array), x and y alike."""
        pick = lambda a: {k: v[index] for k, v in a.items()} if isinstance(a, dict) else a[index]  # noqa: E731
        return ArraySet(pick(self.x), pick(self.y))


@dataclass
class DataSplits:
    """What training reads. ``val``/``test`` are None when there is none (``validation_split: 0``;
    user data without a test file or ``test_split``)."""

    train: ArraySet
    val: ArraySet | None
    test: ArraySet | None
    task: str  # "classification" | "regression" | "mixed" (several heads of both kinds)
    num_classes: int | None
    class_names: tuple[str, ...] | None
    augment: Callable[[Arrays, np.random.Generator], Arrays] | None = None
    head_tasks: dict[str, str] = field(default_factory=dict)  # head -> "classification" | "regression"
    info: dict = field(default_factory=dict)  # resolved settings: source, scale, mean, std, sizes, ...
    prepare: Callable[[Arrays], Arrays] | None = None  # raw inputs -> model inputs (for predict)


# ---------------------------------------------------------------- spec reading


def _as_spec(spec):
    if isinstance(spec, (str, os.PathLike)):
        from nnspec.pipeline import load

        return load(spec)
    return spec


def _shape(spec, node: str) -> tuple:
    return tuple(spec.analysis.nodes[node].output_shape[1:])


def _rotation_head(spec, cfg: dict, head_losses: dict[str, str]) -> str | None:
    rot = cfg.get("rotate")
    if not rot:
        return None
    head = rot.get("head")
    target = rot.get("target")
    if target is False:
        if head:
            raise spec_error(
                spec,
                ("data", "rotate", "head"),
                "rotate.head names a head but rotate.target is false",
                hint="drop one of them",
            )
        return None
    if head is None and not target:
        return None  # no target asked: rotation is augmentation
    heads = list(head_losses)
    if head is not None:
        if head not in head_losses:
            raise spec_error(
                spec,
                ("data", "rotate", "head"),
                f"rotate.head {head!r} is not a head of the spec",
                hint=f"heads: {', '.join(heads)}",
            )
    elif len(heads) == 1:
        head = heads[0]
    else:
        regression = [h for h in heads if head_losses[h] in REGRESSION_LOSSES]
        if len(regression) != 1:
            raise spec_error(
                spec,
                ("data", "rotate"),
                "the spec has several heads: say which one receives the angle",
                hint="set rotate.head",
            )
        head = regression[0]
    if head_losses[head] not in REGRESSION_LOSSES:
        raise spec_error(
            spec,
            ("data", "rotate"),
            f"head {head!r} receives the rotation angle but its loss is {head_losses[head]}",
            hint="use mse, mae or huber for the angle",
        )
    return head


def _resolve_path(spec, value: str | None) -> str | None:
    if not value:
        return None
    p = pathlib.Path(os.path.expanduser(value))
    if not p.is_absolute() and getattr(spec, "path", None) and os.path.exists(spec.path):
        beside = pathlib.Path(spec.path).resolve().parent / p
        if beside.exists() or not p.exists():
            p = beside
    return str(p)


def _image_geometry(spec, cfg: dict, inputs: dict[str, tuple]) -> tuple[tuple[int, int], int]:
    """(H, W) and channels for image data, from data.image_size and the first image-like input."""
    size = tuple(cfg["image_size"]) if cfg.get("image_size") else None
    for shape in inputs.values():
        if len(shape) == 3 and all(isinstance(d, int) for d in shape):
            return (size or shape[:2]), shape[2]
        if len(shape) == 2 and all(isinstance(d, int) for d in shape):
            return (size or shape), 1
    for shape in inputs.values():
        if len(shape) == 1 and isinstance(shape[0], int) and size:
            pixels = size[0] * size[1]
            if shape[0] % pixels == 0:
                return size, shape[0] // pixels
    raise spec_error(
        spec,
        ("data",),
        "cannot tell the image size from the spec's inputs",
        hint="set data.image_size: [H, W] (or give the input a [H, W, C] shape)",
    )


def input_transform(x: Arrays, scale: float, mean: float, std: float) -> dict:
    """What training did to raw inputs, recorded in the run so `nnspec predict` can apply it knowingly.

    ``raw_range``/``raw_dtype`` describe the training features as read; ``model_range`` what the model saw.
    """
    arrays = list(x.values()) if isinstance(x, dict) else [x]
    lo = float(min(np.min(a) for a in arrays)) if all(np.size(a) for a in arrays) else 0.0
    hi = float(max(np.max(a) for a in arrays)) if all(np.size(a) for a in arrays) else 0.0
    ends = sorted([((lo * scale) - mean) / std, ((hi * scale) - mean) / std])
    formula = f"x * {scale:.6g}" if scale != 1 else "x"
    if mean != 0 or std != 1:
        formula = f"({formula} - {mean:.6g}) / {std:.6g}"
    return {"formula": formula, "raw_dtype": str(arrays[0].dtype), "raw_range": [lo, hi],
            "model_range": [float(ends[0]), float(ends[1])]}


def check_finite(raw: RawData, cfg: dict) -> None:
    """Refuse NaN or infinite values in features or targets, naming the file, the array and the first bad index.

    Caught here, a bad value is one clear message at load time instead of "the training loss became nan" later.
    """
    def names(setting, default: str) -> dict:
        return dict(setting) if isinstance(setting, dict) else {"": setting if isinstance(setting, str) else default}

    features, targets = names(cfg.get("features"), "x"), names(cfg.get("target"), "y")
    parts = [("features", raw.x, features, ""), ("targets", raw.y, targets, ""),
             ("features", raw.x_test, features, " (test file)"), ("targets", raw.y_test, targets, " (test file)")]
    for role, arrays, labels, which in parts:
        if arrays is None:
            continue
        for key, array in (arrays.items() if isinstance(arrays, dict) else [("", arrays)]):
            a = np.asarray(array)
            if a.dtype.kind not in "fc":
                continue  # integers and booleans cannot hold NaN or infinity
            bad = ~np.isfinite(a)
            if not bad.any():
                continue
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            value = a[index]
            label = labels.get(key) or labels.get("") or key
            kind = "NaN" if np.isnan(value) else ("+inf" if value > 0 else "-inf")
            where = f"[{', '.join(map(str, index))}]"
            name = f"array `{label}`" if label else role
            raise DataError(
                f"{name} ({role}){which} holds {int(bad.sum()):,} NaN/inf value(s); the first is "
                f"{kind} at index {where} (example {index[0]})",
                file=raw.source,
                hint="clean or drop those examples before training (e.g. numpy.nan_to_num, or keep "
                     "np.isfinite(x).all(axis=1) rows)",
            )


def _read(spec, cfg: dict, inputs: dict[str, tuple]) -> RawData:
    dataset = cfg.get("dataset")
    path = _resolve_path(spec, cfg.get("path"))
    test_path = _resolve_path(spec, cfg.get("test_path"))
    if dataset is None:
        if not path:
            dataset = "fashion_mnist"
        elif os.path.isdir(path):
            dataset = "image_folder"
        else:
            dataset = {".npz": "npz", ".csv": "csv"}.get(pathlib.Path(path).suffix.lower())
            if dataset is None:
                raise spec_error(
                    spec, ("data", "path"), f"cannot tell the kind of data in {path}", hint="set data.dataset"
                )
    if dataset == "fashion_mnist":
        x, y, xt, yt = fashion_mnist.load(path)
        return RawData(
            x[..., None],
            y,
            xt[..., None],
            yt,
            fashion_mnist.CLASS_NAMES,
            images=True,
            source=str(fashion_mnist.locate(path)[fashion_mnist.TRAIN_IMAGES].parent),
        )
    if not path:
        raise spec_error(
            spec, ("data", "dataset"), f"{dataset} data needs data.path", hint="set data.path to the file or folder"
        )
    if dataset == "npz":
        return read_npz(path, test_path, features=cfg.get("features"), target=cfg.get("target"))
    if dataset == "csv":
        return read_csv(path, test_path, features=cfg.get("features"), target=cfg.get("target"))
    if dataset == "image_folder":
        size, channels = _image_geometry(spec, cfg, inputs)
        return read_image_folder(path, test_path, size=size, channels=channels)
    raise spec_error(
        spec, ("data", "dataset"), f"unknown dataset {dataset!r}", hint="fashion_mnist, npz, csv or image_folder"
    )


# ---------------------------------------------------------------- array helpers


def _n(arrays: Arrays) -> int:
    return len(next(iter(arrays.values()))) if isinstance(arrays, dict) else len(arrays)


def _index(arrays: Arrays | None, idx):
    if arrays is None:
        return None
    if isinstance(arrays, dict):
        return {k: v[idx] for k, v in arrays.items()}
    return arrays[idx]


def split_indices(n: int, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held out) index arrays, each in ascending order; held out is round(n * fraction)."""
    held = int(round(n * fraction))
    if fraction > 0 and n >= 2:
        held = min(max(held, 1), n - 1)
    else:
        held = 0
    perm = rng.permutation(n)
    return np.sort(perm[held:]), np.sort(perm[:held])


def _fit_shape(x: np.ndarray, shape: tuple, what: str, spec, input_name: str, images: bool) -> np.ndarray:
    """Reshape (N, ...) to (N, *shape) when the value counts agree (flattening images for dense inputs)."""
    if any(not isinstance(d, int) for d in shape):
        if x.ndim - 1 == len(shape):
            return x
        raise spec_error(
            spec, ("inputs", input_name), f"input {input_name!r} has shape {shape} but the data is {x.shape[1:]}"
        )
    if x.shape[1:] == shape:
        return x
    if int(np.prod(x.shape[1:])) == int(np.prod(shape)):
        return x.reshape((len(x), *shape))
    got = "x".join(str(d) for d in x.shape[1:])
    hint = f"set inputs.{input_name}.shape to {list(x.shape[1:])}"
    if images:
        hint += f" or [{int(np.prod(x.shape[1:]))}]"
    raise spec_error(
        spec,
        ("inputs", input_name),
        f"input {input_name!r} expects shape {list(shape)} ({int(np.prod(shape)):,} values) but {what} gives {got} ({int(np.prod(x.shape[1:])):,} values)",
        hint=hint,
    )


# ---------------------------------------------------------------- the entry point


def spec_validation_split(spec) -> float:
    """The spec's validation split: ``train.validation_split``, else ``data.validation_split``, else 0.1.

    The one rule for it: training settings and :func:`load_data` both read it here.
    """
    return float(spec.train.get("validation_split", spec.data.get("validation_split", DEFAULT_VALIDATION_SPLIT)))


def load_data(spec, *, limit: int | None = None, seed: int = 0, validation_split: float | None = None) -> DataSplits:
    """Read the spec's data and return train/val/test arrays shaped for its inputs and heads.

    ``limit`` (first N training examples) and ``validation_split`` override the spec; ``seed``
    fixes the validation split and the training rotations. See :mod:`nnspec.data`.
    """
    spec = _as_spec(spec)
    cfg = spec.data
    if not cfg:
        raise spec_error(
            spec,
            (),
            "the spec has no data: section",
            hint="add `data: {dataset: fashion_mnist}` (or npz, csv, image_folder)",
        )
    inputs = {name: _shape(spec, name) for name in spec.graph.inputs}
    heads = {h: _shape(spec, node) for h, node in spec.graph.heads.items()}
    head_losses = {h: item["type"] for h, item in spec.losses().items()}
    angle_head = _rotation_head(spec, cfg, head_losses)

    raw = _read(spec, cfg, inputs)
    check_finite(raw, cfg)
    what = cfg.get("dataset") or raw.source
    if angle_head and not raw.images:
        raise spec_error(spec, ("data", "rotate"), f"rotation needs image data; {what} has feature vectors")

    # ---- test set, limits, validation split
    x, y, x_test, y_test = raw.x, raw.y, raw.x_test, raw.y_test
    test_split = cfg.get("test_split")
    if x_test is None and test_split:
        keep, held = split_indices(_n(x), test_split, np.random.default_rng(TEST_SEED))
        x, y, x_test, y_test = _index(x, keep), _index(y, keep), _index(x, held), _index(y, held)
    limit = limit if limit is not None else cfg.get("limit")
    if limit is not None:
        if limit < 1:
            raise DataError(f"limit must be at least 1 (got {limit})")
        x, y = _index(x, slice(0, limit)), _index(y, slice(0, limit))
    test_limit = cfg.get("test_limit")
    if x_test is not None and test_limit:
        x_test, y_test = _index(x_test, slice(0, test_limit)), _index(y_test, slice(0, test_limit))
    if validation_split is None:
        validation_split = spec_validation_split(spec)
    if not 0 <= validation_split < 1:
        raise DataError(f"validation_split must be in [0, 1) (got {validation_split})")
    train_idx, val_idx = split_indices(_n(x), validation_split, np.random.default_rng([seed, 1]))
    parts = {"train": (_index(x, train_idx), _index(y, train_idx))}
    if len(val_idx):
        parts["val"] = (_index(x, val_idx), _index(y, val_idx))
    if x_test is not None and _n(x_test):
        parts["test"] = (x_test, y_test)

    # ---- features: float32, scale, rotation, normalisation, input shapes
    first = next(iter(x.values())) if isinstance(x, dict) else x
    scale = cfg.get("scale", 1 / 255 if first.dtype == np.uint8 else 1.0)
    rot = cfg.get("rotate") or {}
    rngs = {
        "train": np.random.default_rng([seed, 2]),
        "val": np.random.default_rng([seed, 3]),
        "test": np.random.default_rng([TEST_SEED, 4]),
    }
    angles: dict[str, np.ndarray] = {}

    def features(name: str, xs: Arrays) -> Arrays:
        def one(a: np.ndarray) -> np.ndarray:
            out = a.astype(np.float32)
            if scale != 1:
                out *= np.float32(scale)
            return out

        out = {k: one(v) for k, v in xs.items()} if isinstance(xs, dict) else one(xs)
        if angle_head:
            angles[name] = random_angles(rngs[name], len(out), rot["range"])
            out = rotate(out, angles[name])  # type: ignore[arg-type]  # a rotation spec has one image input
        return out

    feats = {name: features(name, xs) for name, (xs, _) in parts.items()}
    mean, std = _normalisation(spec, cfg, feats["train"])
    if mean != 0.0 or std != 1.0:
        for name, xs in feats.items():
            feats[name] = (
                {k: (v - mean) / std for k, v in xs.items()}
                if isinstance(xs, dict)
                else (xs - np.float32(mean)) / np.float32(std)
            )

    def shaped(xs: Arrays) -> Arrays:
        if isinstance(xs, dict):
            missing = [i for i in inputs if i not in xs]
            if missing:
                raise spec_error(
                    spec,
                    ("data", "features"),
                    f"data.features gives no array for input {missing[0]!r}",
                    hint=f"inputs: {', '.join(inputs)}",
                )
            return {i: _fit_shape(xs[i], inputs[i], what, spec, i, raw.images) for i in inputs}
        if len(inputs) == 1:
            ((name, shape),) = inputs.items()
            return _fit_shape(xs, shape, what, spec, name, raw.images)
        if raw.images:  # the same image feeds every input, shaped for each
            return {i: _fit_shape(xs, shape, what, spec, i, raw.images) for i, shape in inputs.items()}
        raise spec_error(
            spec,
            ("data", "features"),
            f"the spec has {len(inputs)} inputs but the data has one feature array",
            hint="map each input to an array: data.features: {input: array name}",
        )

    # ---- targets per head
    labels_setting = cfg.get("labels", "auto")
    head_tasks = {
        h: "regression" if (h == angle_head or head_losses[h] in REGRESSION_LOSSES) else "classification" for h in heads
    }
    num_classes = _num_classes(spec, raw, y, heads, head_losses, head_tasks, angle_head)

    def targets(name: str, ys: Arrays | None) -> Arrays:
        out = {}
        for h, shape in heads.items():
            if h == angle_head:
                out[h] = angles[name].reshape(-1, 1)
                continue
            values = _head_values(spec, ys, h, len(heads))
            if head_tasks[h] == "classification":
                out[h] = _encode_classes(spec, values, h, shape, head_losses[h], labels_setting, num_classes or 0)
            else:
                out[h] = _regression_values(spec, values, h, shape)
        return out[next(iter(heads))] if len(heads) == 1 else out

    sets = {name: ArraySet(shaped(feats[name]), targets(name, ys)) for name, (_, ys) in parts.items()}

    tasks = set(head_tasks.values())
    task = tasks.pop() if len(tasks) == 1 else "mixed"
    image_shape = first.shape[1:] if raw.images else None
    augment = _augment(spec, cfg, rot, angle_head, raw.images, image_shape, inputs, mean, std)
    info = {
        "dataset": cfg.get("dataset") or "auto",
        "source": raw.source,
        "sizes": {k: len(v) for k, v in sets.items()},
        "scale": float(scale),
        "mean": float(mean),
        "std": float(std),
        "input_transform": input_transform(x, scale, mean, std),
        "validation_split": float(validation_split),
        "limit": limit,
        "seed": seed,
        "labels": labels_setting,
        "image_shape": list(image_shape) if image_shape else None,
        "rotation": {"range": rot.get("range"), "head": angle_head} if rot else None,
    }

    def prepare(raw_x: Arrays) -> Arrays:
        def one(a):
            a = np.asarray(a, dtype=np.float32) * np.float32(scale)
            return (a - np.float32(mean)) / np.float32(std)

        xs = {k: one(v) for k, v in raw_x.items()} if isinstance(raw_x, dict) else one(raw_x)
        return shaped(xs)

    class_names = raw.class_names if "classification" in head_tasks.values() else None
    if class_names is None and num_classes:
        class_names = tuple(str(i) for i in range(num_classes))
    return DataSplits(
        train=sets["train"],
        val=sets.get("val"),
        test=sets.get("test"),
        task=task,
        num_classes=num_classes,
        class_names=class_names,
        augment=augment,
        head_tasks=head_tasks,
        info=info,
        prepare=prepare,
    )


def _normalisation(spec, cfg: dict, train_x: Arrays) -> tuple[float, float]:
    norm = cfg.get("normalize")
    if not norm:
        return 0.0, 1.0
    if norm is True:
        values = np.concatenate([v.ravel() for v in train_x.values()]) if isinstance(train_x, dict) else train_x
        mean, std = float(np.mean(values, dtype=np.float64)), float(np.std(values, dtype=np.float64))
        return mean, (std if std > 0 else 1.0)
    return float(norm.get("mean", 0.0)), float(norm.get("std", 1.0))


def _head_values(spec, ys: Arrays | None, head: str, n_heads: int) -> np.ndarray:
    if ys is None:
        raise spec_error(spec, ("data",), f"the data has no targets for head {head!r}")
    if isinstance(ys, dict):
        if head not in ys:
            raise spec_error(
                spec,
                ("data", "target"),
                f"data.target gives no target for head {head!r}",
                hint=f"targets: {', '.join(ys)}",
            )
        return ys[head]
    return ys


def _num_classes(spec, raw: RawData, y: Arrays | None, heads, head_losses, head_tasks, angle_head) -> int | None:
    classified = [h for h in heads if head_tasks[h] == "classification"]
    if not classified:
        return None
    if raw.class_names:
        return len(raw.class_names)
    values = [_head_values(spec, y, h, len(heads)) for h in classified]
    largest = max(int(np.max(v)) for v in values if len(v)) if any(len(v) for v in values) else 0
    units = max(heads[h][-1] if heads[h] and isinstance(heads[h][-1], int) else 1 for h in classified)
    binary = all(head_losses[h] == "binary_crossentropy" and heads[h][-1] == 1 for h in classified)
    return 2 if binary else max(largest + 1, units)


def _encode_classes(
    spec, values: np.ndarray, head: str, shape: tuple, loss: str, setting: str, num_classes: int
) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind == "f":
        if not np.all(values == np.round(values)) or not np.all(np.abs(values) < 2**53):
            raise spec_error(
                spec,
                ("loss",),
                f"head {head!r} has a classification loss ({loss}) but its targets are not class numbers",
                hint="use mse/mae/huber for real-valued targets",
            )
        values = values.astype(np.int64)
    labels = values.astype(np.int64).reshape(-1)
    outside = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if len(outside):
        row = int(outside[0])
        raise spec_error(spec, ("data",), f"head {head!r}: label {int(labels[row])} (example {row}) is outside "
                         f"0..{num_classes - 1}", hint="class labels count from 0")
    units = shape[-1] if shape else 1
    if loss == "binary_crossentropy":
        if units == 1:
            if num_classes > 2:
                raise spec_error(
                    spec,
                    ("loss",),
                    f"head {head!r} has one output with binary_crossentropy but the data has {num_classes} classes",
                    hint="use categorical_crossentropy with one unit per class",
                )
            return labels.astype(np.float32).reshape(-1, 1)
        return one_hot(labels, units)
    if units != num_classes:
        raise spec_error(
            spec,
            ("loss",),
            f"head {head!r} outputs {units} values but the data has {num_classes} classes",
            hint=f"give the last dense layer of head {head!r} {num_classes} units",
        )
    if setting == "one_hot":
        if loss == "sparse_categorical_crossentropy":
            raise spec_error(
                spec,
                ("data", "labels"),
                "labels: one_hot does not fit sparse_categorical_crossentropy",
                hint="use labels: integer or categorical_crossentropy",
            )
        return one_hot(labels, num_classes)
    return labels


def _regression_values(spec, values: np.ndarray, head: str, shape: tuple) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind not in "iuf":
        raise spec_error(spec, ("loss",), f"head {head!r} has a regression loss but its targets are not numbers")
    values = values.astype(np.float32)
    n = len(values)
    if values.size == n * int(np.prod(shape)) and all(isinstance(d, int) for d in shape):
        return values.reshape((n, *shape))
    raise spec_error(
        spec, ("loss",), f"head {head!r} outputs {list(shape)} but its targets are {list(values.shape[1:])} per example"
    )


def _augment(spec, cfg, rot, angle_head, images: bool, image_shape, inputs, mean: float, std: float):
    aug = cfg.get("augment") or {}
    rotate_range = rot.get("range", 0.0) if (rot and not angle_head) else 0.0
    fn = make_image_augment(
        flip_horizontal=aug.get("flip_horizontal", False),
        flip_vertical=aug.get("flip_vertical", False),
        translate_fraction=aug.get("translate", 0.0),
        rotate_range=rotate_range,
        fill=(0.0 - mean) / std,  # the background after normalisation
    )
    if fn is None:
        return None
    if not images:
        raise spec_error(
            spec, ("data", "augment"), "augmentation needs image data (npz images, image_folder or fashion_mnist)"
        )
    image_inputs = {
        i
        for i, s in inputs.items()
        if all(isinstance(d, int) for d in s) and int(np.prod(s)) == int(np.prod(image_shape))
    }

    def augment(x: Arrays, rng: np.random.Generator) -> Arrays:
        """Random flips / shifts / rotations of a training batch; same draws for every image input."""
        seed = int(rng.integers(2**63 - 1))
        if isinstance(x, dict):
            return {k: _augment_one(fn, v, image_shape, seed) if k in image_inputs else v for k, v in x.items()}
        return _augment_one(fn, x, image_shape, seed)

    return augment


def _augment_one(fn, x: np.ndarray, image_shape, seed: int) -> np.ndarray:
    batch = np.asarray(x).reshape((len(x), *image_shape))
    return fn(batch, np.random.default_rng(seed)).reshape(np.shape(x))
