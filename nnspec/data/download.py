"""Atomic, resumable, bounded HTTP downloads (standard library only).

A file is streamed to disk into ``<dest>.part``; an interrupted transfer keeps the partial file
and the next attempt asks for the rest with an HTTP ``Range`` header. Only a file that passes
``verify`` is renamed to ``dest``; one that fails is deleted, so the cache never holds a
corrupted file.

A mirror is not trusted to behave: a file larger than ``max_bytes`` (announced or streamed) is
refused and deleted, and the whole download, retries included, has a ``deadline`` that a server
trickling a few bytes now and then cannot stretch (each read waits at most the socket timeout).
"""

from __future__ import annotations

import http.client
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from nnspec.data.errors import DataError

CHUNK = 1 << 16
USER_AGENT = "nnspec-data/1"
DEADLINE_S = 900.0  # one file, all attempts together


def part_path(dest: str) -> str:
    return dest + ".part"


class _Refused(Exception):
    """The mirror sent something that must not be kept (too large); not retried."""


class _Deadline(Exception):
    """The overall deadline passed; the partial file is kept for next time."""


def _fetch_into(url: str, part: str, timeout: float, progress: Callable[[int, int | None], None] | None,
                max_bytes: int | None = None, give_up_at: float | None = None) -> None:
    """One attempt: append the rest of ``url`` to ``part`` (or start over if the server ignores Range)."""
    have = os.path.getsize(part) if os.path.exists(part) else 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if have:
        request.add_header("Range", f"bytes={have}-")
    if give_up_at is not None:
        timeout = max(0.1, min(timeout, give_up_at - time.monotonic()))
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the partial file is already whole
            return
        raise
    with response:
        status = getattr(response, "status", 200)
        mode = "ab" if (have and status == 206) else "wb"
        length = response.headers.get("Content-Length")
        total = (int(length) + (have if mode == "ab" else 0)) if length and length.isdigit() else None
        if max_bytes is not None and total is not None and total > max_bytes:
            raise _Refused(f"the mirror offers {total:,} bytes, but the file is at most {max_bytes:,}")
        done = have if mode == "ab" else 0
        with open(part, mode) as fh:
            while True:
                chunk = response.read1(CHUNK)  # what has arrived, not a full CHUNK: a trickle cannot stall us
                if not chunk:
                    break
                fh.write(chunk)
                done += len(chunk)
                if max_bytes is not None and done > max_bytes:
                    raise _Refused(f"the mirror sent more than {max_bytes:,} bytes, more than the file can be")
                if progress:
                    progress(done, total)
                if give_up_at is not None and time.monotonic() > give_up_at:
                    raise _Deadline(f"{done:,} of {f'{total:,}' if total else 'an unknown number of'} bytes")
            fh.flush()
            os.fsync(fh.fileno())
        if total is not None and done < total:
            raise http.client.IncompleteRead(b"", total - done)


def download(
    urls: list[str],
    dest: str,
    verify: Callable[[str], str | None],
    *,
    retries: int = 3,
    timeout: float = 30.0,
    progress: Callable[[int, int | None], None] | None = None,
    max_bytes: int | None = None,
    deadline: float = DEADLINE_S,
) -> str:
    """Download the first of ``urls`` that works into ``dest``; returns ``dest``.

    ``verify(path)`` returns None when the file is good, else a short reason. Each URL gets
    ``retries`` attempts; every retry resumes from the partial file. ``max_bytes`` caps the file
    (the expected size); ``deadline`` (seconds) bounds the whole call, retries and mirrors included.
    """
    os.makedirs(os.path.dirname(os.path.abspath(dest)) or ".", exist_ok=True)
    part = part_path(dest)
    name = os.path.basename(dest)
    failures: list[str] = []
    give_up_at = time.monotonic() + deadline
    for url in urls:
        for _attempt in range(retries):
            if time.monotonic() > give_up_at:
                break
            try:
                _fetch_into(url, part, timeout, progress, max_bytes, give_up_at)
            except _Refused as exc:
                _remove(part)
                raise DataError(f"refused {name} from {url}: {exc}; nothing was kept", file=url,
                                hint="the mirror is wrong or hostile: set NNSPEC_FASHION_MNIST_URL to another") from None
            except _Deadline as exc:
                raise DataError(f"could not download {name} within {deadline:.0f} s ({exc} arrived)", file=url,
                                hint="the mirror is too slow; the partial download is kept and resumed next time, "
                                "or set NNSPEC_FASHION_MNIST_URL to a faster mirror") from None
            except urllib.error.HTTPError as exc:
                failures.append(f"{url}: HTTP {exc.code}")
                break  # a 404 does not get better by asking again
            except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, OSError) as exc:
                reason = getattr(exc, "reason", None) or exc.__class__.__name__
                failures.append(f"{url}: {reason}")
                continue  # interrupted: resume from the partial file
            problem = verify(part)
            if problem is None:
                os.replace(part, dest)
                return dest
            _remove(part)
            raise DataError(
                f"downloaded {name} failed verification ({problem}); nothing was kept",
                file=url,
                hint="load again to retry; if it keeps failing the mirror is bad: set NNSPEC_FASHION_MNIST_URL to another",
            )
    last = failures[-1] if failures else "no URL to try"
    if time.monotonic() > give_up_at:
        raise DataError(f"could not download {name} within {deadline:.0f} s ({last})", file=dest,
                        hint="the mirrors are too slow or unreachable; a partial download is kept and resumed "
                        "next time")
    raise DataError(
        f"could not download {name} ({last})",
        file=dest,
        hint="check the network, or install the files (apt-get install dataset-fashion-mnist); "
        "a partial download is kept and resumed next time",
    )


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def print_progress(name: str) -> Callable[[int, int | None], None]:
    """A progress callback writing ``name: 45% (12.0 of 26.4 MB)`` to stderr when it is a terminal."""
    if not sys.stderr.isatty():
        return lambda done, total: None
    state = {"shown": -1}

    def show(done: int, total: int | None) -> None:
        pct = int(100 * done / total) if total else -1
        if pct == state["shown"]:
            return
        state["shown"] = pct
        end = "\n" if total and done >= total else ""
        size = f"{done / 1e6:.1f} of {total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
        print(f"\rdownloading {name}: {max(pct, 0)}% ({size})", end=end, file=sys.stderr, flush=True)

    return show
