"""IDX files (the MNIST / Fashion-MNIST format), gzip-compressed or plain.

Layout: two zero bytes, a type code, the number of dimensions, then one big-endian uint32
per dimension, then the values in C order. Everything that can be checked is checked, so a
truncated download or a wrong file is a one-line :class:`DataError`, not a reshape traceback.
"""

from __future__ import annotations

import hashlib
import os
import zlib

import numpy as np

from nnspec.data.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"
# IDX type code -> numpy dtype (multi-byte types are big-endian)
IDX_TYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
MAX_DIMS = 8
MAX_BYTES = 2 * 1024**3  # content read by default; callers that know the expected size pass it
_CHUNK = 1 << 20
_DAMAGED = "delete it and load again to re-download, or reinstall the data set"


def read_bytes(path: str | os.PathLike, limit: int | None = None) -> bytes:
    """The file's content, decompressed when it is gzip (detected by its magic, not its name).

    At most ``limit`` bytes of content (default MAX_BYTES) are produced: decompression stops there,
    so a small gzip bomb costs ``limit`` bytes of memory, not gigabytes.
    """
    path = os.fspath(path)
    limit = MAX_BYTES if limit is None else limit
    name = os.path.basename(path)
    try:
        size = os.path.getsize(path)
        if size > limit:
            raise DataError(f"{name} is {size:,} bytes; at most {limit:,} were expected", file=path, hint=_DAMAGED)
        with open(path, "rb") as fh:
            raw = fh.read(limit + 1)
    except DataError:
        raise
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}", file=path) from None
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return _gunzip(raw, limit, name, path)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{name} is a damaged gzip file ({exc})", file=path, hint=_DAMAGED) from None


def _gunzip(raw: bytes, limit: int, name: str, path: str) -> bytes:
    """Decompress gzip ``raw`` (one or more members), refusing more than ``limit`` bytes of output."""
    out = bytearray()
    pos = 0
    while pos < len(raw):
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        while not d.eof:
            if d.unconsumed_tail:
                chunk = d.unconsumed_tail
            elif pos < len(raw):
                chunk = raw[pos : pos + _CHUNK]
                pos += len(chunk)
            else:
                raise EOFError("the compressed data ends early (truncated)")
            out += d.decompress(chunk, limit + 1 - len(out))
            if len(out) > limit:
                raise DataError(f"{name} decompresses to more than {limit:,} bytes, more than this file can hold "
                                "(a damaged or hostile file)", file=path, hint=_DAMAGED)
        pos -= len(d.unused_data)  # the next member (or trailing bytes) starts here
        if raw[pos : pos + 2] != GZIP_MAGIC:
            break  # trailing padding after the last member is ignored, as gzip tools do
    return bytes(out)


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def decode_idx(
    data: bytes, source: str = "<bytes>", *, ndim: int | None = None, count: int | None = None
) -> np.ndarray:
    """Parse IDX bytes into a read-only array; ``ndim``/``count`` are checked when given."""
    name = os.path.basename(source)
    fix = "the file is not an IDX file or is damaged; delete it and load again, or reinstall the data set"
    if len(data) < 4:
        raise DataError(f"{name} is too short for an IDX header ({len(data)} bytes)", file=source, hint=fix)
    magic = int.from_bytes(data[:4], "big")
    type_code, dims = data[2], data[3]
    if data[0] != 0 or data[1] != 0 or type_code not in IDX_TYPES or not 1 <= dims <= MAX_DIMS:
        raise DataError(f"{name} has a bad IDX magic number 0x{magic:08X}", file=source, hint=fix)
    if ndim is not None and dims != ndim:
        raise DataError(
            f"{name} has {dims} dimension(s) but {ndim} were expected (magic 0x{magic:08X})",
            file=source,
            hint="check that image and label files are not swapped",
        )
    header = 4 + 4 * dims
    if len(data) < header:
        raise DataError(f"{name} ends inside its IDX header", file=source, hint=fix)
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    if count is not None and shape[0] != count:
        raise DataError(f"{name} holds {shape[0]:,} items but {count:,} were expected", file=source, hint=fix)
    dtype = np.dtype(IDX_TYPES[type_code])  # type: ignore[call-overload]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    body = len(data) - header
    if body != expected:
        what = "is truncated" if body < expected else "has trailing bytes"
        raise DataError(
            f"{name} {what}: {body:,} data bytes for shape {shape}, expected {expected:,}", file=source, hint=fix
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    if dtype.byteorder == ">":
        arr = arr.astype(dtype.newbyteorder("="))
    arr.flags.writeable = False
    return arr


def read_idx(path: str | os.PathLike, *, ndim: int | None = None, count: int | None = None) -> np.ndarray:
    """Read an IDX file (gzip or plain) into a read-only numpy array, checking its header."""
    path = os.fspath(path)
    return decode_idx(read_bytes(path), path, ndim=ndim, count=count)
