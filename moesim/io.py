"""Atomic file writes (a temporary name in the same folder, then rename) and safe output names."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def _open_atomic(path: str | Path, mode: str, **kwargs: Any) -> Iterator[IO[Any]]:
    """A file to write ``path`` through: a temporary name in its folder, renamed onto
    ``path`` when the block ends without an error (removed when it raises)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates 0600; give the file the mode a plain open() would (0666 less umask).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def open_text_atomic(path: str | Path) -> contextlib.AbstractContextManager[IO[str]]:
    """Write a large text file piece by piece, whole or not at all (UTF-8)."""
    return _open_atomic(path, "w", encoding="utf-8", newline="")


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    with _open_atomic(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


# Characters an output name keeps; anything else (a path separator, "..", a control character)
# becomes "_", so a name can never leave the folder it is put in.
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME = 100


def safe_name(name: str, default: str = "unnamed") -> str:
    """``name`` as one path component: letters, digits, '.', '_' and '-' kept, anything else
    '_', no leading dot (so never '.' or '..'), at most 100 characters; ``default`` if empty.

    A scenario or sweep ``name`` is text from a file someone else may have written; outputs
    go to ``reports/<safe_name(name)>``, which stays inside ``reports/``."""
    cleaned = _UNSAFE.sub("_", str(name)).strip("._-")[:MAX_NAME].rstrip("._-")
    return cleaned or default
