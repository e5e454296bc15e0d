"""Day 1: the course's data sets — a verified registry, a fetcher with a cache, loaders.

>>> from course_lib.data import load_text, train_val_split
>>> train, val = train_val_split(load_text("tinyshakespeare"))
"""

from course_lib.data.download import DataError, data_dir, fetch, fetch_all, mirror_dir, verify
from course_lib.data.loaders import (
    Analogy,
    load_analogies,
    load_digits,
    load_mnist,
    load_names,
    load_text,
    load_wordsim353,
    train_val_split,
)
from course_lib.data.registry import DATASETS, Dataset, PyPIArtifact, Url, get_dataset

__all__ = [
    "DATASETS", "Analogy", "DataError", "Dataset", "PyPIArtifact", "Url", "data_dir", "fetch",
    "fetch_all", "get_dataset", "load_analogies", "load_digits", "load_mnist", "load_names",
    "load_text", "load_wordsim353", "mirror_dir", "train_val_split", "verify",
]  # fmt: skip
