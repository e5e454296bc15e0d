"""Day 1: ``python -m course_lib.data list|fetch NAME...|fetch --all``."""

from __future__ import annotations

import argparse
import sys
import time

from course_lib.data.download import DataError, data_dir, fetch, verify
from course_lib.data.registry import DATASETS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the registered data sets and whether they are cached")
    get = sub.add_parser("fetch", help="fetch and verify data sets into the cache")
    get.add_argument("names", nargs="*", help="data set names (see 'list')")
    get.add_argument("--all", action="store_true", help="fetch every registered data set")
    get.add_argument("--force", action="store_true", help="fetch again even if cached")
    args = parser.parse_args(argv)

    if args.command == "list":
        for name, ds in sorted(DATASETS.items()):
            cached = "cached" if verify(data_dir() / ds.filename, ds) is None else "not cached"
            print(f"{name:16} {ds.size:>10,} bytes  {cached:10}  {ds.description}")
        return 0
    names = sorted(DATASETS) if args.all else args.names
    if not names:
        parser.error("name at least one data set, or use --all")
    status = 0
    for name in names:
        start = time.perf_counter()
        try:
            path = fetch(name, force=args.force)
        except (DataError, KeyError) as err:
            print(f"{name}: FAILED\n{err}", file=sys.stderr)
            status = 1
            continue
        print(f"{name:16} ok  {path}  ({time.perf_counter() - start:.1f} s)")
    return status


if __name__ == "__main__":
    sys.exit(main())
