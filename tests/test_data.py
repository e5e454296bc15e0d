"""course_lib.data: sources in order, verification, atomic caching, safe extraction, loaders."""

import hashlib
import http.server
import io
import os
import stat
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from course_lib import data
from course_lib.data import download as fetch_mod
from course_lib.data.registry import DATASETS, Dataset, PyPIArtifact, Url

PAYLOAD = b"to be, or not to be\n" * 50


def _dataset(name="toy", sources=(), payload=PAYLOAD):
    return Dataset(name, f"{name}.txt", len(payload), hashlib.sha256(payload).hexdigest(),
                   tuple(sources), "a test file")  # fmt: skip


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder, no mirror, network sources allowed."""
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("COURSE_DATA_MIRROR", raising=False)
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    return tmp_path / "cache"


@pytest.fixture
def mirrored(tmp_path, monkeypatch):
    """The toy data set registered, and COURSE_DATA_MIRROR naming a folder with a good copy of it."""
    ds = _dataset()
    monkeypatch.setitem(DATASETS, ds.name, ds)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / ds.filename).write_bytes(PAYLOAD)
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(mirror))
    return ds, mirror


@pytest.fixture
def server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(root), **k)

        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_registry_entries_are_complete():
    assert {"tinyshakespeare", "names-male", "names-female", "digits", "mnist-5k",
            "questions-words", "wordsim353"} <= set(DATASETS)  # fmt: skip
    for ds in DATASETS.values():
        assert ds.sources, ds.name
        assert all(c in "0123456789abcdef" for c in ds.sha256)
    assert DATASETS["tinyshakespeare"].size == 1_115_394


def test_unknown_name_lists_known_ones():
    with pytest.raises(KeyError, match="Known data sets: .*tinyshakespeare"):
        data.fetch("shakespear")


def test_mirror_is_used_and_verified(cache, monkeypatch, mirrored):
    ds, _ = mirrored
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    path = data.fetch(ds.name)
    assert path == cache / ds.filename and path.read_bytes() == PAYLOAD
    assert sorted(cache.iterdir()) == [path]  # no temporary file left beside it


def test_corrupt_cache_is_fetched_again(cache, mirrored):
    ds, _ = mirrored
    cache.mkdir(parents=True)
    (cache / ds.filename).write_bytes(PAYLOAD[:-7] + b"XXXXXXX")  # same size, wrong content
    assert data.fetch(ds.name).read_bytes() == PAYLOAD
    (cache / ds.filename).write_bytes(PAYLOAD[:100])  # a partial download
    assert data.fetch(ds.name).read_bytes() == PAYLOAD


def test_bad_mirror_is_rejected_with_advice(cache, tmp_path, monkeypatch):
    ds = _dataset()
    monkeypatch.setitem(DATASETS, ds.name, ds)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / ds.filename).write_bytes(PAYLOAD.upper())
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    with pytest.raises(data.DataError) as err:
        data.fetch(ds.name)
    message = str(err.value)
    assert "has sha256" in message and "set COURSE_DATA_MIRROR" in message
    assert not (cache / ds.filename).exists()


def test_url_source_then_fallback_order(cache, server, monkeypatch):
    root, base = server
    (root / "good.txt").write_bytes(PAYLOAD)
    (root / "bad.txt").write_bytes(b"not it")
    ds = _dataset(sources=(Url(f"{base}/missing.txt"), Url(f"{base}/bad.txt"), Url(f"{base}/good.txt")))
    monkeypatch.setitem(DATASETS, ds.name, ds)
    assert data.fetch(ds.name).read_bytes() == PAYLOAD


def test_url_that_sends_too_much_is_cut_off(cache, server, monkeypatch):
    root, base = server
    (root / "big.txt").write_bytes(PAYLOAD * 3)
    ds = _dataset(sources=(Url(f"{base}/big.txt"),))
    monkeypatch.setitem(DATASETS, ds.name, ds)
    with pytest.raises(data.DataError, match="more than the expected"):
        data.fetch(ds.name)


def test_relative_mirror_resolves_from_repo_root(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COURSE_DATA_MIRROR", "course_lib")
    assert data.mirror_dir() == (Path(fetch_mod.__file__).parents[1]).resolve()


@pytest.mark.parametrize("name", ["../evil", "/etc/passwd", "a/../../b", "C:/x"])
def test_unsafe_members_are_refused(name):
    with pytest.raises(data.DataError, match="unsafe archive member"):
        fetch_mod.safe_member(name)


def test_extract_member_from_tar_and_zip(tmp_path):
    tar_path = tmp_path / "pkg-1.0.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tf:
        info = tarfile.TarInfo("pkg-1.0/pkg/data.txt")
        info.size = len(PAYLOAD)
        tf.addfile(info, io.BytesIO(PAYLOAD))
        link = tarfile.TarInfo("pkg-1.0/pkg/link.txt")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    expected = (len(PAYLOAD), hashlib.sha256(PAYLOAD).hexdigest())
    out = io.BytesIO()
    assert fetch_mod.extract_member(tar_path, "pkg-1.0/pkg/data.txt", out, len(PAYLOAD)) == expected
    assert out.getvalue() == PAYLOAD
    with pytest.raises(data.DataError, match="not a regular file"):
        fetch_mod.extract_member(tar_path, "pkg-1.0/pkg/link.txt", io.BytesIO(), len(PAYLOAD))
    zip_path = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(zip_path, "w") as zf:
        zf.writestr("pkg/data.txt", PAYLOAD)
    out = io.BytesIO()
    assert fetch_mod.extract_member(zip_path, "pkg/data.txt", out, len(PAYLOAD)) == expected
    assert out.getvalue() == PAYLOAD
    with pytest.raises(data.DataError, match="has no member"):
        fetch_mod.extract_member(zip_path, "pkg/other.txt", io.BytesIO(), len(PAYLOAD))


def test_pypi_artifact_source_for_real(cache, monkeypatch):
    """Downloads the names 0.3.0 sdist with pip (790 KB), extracts and verifies one member."""
    ds = DATASETS["names-male"]
    only_pypi = Dataset(ds.name, ds.filename, ds.size, ds.sha256,
                        tuple(s for s in ds.sources if isinstance(s, PyPIArtifact)), ds.description)  # fmt: skip
    monkeypatch.setitem(DATASETS, ds.name, only_pypi)
    path = data.fetch(ds.name)
    assert path.read_text().splitlines()[0].split()[0] == "JAMES"


def test_loaders_parse_the_real_files():
    names = data.load_names()
    assert len(names) == 5163 and names == sorted(names) and "emma" in names and "james" in names
    images, labels = data.load_digits()
    assert images.shape == (1797, 8, 8) and images.max() == 16
    assert np.bincount(labels).tolist()[:3] == [178, 182, 177]
    images, labels = data.load_mnist()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [500] * 10
    analogies = data.load_analogies()
    assert len(analogies) == 19544 and analogies[0].d == "iraq"
    assert len({a.section for a in analogies}) == 14
    pairs = data.load_wordsim353()
    assert len(pairs) == 353 and pairs[0] == ("love", "sex", 6.77)
    text = data.load_text("tinyshakespeare")
    assert len(text) == 1_115_394 and text.startswith("First Citizen:")


def test_train_val_split():
    assert data.train_val_split(list(range(10)), 0.2) == (list(range(8)), [8, 9])
    with pytest.raises(ValueError):
        data.train_val_split("abc", 1.5)


# ---------------------------------------------------------------- the mirror is read-only
def test_a_corrupt_file_in_the_mirror_is_never_deleted(monkeypatch, server, mirrored):
    root, base = server
    (root / "good.txt").write_bytes(PAYLOAD)  # a good source exists, yet the mirror's file stays as it is
    ds, mirror = mirrored
    monkeypatch.setenv("COURSE_DATA_DIR", str(mirror))  # the cache is the mirror
    monkeypatch.setitem(DATASETS, ds.name, _dataset(sources=(Url(f"{base}/good.txt"),)))
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    path, corrupt = mirror / ds.filename, PAYLOAD[:-3] + b"XYZ"
    path.write_bytes(corrupt)
    for force in (False, True):
        with pytest.raises(data.DataError, match="never changes or deletes a mirror's files") as err:
            data.fetch(ds.name, force=force)
        assert "point COURSE_DATA_DIR at another folder" in str(err.value)
        assert path.read_bytes() == corrupt
    with pytest.raises(data.DataError, match="never deletes"):
        fetch_mod.clear(ds.name)
    assert path.read_bytes() == corrupt


def test_a_good_file_in_the_mirror_is_used_in_place(monkeypatch, mirrored):
    ds, mirror = mirrored
    monkeypatch.setenv("COURSE_DATA_DIR", str(mirror))
    path = mirror / ds.filename
    before = path.stat()
    assert data.fetch(ds.name, force=True) == path
    assert path.stat().st_ino == before.st_ino and path.stat().st_mtime_ns == before.st_mtime_ns


def test_a_corrupt_cache_file_outside_the_mirror_is_replaced(cache, mirrored):
    ds, mirror = mirrored
    cache.mkdir()
    (cache / ds.filename).write_bytes(b"junk")
    assert data.fetch(ds.name).read_bytes() == PAYLOAD
    assert (mirror / ds.filename).read_bytes() == PAYLOAD


# ---------------------------------------------------------------- errors that say what to do
def test_a_corrupt_archive_is_a_fetch_error_naming_the_source(cache, monkeypatch):
    ds = _dataset(sources=(PyPIArtifact("pkg==1.0", "pkg-1.0/pkg/toy.txt", binary=False),))
    monkeypatch.setitem(DATASETS, ds.name, ds)

    def fake_pip(cmd, **kwargs):  # "downloads" a damaged sdist
        dest = Path(cmd[cmd.index("--dest") + 1])
        (dest / "pkg-1.0.tar.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"not really gzip" * 10)
        return fetch_mod.subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(fetch_mod.subprocess, "run", fake_pip)
    with pytest.raises(data.DataError) as err:
        data.fetch(ds.name)
    message = str(err.value)
    assert "PyPI sdist pkg==1.0 (pkg-1.0/pkg/toy.txt): pkg-1.0.tar.gz is not a readable archive" in message
    assert "What to do:" in message and not (cache / ds.filename).exists()


def test_fetch_all_offline_ends_with_a_summary_and_exit_2(cache, tmp_path, monkeypatch, capsys):
    from course_lib.data import __main__ as cli

    good, bad = _dataset("good"), _dataset("bad", sources=(Url("https://example.invalid/bad.txt"),))
    monkeypatch.setattr(cli, "DATASETS", {"bad": bad, "good": good})
    for ds in (good, bad):
        monkeypatch.setitem(DATASETS, ds.name, ds)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / good.filename).write_bytes(PAYLOAD)  # only one of the two is in the mirror
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    assert cli.main(["fetch", "--all"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == "bad: FAILED"
    assert err[-1].startswith("1 of 2 data sets fetched, 1 failed (bad). What to do:")
    assert "COURSE_DATA_MIRROR" in err[-1]
    monkeypatch.setattr(cli, "DATASETS", {"good": good})
    assert cli.main(["fetch", "--all"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("1 of 1 data sets fetched and verified")


def test_data_dir_that_is_a_file_says_it_must_be_a_folder(tmp_path, monkeypatch, mirrored):
    ds, _ = mirrored
    not_a_folder = tmp_path / "data.txt"
    not_a_folder.write_text("oops")
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    for value in (not_a_folder, not_a_folder / "sub"):  # the folder itself, or a path through a file
        monkeypatch.setenv("COURSE_DATA_DIR", str(value))
        with pytest.raises(data.DataError) as err:
            data.fetch(ds.name)
        message = str(err.value)
        assert f"COURSE_DATA_DIR={value} is not a folder" in message
        assert "COURSE_DATA_DIR must name a folder" in message
        assert "Errno" not in message and "\n" not in message  # one paragraph, no raw OSError


def test_a_data_dir_that_cannot_be_written_gives_one_paragraph(cache, monkeypatch, mirrored):
    ds, _ = mirrored
    cache.mkdir()
    if os.geteuid() != 0:  # a real read-only folder (root may write anywhere)
        cache.chmod(0o500)
    else:
        monkeypatch.setattr(fetch_mod.os, "access", lambda path, mode: False)
    try:
        with pytest.raises(data.DataError) as err:
            data.fetch(ds.name)
    finally:
        cache.chmod(0o700)
    message = str(err.value)
    assert message.startswith(f"Cannot create or write to the data folder {cache} (permission denied)")
    assert "set COURSE_DATA_DIR to a folder you can write to" in message and "\n" not in message


def test_a_permission_error_while_writing_the_cache_gives_the_same_advice(cache, monkeypatch, mirrored):
    from course_lib import atomic

    ds, _ = mirrored

    def denied(dir, prefix, suffix):  # e.g. a network file system whose access() says yes
        raise PermissionError(13, "Permission denied", str(Path(dir) / f"{prefix}x{suffix}"))

    monkeypatch.setattr(atomic.tempfile, "mkstemp", denied)
    with pytest.raises(data.DataError, match=r"Cannot create or write to the data folder .*chmod u\+w"):
        data.fetch(ds.name)


def test_fetched_files_are_readable_by_others_as_the_umask_allows(cache, mirrored):
    ds, _ = mirrored
    before = os.umask(0o022)
    try:
        path = data.fetch(ds.name)
    finally:
        os.umask(before)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not tempfile.mkstemp's 0o600
