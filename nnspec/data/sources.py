"""User data: ``.npz`` arrays, ``.csv`` tables and image folders, read into a :class:`RawData`.

Readers only read and check; splitting, scaling and shaping happen in :mod:`nnspec.data.load`.
"""

from __future__ import annotations

import csv
import os
import pathlib
from dataclasses import dataclass

import numpy as np

from nnspec.data.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
Arrays = np.ndarray | dict


@dataclass
class RawData:
    """Features and targets as read, before splitting and transforms.

    ``x``: one array, or {input name: array}; images are (N, H, W, C). ``y``: one array, or
    {head name: array}, or None. ``class_names``: names for integer labels, when the data has them.
    """

    x: Arrays
    y: Arrays | None
    x_test: Arrays | None = None
    y_test: Arrays | None = None
    class_names: tuple[str, ...] | None = None
    images: bool = False  # x holds (N, H, W, C) images
    source: str = ""


def _length(arrays: Arrays) -> int:
    if isinstance(arrays, dict):
        return len(next(iter(arrays.values())))
    return len(arrays)


def check_lengths(x: Arrays, y: Arrays | None, where: str) -> None:
    """Every array in x and y must have the same number of examples."""
    sizes = {}
    for label, arrays in (("features", x), ("targets", y)):
        if arrays is None:
            continue
        items = arrays.items() if isinstance(arrays, dict) else [(label, arrays)]
        for name, a in items:
            sizes[name] = len(a)
    if len(set(sizes.values())) > 1:
        listing = ", ".join(f"{k}: {v:,}" for k, v in sizes.items())
        raise DataError(f"{os.path.basename(where)}: arrays disagree on the number of examples ({listing})", file=where)


# ---------------------------------------------------------------- labels


def encode_labels(values: np.ndarray, where: str, class_names: tuple[str, ...] | None = None):
    """Strings -> (int64 labels, class names sorted); numbers are returned as they are.

    With ``class_names`` given (from the training set), test labels are mapped with them.
    """
    values = np.asarray(values)
    if values.dtype.kind in "USO":
        strings = values.astype(str)
        names = class_names or tuple(sorted(set(strings.tolist())))
        index = {n: i for i, n in enumerate(names)}
        unknown = sorted(set(strings.tolist()) - set(index))
        if unknown:
            raise DataError(
                f"{os.path.basename(where)} has class {unknown[0]!r}, which the training data does not have",
                file=where,
                hint=f"known classes: {', '.join(names)}",
            )
        return np.array([index[s] for s in strings.tolist()], dtype=np.int64), names
    return values, class_names


# ---------------------------------------------------------------- npz


MAX_ARRAY_BYTES = 8 * 1024**3  # one array held in memory; Fashion-MNIST's largest is 47 MB


def check_npy_members(path: str) -> None:
    """Refuse an .npz whose arrays claim more data than the archive holds (a lying or truncated
    ``.npy`` header would make numpy allocate it all first), or more than MAX_ARRAY_BYTES."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with z.open(info) as fh:
                shape, dtype = _npy_header(fh, f"{os.path.basename(path)}:{info.filename}")
            _check_claim(shape, dtype, info.file_size, f"{os.path.basename(path)} array {info.filename[:-4]!r}", path)


def _npy_header(fh, where: str) -> tuple[tuple, np.dtype]:
    from numpy.lib import format as npformat

    version = npformat.read_magic(fh)
    if version == (1, 0):
        shape, _, dtype = npformat.read_array_header_1_0(fh)
    else:
        shape, _, dtype = npformat.read_array_header_2_0(fh)
    return shape, dtype


def _check_claim(shape: tuple, dtype: np.dtype, stored: int, what: str, path: str) -> None:
    if dtype.hasobject:
        raise DataError(f"{what} holds Python objects, which nnspec does not load", file=path,
                        hint="save numeric (or string label) arrays")
    claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if claimed > MAX_ARRAY_BYTES:
        raise DataError(f"{what} claims shape {shape} ({claimed:,} bytes), more than the {MAX_ARRAY_BYTES:,} "
                        "nnspec loads", file=path, hint="the file is damaged, or split the data")
    if claimed > stored:
        raise DataError(f"{what} claims shape {shape} ({claimed:,} bytes) but the file holds {stored:,}: "
                        "it is truncated or damaged", file=path, hint="write it again with numpy.savez")


def load_npy(path: str) -> np.ndarray:
    """One ``.npy`` array, its header checked against the file's size before anything is allocated."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            shape, dtype = _npy_header(fh, path)
            _check_claim(shape, dtype, size - fh.tell(), os.path.basename(path), path)
        return np.load(path, allow_pickle=False)
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path} does not exist", file=path) from None
    except IsADirectoryError:
        raise DataError(f"{path} is a directory, not an .npy file", file=path) from None
    except MemoryError:
        raise DataError(f"{path} is too large to load", file=path) from None
    except Exception as exc:  # numpy's reader raises ValueError, EOFError, OSError, SyntaxError ...
        raise DataError(f"{path} is not a readable .npy file ({type(exc).__name__}: {_short(exc)})", file=path,
                        hint="write it with numpy.save") from None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else "no details"


def _npz_arrays(path: str) -> dict[str, np.ndarray]:
    try:
        if os.path.isdir(path):
            raise DataError(f"{path} is a directory, not an .npz file", file=path, hint="fix data.path in the spec")
        check_npy_members(path)
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"data file {path} does not exist", file=path, hint="fix data.path in the spec") from None
    except MemoryError:
        raise DataError(f"{path} is too large to load", file=path) from None
    except Exception as exc:  # zipfile and numpy raise BadZipFile, EOFError, ValueError, OSError ...
        raise DataError(
            f"{path} is not a readable .npz file ({type(exc).__name__}: {_short(exc)})", file=path,
            hint="write it with numpy.savez",
        ) from None


def check_features(a: np.ndarray, where: str, name: str) -> np.ndarray:
    """Feature arrays: at least one axis, one example or more, real numbers."""
    if a.ndim == 0:
        raise DataError(f"{os.path.basename(where)}: {name} is a single value, not an array of examples", file=where)
    if len(a) == 0:
        raise DataError(f"{os.path.basename(where)}: {name} has no examples (0 rows)", file=where)
    if a.dtype.kind not in "biuf":
        kind = {"c": "complex numbers", "U": "text", "S": "bytes", "O": "Python objects", "M": "dates",
                "m": "time spans", "V": "raw records"}.get(a.dtype.kind, str(a.dtype))
        raise DataError(f"{os.path.basename(where)}: {name} holds {kind} ({a.dtype}); features must be real numbers",
                        file=where, hint="convert the features to numbers before saving")
    return a


def check_targets(a: np.ndarray, where: str, name: str) -> np.ndarray:
    """Target arrays: one per example; numbers must be finite (string labels are fine)."""
    if a.ndim == 0:
        raise DataError(f"{os.path.basename(where)}: {name} is a single value, not one target per example",
                        file=where)
    if a.dtype.kind in "cOMmV":
        raise DataError(f"{os.path.basename(where)}: {name} holds {a.dtype} values; targets must be numbers or "
                        "class names", file=where)
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        row = int(np.argwhere(~np.isfinite(a.reshape(len(a), -1)).any(axis=1))[0][0]) if len(a) else 0
        raise DataError(f"{os.path.basename(where)}: {name} has a missing (NaN) or infinite value at row {row}",
                        file=where, hint="drop or fill those examples")
    return a


def _checked(x, y, where: str):
    x = {k: check_features(v, where, f"feature array {k!r}") for k, v in x.items()} if isinstance(x, dict) \
        else check_features(x, where, "the feature array")
    if isinstance(y, dict):
        y = {k: check_targets(v, where, f"target array {k!r}") for k, v in y.items()}
    elif y is not None:
        y = check_targets(y, where, "the target array")
    return x, y


def _pick(arrays: dict, name: str, path: str, role: str) -> np.ndarray:
    if name not in arrays:
        raise DataError(
            f"{os.path.basename(path)} has no array {name!r} ({role})",
            file=path,
            hint=f"it has: {', '.join(sorted(arrays)) or 'nothing'}; set data.{'features' if role == 'features' else 'target'}",
        )
    return arrays[name]


def _select(arrays: dict, spec_value, default: str, path: str, role: str, suffix: str = ""):
    if isinstance(spec_value, dict):
        return {k: _pick(arrays, v + suffix, path, role) for k, v in spec_value.items()}
    return _pick(arrays, (spec_value or default) + suffix, path, role)


def _has_all(arrays: dict, spec_value, default: str, suffix: str) -> bool:
    names = spec_value.values() if isinstance(spec_value, dict) else [spec_value or default]
    return all(n + suffix in arrays for n in names)


def read_npz(path: str, test_path: str | None = None, *, features=None, target=None) -> RawData:
    """Arrays ``x``/``y`` (or the names in ``features``/``target``, which may map input/head
    names to arrays). A test set comes from ``test_path`` or from ``x_test``/``y_test`` arrays."""
    arrays = _npz_arrays(path)
    x = _select(arrays, features, "x", path, "features")
    y = _select(arrays, target, "y", path, "target")
    x, y = _checked(x, y, path)
    check_lengths(x, y, path)
    x_test = y_test = None
    if test_path:
        test = _npz_arrays(test_path)
        x_test = _select(test, features, "x", test_path, "features")
        y_test = _select(test, target, "y", test_path, "target")
        x_test, y_test = _checked(x_test, y_test, test_path)
        check_lengths(x_test, y_test, test_path)
    elif _has_all(arrays, features, "x", "_test") and _has_all(arrays, target, "y", "_test"):
        x_test = _select(arrays, features, "x", path, "features", "_test")
        y_test = _select(arrays, target, "y", path, "target", "_test")
        x_test, y_test = _checked(x_test, y_test, path)
        check_lengths(x_test, y_test, path)
    class_names = None
    if not isinstance(y, dict):
        y, class_names = encode_labels(y, path)
        if y_test is not None:
            y_test, _ = encode_labels(y_test, test_path or path, class_names)
    first = next(iter(x.values())) if isinstance(x, dict) else x
    images = not isinstance(x, dict) and first.ndim in (3, 4)
    if images and first.ndim == 3:
        x = x[..., None]
        x_test = x_test[..., None] if x_test is not None else None
    return RawData(x, y, x_test, y_test, class_names, images, source=path)


# ---------------------------------------------------------------- csv


def _read_table(path: str) -> tuple[list[str], list[list[str]]]:
    reader = None
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            rows = list(reader)
    except FileNotFoundError:
        raise DataError(f"data file {path} does not exist", file=path, hint="fix data.path in the spec") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a directory, not a CSV file", file=path, hint="fix data.path in the spec") from None
    except csv.Error as exc:
        line = reader.line_num if reader is not None else 0
        raise DataError(f"{os.path.basename(path)} line {line}: {exc}", file=path,
                        hint="fields longer than 131,072 characters or stray NUL bytes mean this is not a "
                        "feature table") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path} as UTF-8 CSV ({exc})", file=path) from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if len(rows) < 2:
        raise DataError(f"{os.path.basename(path)} needs a header row and at least one data row", file=path)
    header = [h.strip() for h in rows[0]]
    for i, r in enumerate(rows[1:], start=2):
        if len(r) != len(header):
            raise DataError(
                f"{os.path.basename(path)} row {i} has {len(r)} cells but the header has {len(header)}", file=path
            )
    return header, rows[1:]


def _column(rows, j: int) -> list[str]:
    return [r[j].strip() for r in rows]


def _numbers(cells: list[str], path: str, column: str) -> np.ndarray:
    try:
        return np.array([float(c) for c in cells], dtype=np.float64)
    except ValueError:
        bad = next((i, c) for i, c in enumerate(cells) if not _is_number(c))
        raise DataError(
            f"{os.path.basename(path)} row {bad[0] + 2}, column {column!r}: {bad[1]!r} is not a number",
            file=path,
            hint="feature columns must be numeric; name the label column with data.target",
        ) from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _csv_target(cells: list[str], path: str, column: str) -> np.ndarray:
    if all(_is_number(c) for c in cells):
        values = np.array([float(c) for c in cells])
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            raise DataError(f"{os.path.basename(path)} row {bad[0] + 2}: the {column!r} cell is "
                            f"{cells[bad[0]]!r}, not a usable target", file=path, hint="drop or fill those rows")
        if np.all(values == np.round(values)) and np.all(np.abs(values) < 2**53):
            return values.astype(np.int64)
        return values
    if any(c == "" for c in cells):
        row = cells.index("") + 2
        raise DataError(f"{os.path.basename(path)} row {row}: the {column!r} cell is empty", file=path)
    return np.array(cells, dtype=str)


def _csv_xy(path: str, features, target, class_names=None):
    header, rows = _read_table(path)
    targets = target if isinstance(target, dict) else {None: target or "target"}
    for col in targets.values():
        if col not in header:
            raise DataError(
                f"{os.path.basename(path)} has no column {col!r}",
                file=path,
                hint=f"columns: {', '.join(header)}; set data.target to the label column",
            )
    if features:
        missing = [c for c in features if c not in header]
        if missing:
            raise DataError(
                f"{os.path.basename(path)} has no column {missing[0]!r}",
                file=path,
                hint=f"columns: {', '.join(header)}",
            )
        feature_cols = list(features)
    else:
        feature_cols = [h for h in header if h not in targets.values()]
    if not feature_cols:
        raise DataError(f"{os.path.basename(path)} has no feature columns besides the target", file=path)
    x = np.stack([_numbers(_column(rows, header.index(c)), path, c) for c in feature_cols], axis=1)
    if not np.all(np.isfinite(x)):
        row, col = (int(v) for v in np.argwhere(~np.isfinite(x))[0])
        raise DataError(f"{os.path.basename(path)} row {row + 2}, column {feature_cols[col]!r}: "
                        f"{rows[row][header.index(feature_cols[col])].strip()!r} is not a finite number", file=path,
                        hint="drop or fill rows with missing values")
    x = x.astype(np.float32)
    ys = {k: _csv_target(_column(rows, header.index(c)), path, c) for k, c in targets.items()}
    if None in ys:
        y, names = encode_labels(ys[None], path, class_names)
        return x, y, names
    return x, ys, None


def read_csv(path: str, test_path: str | None = None, *, features=None, target=None) -> RawData:
    """Numeric feature columns (all but the target, or those listed in ``features``) and a
    ``target`` column (default ``target``); string labels become integers, names kept."""
    if isinstance(features, (str, dict)):
        raise DataError("data.features must be a list of column names for csv data", file=path)
    x, y, names = _csv_xy(path, features, target)
    x_test = y_test = None
    if test_path:
        x_test, y_test, _ = _csv_xy(test_path, features, target, names)
        if x_test.shape[1] != x.shape[1]:
            raise DataError(
                f"{test_path} has {x_test.shape[1]} feature columns, the training file {x.shape[1]}", file=test_path
            )
    return RawData(x, y, x_test, y_test, names, images=False, source=path)


# ---------------------------------------------------------------- image folders


def _pillow():
    try:
        from PIL import Image
    except ImportError:
        raise DataError("image folders need Pillow", hint="pip install pillow") from None
    return Image


def _class_dirs(root: pathlib.Path) -> list[pathlib.Path]:
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist", file=str(root), hint="fix data.path in the spec")
    dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not dirs:
        raise DataError(
            f"{root} has no class subfolders", file=str(root), hint="put each class's images in its own subfolder"
        )
    return dirs


def _read_images(root: pathlib.Path, class_names: tuple[str, ...], size: tuple[int, int], channels: int):
    Image = _pillow()
    mode = {1: "L", 3: "RGB", 4: "RGBA"}.get(channels)
    if mode is None:
        raise DataError(f"image inputs need 1, 3 or 4 channels, the spec's input has {channels}", file=str(root))
    images, labels = [], []
    for label, name in enumerate(class_names):
        folder = root / name
        if not folder.is_dir():
            continue
        for f in sorted(folder.iterdir()):
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            a = read_image(f, mode, size, Image)
            images.append(a.reshape(size[0], size[1], channels))
            labels.append(label)
    if not images:
        raise DataError(f"{root} holds no images ({', '.join(IMAGE_SUFFIXES)})", file=str(root))
    return np.stack(images), np.array(labels, dtype=np.int64)


def read_image(f: pathlib.Path, mode: str, size: tuple[int, int], Image=None) -> np.ndarray:
    """One image file converted to ``mode`` and resized to ``size`` (H, W), as uint8.

    Pillow's decompression-bomb guard is an error here (not a warning), and whatever a damaged
    file makes a decoder raise becomes one DataError naming the file.
    """
    import warnings

    Image = Image or _pillow()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(f) as im:
                im = im.convert(mode)
                if im.size != (size[1], size[0]):
                    im = im.resize((size[1], size[0]), Image.BILINEAR)
                return np.asarray(im, dtype=np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(f"image {f} is too large to decode safely ({_short(exc)})", file=str(f),
                        hint="resize it, or remove it") from None
    except IsADirectoryError:
        raise DataError(f"{f} is a directory, not an image", file=str(f), hint="rename or remove it") from None
    except MemoryError:
        raise DataError(f"image {f} is too large to load", file=str(f)) from None
    except Exception as exc:  # image plugins raise OSError, ValueError, SyntaxError, struct.error, EOFError ...
        raise DataError(f"cannot read image {f} ({type(exc).__name__}: {_short(exc)})", file=str(f),
                        hint="remove or replace the file") from None


def read_image_folder(path: str, test_path: str | None, *, size: tuple[int, int], channels: int) -> RawData:
    """One subfolder per class (sorted names are the classes); images resized to ``size`` (H, W)."""
    root = pathlib.Path(path)
    names = tuple(d.name for d in _class_dirs(root))
    x, y = _read_images(root, names, size, channels)
    x_test = y_test = None
    if test_path:
        troot = pathlib.Path(test_path)
        extra = sorted({d.name for d in _class_dirs(troot)} - set(names))
        if extra:
            raise DataError(
                f"test folder {troot} has class {extra[0]!r}, which {root} does not have",
                file=str(troot),
                hint=f"classes: {', '.join(names)}",
            )
        x_test, y_test = _read_images(troot, names, size, channels)
    return RawData(x, y, x_test, y_test, names, images=True, source=path)
