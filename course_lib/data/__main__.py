"""Day 1: ``python -m course_lib.data list|fetch NAME...|fetch --all``.

``fetch`` ends with a summary line, and exits with status 0 when every data set was
fetched and verified, 2 when any failed (each failure says why and what to do).
"""

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
    failed = []
    for name in names:
        start = time.perf_counter()
        try:
            path = fetch(name, force=args.force)
        except (DataError, KeyError) as err:
            print(f"{name}: FAILED\n{err.args[0] if isinstance(err, KeyError) else err}", file=sys.stderr)
            failed.append(name)
            continue
        print(f"{name:16} ok  {path}  ({time.perf_counter() - start:.1f} s)")
    fetched = len(names) - len(failed)
    if failed:
        print(f"{fetched} of {len(names)} data sets fetched, {len(failed)} failed ({', '.join(failed)}). What to "
              "do: read the reason under each FAILED above; without internet access, set COURSE_DATA_MIRROR to a "
              "folder that holds the files (or copy them into the data folder), then run this command again.",
              file=sys.stderr)
        return 2
    print(f"{fetched} of {len(names)} data sets fetched and verified in {data_dir()}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
