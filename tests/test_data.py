"""course_lib.data: sources in order, verification, atomic caching, safe extraction, loaders."""

import hashlib
import http.server
import io
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


def test_mirror_is_used_and_verified(cache, tmp_path, monkeypatch):
    ds = _dataset()
    monkeypatch.setitem(DATASETS, ds.name, ds)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / ds.filename).write_bytes(PAYLOAD)
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    path = data.fetch(ds.name)
    assert path == cache / ds.filename and path.read_bytes() == PAYLOAD
    assert not [p for p in cache.iterdir() if p.name.endswith(".part")]


def test_corrupt_cache_is_fetched_again(cache, tmp_path, monkeypatch):
    ds = _dataset()
    monkeypatch.setitem(DATASETS, ds.name, ds)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / ds.filename).write_bytes(PAYLOAD)
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(mirror))
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
    out = tmp_path / "out"
    fetch_mod.extract_member(tar_path, "pkg-1.0/pkg/data.txt", out, len(PAYLOAD))
    assert out.read_bytes() == PAYLOAD
    with pytest.raises(data.DataError, match="not a regular file"):
        fetch_mod.extract_member(tar_path, "pkg-1.0/pkg/link.txt", out, len(PAYLOAD))
    zip_path = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(zip_path, "w") as zf:
        zf.writestr("pkg/data.txt", PAYLOAD)
    fetch_mod.extract_member(zip_path, "pkg/data.txt", out, len(PAYLOAD))
    assert out.read_bytes() == PAYLOAD
    with pytest.raises(data.DataError, match="has no member"):
        fetch_mod.extract_member(zip_path, "pkg/other.txt", out, len(PAYLOAD))


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
