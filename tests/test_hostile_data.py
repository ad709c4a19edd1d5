"""Hostile and broken data files, predict inputs and download mirrors (issue 14, items 8 and 9):
every case is a one-line user error (or a correct result), fast and with bounded memory."""

from __future__ import annotations

import gzip
import http.server
import io
import struct
import threading
import time
import zipfile

import numpy as np
import pytest

import nnspec
from nnspec.data import DataError
from nnspec.data import fashion_mnist as fm
from nnspec.data.download import download
from nnspec.data.idx import read_bytes
from nnspec.data.load import load_data
from nnspec.errors import UserError

X = np.random.default_rng(0).random((20, 4)).astype(np.float32)
Y = np.arange(20) % 3


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def _lying_npy(shape=(10**9, 1000)) -> bytes:
    header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}".encode()
    header += b" " * (118 - len(header)) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\x00" * 64


def _object_npz(path):
    buf = io.BytesIO()
    np.save(buf, np.array([1, "a", None], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", buf.getvalue())
        z.writestr("y.npy", buf.getvalue())
    return path


def _write(path, data: bytes | str):
    (path.write_bytes if isinstance(data, bytes) else path.write_text)(data)
    return path


NPZ = {
    "empty file": (lambda p: _write(p, b""), "not a readable .npz file"),
    "truncated": (lambda p: _write(p, _npz(p, x=X, y=Y).read_bytes()[:300]), "not a readable .npz file"),
    "0-d features": (lambda p: _npz(p, x=np.array(5.0), y=np.array(1)), "a single value"),
    "zero rows": (lambda p: _npz(p, x=np.zeros((0, 4)), y=np.zeros((0,), int)), "no examples"),
    "string features": (lambda p: _npz(p, x=np.array([["a"] * 4] * 20), y=Y), "holds text"),
    "complex features": (lambda p: _npz(p, x=X.astype(np.complex64), y=Y), "holds complex numbers"),
    "object arrays": (_object_npz, "Python objects"),
    "NaN labels": (lambda p: _npz(p, x=X, y=np.where(Y == 1, np.nan, Y)), "NaN"),
    "label -1": (lambda p: _npz(p, x=X, y=Y - 1), "label -1 (example 0) is outside 0..2"),
    "huge float labels": (lambda p: _npz(p, x=X, y=np.full(20, 1e300)), "not class numbers"),
    "lying npy header": (lambda p: _write(p, _zip({"x.npy": _lying_npy(), "y.npy": _lying_npy()})), "claims shape"),
    "npy header claims more than stored": (lambda p: _write(p, _zip({"x.npy": _lying_npy((100, 4)),
                                                                     "y.npy": _lying_npy((100,))})), "truncated"),
    "directory named x.npz": (lambda p: (p.mkdir(), p)[1], "is a directory"),
    "not a zip": (lambda p: _write(p, b"PK\x03\x04garbage" * 10), "not a readable .npz file"),
}

CSV = {
    "empty": ("", "needs a header row"),
    "field over 131,072 characters": ("a,target\n" + "1" * 200_000 + ",1\n2,0\n", "field larger than field limit"),
    "NaN feature": ("a,target\nnan,1\n2,0\n", "'nan' is not a finite number"),
    "1e400 feature": ("a,target\n1e400,1\n2,0\n", "not a finite number"),
    "NaN label": ("a,target\n1,nan\n2,0\n", "not a usable target"),
    "label -1": ("a,target\n1,-1\n2,0\n3,1\n", "label -1 (example 0) is outside"),
    "label 1e20": ("a,target\n1,100000000000000000000\n2,0\n", "not class numbers"),
    "binary": (b"\x00\x01\x02\xff" * 100, "cannot read"),
    "NUL in a field": ("a,target\n1\x00,1\n2,0\n", "is not a number"),
}


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _load(kind: str, path, shape: str = "[4]"):
    text = (f"inputs: {{x: {{shape: {shape}}}}}\nencoder: [flatten, {{dense: 3}}]\n"
            f"loss: sparse_categorical_crossentropy\ndata: {{dataset: {kind}, path: '{path}'}}\n")
    return load_data(nnspec.load(None, text=text), validation_split=0.0)


@pytest.mark.parametrize("case", list(NPZ), ids=list(NPZ))
def test_hostile_npz_is_a_data_error(tmp_path, case):
    make, fragment = NPZ[case]
    path = make(tmp_path / "x.npz")
    start = time.process_time()
    with pytest.raises(DataError) as err:
        _load("npz", path)
    assert fragment in str(err.value).splitlines()[0], str(err.value)
    assert time.process_time() - start < 2.0


@pytest.mark.parametrize("case", list(CSV), ids=list(CSV))
def test_hostile_csv_is_a_data_error(tmp_path, case):
    content, fragment = CSV[case]
    path = _write(tmp_path / "x.csv", content)
    with pytest.raises(DataError) as err:
        _load("csv", path, "[1]")
    assert fragment in str(err.value).splitlines()[0], str(err.value)


def _png(array) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


IMAGES = {
    "corrupt png": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, "cannot read image"),
    "truncated png": (_png(np.random.default_rng(1).integers(0, 255, (32, 32), dtype=np.uint8))[:200],
                      "cannot read image"),
    "decompression bomb": (_png(np.zeros((100, 100), np.uint8)), "too large to decode safely"),
    "directory named x.png": (None, "is a directory"),
}


@pytest.mark.parametrize("case", list(IMAGES), ids=list(IMAGES))
def test_hostile_images_are_data_errors(tmp_path, monkeypatch, case):
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # the bomb guard, scaled down to a 100x100 image
    content, fragment = IMAGES[case]
    root = tmp_path / "images"
    (root / "a").mkdir(parents=True)
    _write(root / "a" / "ok.png", _png(np.zeros((4, 4), np.uint8)))
    (root / "b").mkdir()
    if content is None:
        (root / "b" / "x.png").mkdir()
    else:
        _write(root / "b" / "x.png", content)
    with pytest.raises(DataError) as err:
        _load("image_folder", root, "[4, 4, 1]")
    assert fragment in str(err.value).splitlines()[0], str(err.value)


# --- predict inputs ------------------------------------------------------------------------------


PREDICT = {
    "truncated .npy": (lambda p: _write(p, _npy_bytes(np.zeros((3, 4)))[:150]), "x.npy", "claims shape"),
    "lying .npy header (1 TiB)": (lambda p: _write(p, _lying_npy((2**38, 4))), "x.npy", "claims shape"),
    "object .npy": (lambda p: _write(p, _npy_bytes(np.array([1, None], dtype=object))), "x.npy", "Python objects"),
    "not an .npy": (lambda p: _write(p, b"hello"), "x.npy", "not a readable .npy"),
    "directory named x.npy": (lambda p: (p.mkdir(), p)[1], "x.npy", "is a directory"),
    "NaN inputs": (lambda p: (np.save(p, np.full((2, 4), np.nan)), p)[1], "x.npy", "NaN"),
    "complex inputs": (lambda p: (np.save(p, np.ones((2, 4), np.complex64)), p)[1], "x.npy", "complex"),
    "string inputs": (lambda p: (np.save(p, np.array([["a"] * 4])), p)[1], "x.npy", "holds text"),
    "empty .npz": (lambda p: _write(p, b""), "x.npz", "not a readable .npz"),
    "corrupt png": (lambda p: _write(p, b"\x89PNG\r\n\x1a\n" + b"\x00" * 50), "x.png", "cannot read image"),
}


def _npy_bytes(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


@pytest.mark.parametrize("case", list(PREDICT), ids=list(PREDICT))
def test_hostile_predict_inputs_are_user_errors(tmp_path, case):
    from nnspec.training.predict import read_inputs

    make, name, fragment = PREDICT[case]
    path = make(tmp_path / name)
    spec = nnspec.load(None, text="inputs: {x: {shape: [4]}}\nencoder: [{dense: 3}]\n")
    with pytest.raises(UserError) as err:
        read_inputs([str(path)], spec)
    assert fragment in str(err.value).splitlines()[0], str(err.value)


# --- IDX and downloads -----------------------------------------------------------------------------


def test_gzip_bomb_is_stopped_at_the_expected_size(tmp_path):
    bomb = _write(tmp_path / "train-labels-idx1-ubyte.gz", gzip.compress(b"\x00" * (16 * 2**20)))
    assert bomb.stat().st_size < 100_000
    with pytest.raises(DataError, match="decompresses to more than 60,008 bytes"):
        read_bytes(bomb, limit=fm.RAW_SIZE[fm.TRAIN_LABELS])
    assert "more than" in fm.verify_file(fm.TRAIN_LABELS, bomb)


class Hostile:
    """A loopback mirror that serves ``body`` in a chosen hostile way."""

    def __init__(self, body: bytes, *, length: int | None = None, trickle: float = 0.0):
        hostile = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self.send_response(200)
                if hostile.length is not None:
                    self.send_header("Content-Length", str(hostile.length))
                self.end_headers()
                try:
                    if hostile.trickle:
                        for i in range(0, len(body), 64):
                            self.wfile.write(body[i:i + 64])
                            self.wfile.flush()
                            time.sleep(hostile.trickle)
                    else:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.length, self.trickle = length, trickle
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/f.gz"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("announced", [True, False], ids=["content-length", "no-length"])
def test_an_oversized_download_is_refused_and_deleted(tmp_path, announced):
    body = b"x" * 300_000
    server = Hostile(body, length=len(body) if announced else None)
    try:
        dest = tmp_path / "f.gz"
        with pytest.raises(DataError, match="refused f.gz") as err:
            download([server.url], str(dest), lambda p: None, max_bytes=100_000, retries=1, timeout=5)
        assert "nothing was kept" in str(err.value)
        assert list(tmp_path.iterdir()) == []
    finally:
        server.close()


def test_a_gzip_bomb_download_fails_verification_without_inflating(tmp_path):
    bomb = gzip.compress(b"\x00" * (16 * 2**20))  # 16 KB that inflate to 16 MB
    server = Hostile(bomb, length=len(bomb))
    try:
        dest = tmp_path / "f.gz"
        with pytest.raises(DataError, match="failed verification"):
            download([server.url], str(dest), lambda p: fm.verify_file(fm.TRAIN_LABELS, p),
                     max_bytes=fm.RAW_SIZE[fm.TRAIN_LABELS], retries=1, timeout=5)
        assert list(tmp_path.iterdir()) == []
    finally:
        server.close()


def test_a_trickling_mirror_hits_the_overall_deadline(tmp_path):
    server = Hostile(b"y" * 64 * 1000, length=64 * 1000, trickle=0.2)
    try:
        dest = tmp_path / "f.gz"
        start = time.monotonic()
        with pytest.raises(DataError, match="within 2 s") as err:
            download([server.url], str(dest), lambda p: None, retries=3, timeout=1, deadline=2)
        assert time.monotonic() - start < 6
        assert "resumed next time" in err.value.hint
        assert (tmp_path / "f.gz.part").stat().st_size > 0  # what arrived is kept for the next attempt
    finally:
        server.close()


def test_https_mirrors_come_first(monkeypatch):
    monkeypatch.setenv(fm.URL_ENV, "http://a.example/x https://b.example/y")
    assert fm.base_urls() == ["https://b.example/y/", "http://a.example/x/"]
