"""Day 1: writing a file atomically: a reader sees the old file or the whole new one, never half.

Every file the course writes (data sets, tokenizers, checkpoints, results) goes through
:func:`atomic_open`::

    with atomic_open("data/results.json", "w") as f:   # a temporary file beside it
        json.dump(results, f)
    # here: flushed, fsync'ed, renamed over data/results.json, the folder fsync'ed

1. write to a temporary file ``.NAME.XXXX.tmp`` in the same folder (so the rename
   below never crosses file systems);
2. ``flush`` and ``os.fsync`` it, so the bytes are on disk before the rename;
3. give it the mode a plain ``open()`` would (``0o666`` minus the umask: readable by
   others when the umask allows, unlike ``tempfile.mkstemp``'s ``0o600``);
4. ``os.replace`` it over the final name (atomic on POSIX and Windows);
5. fsync the folder where the system allows it, so the rename itself survives a crash.

An exception anywhere before step 4 deletes the temporary file and leaves the old one intact.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "hello.txt"
>>> atomic_write_text(path, "hi\\n").read_text()
'hi\\n'
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Literal

# what tempfile.mkstemp(prefix=".NAME.", suffix=".tmp") names the temporary file of NAME
_TEMPORARY = re.compile(r"\.(.+)\.\w+\.tmp")


def current_umask() -> int:
    """The process's umask (e.g. ``0o022``), read without changing it where Linux allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (the only portable way to read it)
    os.umask(mask)
    return mask


def _fsync_folder(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (POSIX); a no-op where folders cannot be opened."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder; the file itself is on disk
        pass
    finally:
        os.close(fd)


def temporary_target(name: str) -> str | None:
    """The file a leftover temporary ``.NAME.XXXX.tmp`` (a write that never finished) was
    to become, else None.

    >>> temporary_target(".meta.json.k2x_9q.tmp"), temporary_target("meta.json")
    ('meta.json', None)
    """
    match = _TEMPORARY.fullmatch(name)
    return match.group(1) if match else None


@contextmanager
def atomic_open(
    path: str | os.PathLike[str], mode: Literal["wb", "w"] = "wb", encoding: str | None = None
) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on a clean exit it replaces ``path``.

    ``mode`` is ``"wb"`` (bytes) or ``"w"`` (text, ``encoding`` default UTF-8). The
    parent folder is created when missing. On an exception the temporary file is
    removed, ``path`` is left as it was, and the exception propagates.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode={mode!r}: use 'wb' for bytes or 'w' for text")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # see _TEMPORARY
    try:
        text = {"encoding": encoding or "utf-8"} if mode == "w" else {}
        with os.fdopen(fd, mode, **text) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())  # what open() would give, not mkstemp's 0o600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`) and return the path."""
    with atomic_open(path, "wb") as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_open`) and return the path."""
    with atomic_open(path, "w", encoding=encoding) as f:
        f.write(text)
    return Path(path)


__all__ = ["atomic_open", "atomic_write_bytes", "atomic_write_text", "current_umask", "temporary_target"]
