"""Atomic file writes: readers see the old content or the new, never half of it."""

from __future__ import annotations

import os
import secrets

from nnspec.errors import UserError


class WriteError(UserError, OSError):
    """A file could not be written (read-only folder, full disk, no permission): one line naming it.

    It is an OSError too, so code that handled the raw error still does.
    """


def _create_temp(directory: str, name: str) -> tuple[int, str]:
    """A new, exclusive temporary file beside the target, created 0666 less the umask (the kernel applies it)."""
    for _ in range(100):
        tmp = os.path.join(directory, f".tmp-{secrets.token_hex(4)}-{name}")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file in {directory}")


def atomic_write(path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``.

    The new file gets the usual permissions (0666 less the umask), not a private 0600, and the
    process-wide umask is never changed to find that out.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = _create_temp(directory, os.path.basename(path))
    except OSError as exc:
        raise WriteError(f"could not write {path}: {exc.strerror or exc}") from None
    try:
        payload = data if isinstance(data, bytes) else data.encode("utf-8")
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and not isinstance(exc, WriteError):
            raise WriteError(f"could not write {path}: {exc.strerror or exc}; the previous version (if any) "
                             "is unchanged") from None
        raise
