"""Fashion-MNIST: find the four IDX files, download them when absent, check and load them.

Lookup order, per file (``name`` or ``name.gz``):
  1. a directory given by the caller (``data.path`` in the spec),
  2. ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``),
  3. ``~/.keras/datasets/fashion-mnist``,
  4. nnspec's cache: ``$NNSPEC_CACHE/datasets/fashion-mnist`` (default ``~/.cache/nnspec``),
  5. otherwise the file is downloaded into the cache from ``$NNSPEC_FASHION_MNIST_URL`` or the
     official mirrors, and kept only if it matches the published checksum.

Checksums: the Fashion-MNIST README publishes the MD5 of each ``.gz``; re-compressed copies
(Debian's package re-packs them) differ there but not in content, so a file is accepted when
either its ``.gz`` MD5 or the MD5 of its decompressed content is the published one.
"""

from __future__ import annotations

import functools
import os
import pathlib

import numpy as np

from nnspec.data.download import download, print_progress
from nnspec.data.errors import DataError
from nnspec.data.idx import GZIP_MAGIC, decode_idx, md5_hex, read_bytes

CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
IMAGE_SHAPE = (28, 28, 1)

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
# name -> (dimensions, items)
LAYOUT = {TRAIN_IMAGES: (3, 60000), TRAIN_LABELS: (1, 60000), TEST_IMAGES: (3, 10000), TEST_LABELS: (1, 10000)}
# exact size of each file's content (IDX header + data); no download or decompression may exceed it
RAW_SIZE = {name: 4 + 4 * ndim + count * (28 * 28 if ndim == 3 else 1) for name, (ndim, count) in LAYOUT.items()}

# MD5 of the published .gz files (zalandoresearch/fashion-mnist README)
GZ_MD5 = {
    TRAIN_IMAGES: "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    TRAIN_LABELS: "25c81989df183df01b3e8a0aad5dffbe",
    TEST_IMAGES: "bef4ecab320f06d8554ea6380940ec79",
    TEST_LABELS: "bb300cfdad3c16e7a12a480ee83cd310",
}
# MD5 of their decompressed content (as torchvision and others list them)
RAW_MD5 = {
    TRAIN_IMAGES: "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    TRAIN_LABELS: "9018921c3c673c538a1fc5bad174d6f9",
    TEST_IMAGES: "8181f5470baa50b63fa0f6fddb340f0a",
    TEST_LABELS: "15d484375f8d13e6eb1aabb0c3f46965",
}

MIRRORS = (
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
)
URL_ENV = "NNSPEC_FASHION_MNIST_URL"
CACHE_ENV = "NNSPEC_CACHE"
OFFLINE_ENV = "NNSPEC_OFFLINE"
SYSTEM_DIRS = (pathlib.Path("/usr/share/datasets/fashion-mnist"),)


def cache_root() -> pathlib.Path:
    """nnspec's cache: ``$NNSPEC_CACHE`` or ``~/.cache/nnspec``."""
    env = os.environ.get(CACHE_ENV)
    return pathlib.Path(env).expanduser() if env else pathlib.Path.home() / ".cache" / "nnspec"


def cache_dir() -> pathlib.Path:
    return cache_root() / "datasets" / "fashion-mnist"


def search_dirs(extra: str | os.PathLike | None = None) -> list[pathlib.Path]:
    """Where the files are looked for, in order (the cache last)."""
    dirs = [pathlib.Path(extra).expanduser()] if extra else []
    dirs += list(SYSTEM_DIRS)
    dirs.append(pathlib.Path.home() / ".keras" / "datasets" / "fashion-mnist")
    dirs.append(cache_dir())
    return dirs


def base_urls(base_url: str | None = None) -> list[str]:
    """Mirrors to try: the argument, else ``$NNSPEC_FASHION_MNIST_URL`` (space-separated), else the official ones."""
    text = base_url or os.environ.get(URL_ENV, "")
    urls = text.replace(",", " ").split() or list(MIRRORS)
    urls = sorted(urls, key=lambda u: not u.lower().startswith("https:"))  # https first, order kept otherwise
    return [u if u.endswith("/") else u + "/" for u in urls]


def find_file(name: str, dirs: list[pathlib.Path]) -> pathlib.Path | None:
    for d in dirs:
        for candidate in (d / f"{name}.gz", d / name):
            if candidate.is_file():
                return candidate
    return None


def check_content(name: str, content: bytes) -> str | None:
    """None when ``content`` (decompressed) is the published file, else why not."""
    got = md5_hex(content)
    if got != RAW_MD5[name]:
        return f"content MD5 {got}, published {RAW_MD5[name]}"
    return None


def verify_file(name: str, path: str | os.PathLike) -> str | None:
    """None when the file at ``path`` is the published ``name`` (gz or content MD5), else why not."""
    path = os.fspath(path)
    size = os.path.getsize(path)
    if size > RAW_SIZE[name]:
        return f"{size:,} bytes, more than the {RAW_SIZE[name]:,} the file has uncompressed"
    with open(path, "rb") as fh:
        raw = fh.read()
    if raw[:2] == GZIP_MAGIC and md5_hex(raw) == GZ_MD5[name]:
        return None
    try:
        content = read_bytes(path, limit=RAW_SIZE[name])
    except DataError as exc:
        return exc.message
    return check_content(name, content)


def verify_dir(directory: str | os.PathLike) -> dict[str, str | None]:
    """Check the four files in ``directory``: {file name: None if genuine, else the reason}."""
    d = pathlib.Path(directory)
    out = {}
    for name in FILES:
        path = find_file(name, [d])
        out[name] = "missing" if path is None else verify_file(name, path)
    return out


def locate(
    path: str | os.PathLike | None = None,
    *,
    dirs: list[pathlib.Path] | None = None,
    cache: str | os.PathLike | None = None,
    base_url: str | None = None,
    allow_download: bool | None = None,
) -> dict[str, pathlib.Path]:
    """Paths of the four files, downloading missing ones into the cache. {name: path}.

    ``dirs`` replaces the standard search list (tests use it to keep away from the system);
    ``cache`` replaces the cache directory. Downloads are off when ``$NNSPEC_OFFLINE`` is set.
    """
    cache_path = pathlib.Path(cache) if cache is not None else cache_dir()
    if dirs is None:
        dirs = search_dirs(path)
    if cache_path not in dirs:
        dirs = [*dirs, cache_path]
    if allow_download is None:
        allow_download = not os.environ.get(OFFLINE_ENV)
    found: dict[str, pathlib.Path] = {}
    for name in FILES:
        hit = find_file(name, dirs)
        if hit is None:
            if not allow_download:
                raise DataError(
                    f"Fashion-MNIST file {name}.gz not found in {', '.join(str(d) for d in dirs)} and downloads are off",
                    file=str(cache_path),
                    hint=f"apt-get install dataset-fashion-mnist, or unset {OFFLINE_ENV} to download it",
                )
            dest = cache_path / f"{name}.gz"
            urls = [u + f"{name}.gz" for u in base_urls(base_url)]
            download(urls, str(dest), functools.partial(verify_file, name), progress=print_progress(f"{name}.gz"),
                     max_bytes=RAW_SIZE[name])
            hit = dest
        found[name] = hit
    return found


_MEMO: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}


def load(
    path: str | os.PathLike | None = None,
    *,
    dirs: list[pathlib.Path] | None = None,
    cache: str | os.PathLike | None = None,
    base_url: str | None = None,
    allow_download: bool | None = None,
    verify: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test): uint8 images (N, 28, 28) and uint8 labels (N,), read-only.

    Each file's header, counts and (``verify``) content checksum are checked; image and label
    counts must agree. Results are kept in memory, keyed by path, size and mtime.
    """
    files = locate(path, dirs=dirs, cache=cache, base_url=base_url, allow_download=allow_download)
    key = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files.values()) + (verify,)
    if key in _MEMO:
        return _MEMO[key]
    arrays = {}
    for name, p in files.items():
        content = read_bytes(p, limit=RAW_SIZE[name])
        if verify:
            problem = check_content(name, content)
            if problem:
                raise DataError(
                    f"{p.name} is not the published Fashion-MNIST {name} ({problem})",
                    file=str(p),
                    hint="delete it (it will be downloaded again) or reinstall the data set",
                )
        ndim, count = LAYOUT[name]
        arrays[name] = decode_idx(content, str(p), ndim=ndim, count=count)
    for images, labels in ((TRAIN_IMAGES, TRAIN_LABELS), (TEST_IMAGES, TEST_LABELS)):
        x, y = arrays[images], arrays[labels]
        if len(x) != len(y):
            raise DataError(
                f"{files[images].name} has {len(x):,} images but {files[labels].name} has {len(y):,} labels",
                file=str(files[labels]),
                hint="the two files come from different data sets; reinstall them",
            )
        if x.shape[1:] != IMAGE_SHAPE[:2]:
            raise DataError(f"{files[images].name} holds {x.shape[1:]} images, not 28x28", file=str(files[images]))
        if y.size and int(y.max()) >= len(CLASS_NAMES):
            raise DataError(
                f"{files[labels].name} has label {int(y.max())}; Fashion-MNIST has 10 classes (0-9)",
                file=str(files[labels]),
            )
    result = (arrays[TRAIN_IMAGES], arrays[TRAIN_LABELS], arrays[TEST_IMAGES], arrays[TEST_LABELS])
    _MEMO.clear()  # keep one data set in memory, not one per location
    _MEMO[key] = result
    return result
