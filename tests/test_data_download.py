"""Downloading Fashion-MNIST from a loopback HTTP server: good, corrupted, interrupted, resumed."""

from __future__ import annotations

import http.server
import threading

import numpy as np
import pytest

from nnspec.data import DataError
from nnspec.data import fashion_mnist as fm
from nnspec.data.download import download


class Mirror:
    """A loopback server for a set of files, recording Range headers; it can corrupt a file
    or drop the connection half-way through the first request for a file."""

    def __init__(self, files: dict[str, bytes]):
        self.files = dict(files)
        self.ranges: list[tuple[str, str | None]] = []
        self.drop_first: set[str] = set()
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                rng = self.headers.get("Range")
                mirror.ranges.append((name, rng))
                if name not in mirror.files:
                    self.send_error(404)
                    return
                body = mirror.files[name]
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                if start >= len(body) and rng:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.end_headers()
                    return
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if name in mirror.drop_first:
                    mirror.drop_first.discard(name)
                    self.wfile.write(body[start : start + (len(body) - start) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/fashion/"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def real_files(fashion_mnist_dir):
    return {f"{name}.gz": (fashion_mnist_dir / f"{name}.gz").read_bytes() for name in fm.FILES}


@pytest.fixture
def mirror(real_files):
    m = Mirror(real_files)
    yield m
    m.close()


def test_missing_files_are_downloaded_verified_and_loaded_from_the_cache(mirror, tmp_path):
    cache = tmp_path / "cache"
    x, y, xt, yt = fm.load(dirs=[], cache=cache, base_url=mirror.url, allow_download=True)
    assert x.shape == (60000, 28, 28) and yt.shape == (10000,)
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{n}.gz" for n in fm.FILES)
    assert fm.verify_dir(cache) == {n: None for n in fm.FILES}
    served = len(mirror.ranges)
    fm.locate(dirs=[], cache=cache, base_url=mirror.url)  # second time: found in the cache
    assert len(mirror.ranges) == served


def test_a_corrupted_download_is_an_error_and_leaves_nothing_in_the_cache(mirror, tmp_path):
    name = f"{fm.TRAIN_LABELS}.gz"
    damaged = bytearray(mirror.files[name])
    damaged[len(damaged) // 2] ^= 0x55
    mirror.files[name] = bytes(damaged)
    cache = tmp_path / "cache"
    dest = cache / name
    with pytest.raises(DataError, match=f"downloaded {name} failed verification") as err:
        download([mirror.url + name], str(dest), lambda p: fm.verify_file(fm.TRAIN_LABELS, p))
    assert "nothing was kept" in str(err.value).splitlines()[0]
    assert list(cache.iterdir()) == []


def test_a_partial_file_is_resumed_with_a_range_request(mirror, tmp_path):
    name = f"{fm.TEST_LABELS}.gz"
    body = mirror.files[name]
    dest = tmp_path / name
    (tmp_path / f"{name}.part").write_bytes(body[:2000])
    download([mirror.url + name], str(dest), lambda p: fm.verify_file(fm.TEST_LABELS, p))
    assert dest.read_bytes() == body
    assert mirror.ranges == [(name, "bytes=2000-")]
    assert not (tmp_path / f"{name}.part").exists()


def test_an_interrupted_transfer_is_resumed_where_it_stopped(mirror, tmp_path):
    name = f"{fm.TEST_IMAGES}.gz"
    body = mirror.files[name]
    mirror.drop_first.add(name)
    dest = tmp_path / name
    download([mirror.url + name], str(dest), lambda p: fm.verify_file(fm.TEST_IMAGES, p))
    assert dest.read_bytes() == body
    (first, r1), (second, r2) = mirror.ranges
    assert r1 is None and r2 == f"bytes={len(body) // 2}-"


def test_a_missing_mirror_file_falls_back_to_the_next_mirror(mirror, tmp_path):
    name = f"{fm.TEST_LABELS}.gz"
    dest = tmp_path / name
    download([mirror.url + "nothing-here/" + "x.gz", mirror.url + name], str(dest), lambda p: None)
    assert dest.read_bytes() == mirror.files[name]


def test_an_unreachable_server_keeps_the_partial_file_and_says_so(tmp_path):
    m = Mirror({})
    url = m.url
    m.close()  # nothing listens there any more
    dest = tmp_path / "f.gz"
    (tmp_path / "f.gz.part").write_bytes(b"abc")
    with pytest.raises(DataError, match="could not download f.gz") as err:
        download([url + "f.gz"], str(dest), lambda p: None, retries=1, timeout=2)
    assert "resumed next time" in err.value.hint
    assert (tmp_path / "f.gz.part").read_bytes() == b"abc" and not dest.exists()


def test_the_mirror_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(fm.URL_ENV, "http://127.0.0.1:9/a http://127.0.0.1:9/b/")
    assert fm.base_urls() == ["http://127.0.0.1:9/a/", "http://127.0.0.1:9/b/"]
    monkeypatch.delenv(fm.URL_ENV)
    assert fm.base_urls()[0].startswith("https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/")
    assert fm.base_urls("http://127.0.0.1:9/c") == ["http://127.0.0.1:9/c/"]


def test_the_cache_follows_nnspec_cache(monkeypatch, tmp_path):
    monkeypatch.setenv(fm.CACHE_ENV, str(tmp_path))
    assert fm.cache_dir() == tmp_path / "datasets" / "fashion-mnist"
    assert fm.search_dirs()[-1] == fm.cache_dir()
    assert np.all([d.name == "fashion-mnist" for d in fm.search_dirs()])
