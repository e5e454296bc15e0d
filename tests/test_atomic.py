"""course_lib.atomic: the one atomic writer every module uses."""

from __future__ import annotations

import doctest
import os
import stat

import pytest

from course_lib import atomic
from course_lib.atomic import atomic_open, atomic_write_bytes, atomic_write_text, current_umask


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_bytes_and_text_are_written_whole(tmp_path):
    assert atomic_write_bytes(tmp_path / "a.bin", b"\x00\xffabc").read_bytes() == b"\x00\xffabc"
    assert atomic_write_text(tmp_path / "sub" / "b.txt", "héllo\n").read_text(encoding="utf-8") == "héllo\n"
    with atomic_open(tmp_path / "c.txt", "w") as f:
        f.write("one ")
        f.write("two")
    assert (tmp_path / "c.txt").read_text() == "one two"
    assert _leftovers(tmp_path) == [] and _leftovers(tmp_path / "sub") == []


def test_an_exception_mid_write_keeps_the_old_file_and_no_temporary(tmp_path):
    path = atomic_write_text(tmp_path / "f.txt", "old")
    with pytest.raises(RuntimeError, match="mid-write"):
        with atomic_open(path, "w") as f:
            f.write("half of the new")
            raise RuntimeError("mid-write")
    assert path.read_text() == "old" and _leftovers(tmp_path) == []


def test_a_failed_rename_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = atomic_write_bytes(tmp_path / "f.bin", b"old")

    def no_space(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(OSError, match="No space"):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old" and _leftovers(tmp_path) == []


def test_the_file_is_fsynced_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    atomic_write_text(tmp_path / "f.txt", "x")
    assert events[:2] == ["fsync", "replace"]  # then the folder, where the system allows it


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_the_file_gets_the_mode_open_would_give(tmp_path, mask):
    before = os.umask(mask)
    try:
        with open(tmp_path / "reference", "w") as f:  # the independent reference: a plain open()
            f.write("x")
        path = atomic_write_text(tmp_path / "f.txt", "x")
        assert current_umask() == mask
    finally:
        os.umask(before)
    if os.name == "posix":
        assert _mode(path) == _mode(tmp_path / "reference") == 0o666 & ~mask  # not mkstemp's 0o600


def test_mode_is_refused_unless_write(tmp_path):
    with pytest.raises(ValueError, match="'wb' for bytes or 'w' for text"):
        with atomic_open(tmp_path / "f", "a"):  # type: ignore[arg-type]
            pass


def test_docstring_example():
    assert doctest.testmod(atomic).failed == 0
