"""Benchmark the training store on the mlearn Si training set; prints ONE JSON line.

Measures: importing ``Si-training.xyz`` (214 configurations) into a new store and
reading everything back (s); appending one configuration per commit versus 50 per
commit (configurations/s, default ``durable=True`` and with ``durable=False``); size of
the store on disk (bytes).  The data set is looked up in ``../shared`` relative to the
repository root; without it a JSON note says the benchmark was skipped.

Usage: ``python benchmarks/bench_store.py [--single N]``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import zarr

from aceal.store import import_xyz, open_store
from aceal.store.probe import disk_usage
from aceal.store.xyz import read_xyz

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "mlearn" / "Si-training.xyz"


def append_rate(path: Path, images: list, batch: int, durable: bool) -> float:
    """Configurations per second appending ``batch`` configurations per commit."""
    with open_store(path, "w", durable=durable) as store:
        start = time.perf_counter()
        for i in range(0, len(images), batch):
            store.append(images[i : i + batch])
        elapsed = time.perf_counter() - start
    return len(images) / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single", type=int, default=60, help="configs for 1-per-commit")
    args = parser.parse_args(argv)
    if not DATA.is_file():
        print(json.dumps({"benchmark": "store", "skipped": f"{DATA} not found"}))
        return 0
    result: dict = {"benchmark": "store", "data": str(DATA), "zarr": zarr.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        with open_store(tmp / "si.zarr", "w") as store:
            n = import_xyz(store, [DATA])
        result["import_s"] = round(time.perf_counter() - start, 3)
        start = time.perf_counter()
        with open_store(tmp / "si.zarr") as store:
            back = store[:]
        result["read_all_s"] = round(time.perf_counter() - start, 3)
        images = read_xyz(DATA)
        assert len(back) == n == len(images)
        assert all(
            np.array_equal(a.get_forces(), b.get_forces())
            for a, b in zip(images, back, strict=True)
        )
        result["configs"] = n
        result["atoms"] = int(sum(len(a) for a in images))
        result["store_bytes"] = disk_usage(tmp / "si.zarr")
        result["xyz_bytes"] = DATA.stat().st_size
        single = images[: args.single]
        for durable in (True, False):
            tag = "" if durable else "_nodurable"
            rate1 = append_rate(tmp / f"one{tag}.zarr", single, 1, durable)
            rate50 = append_rate(tmp / f"fifty{tag}.zarr", images, 50, durable)
            result[f"append_1_per_commit_configs_per_s{tag}"] = round(rate1, 2)
            result[f"append_50_per_commit_configs_per_s{tag}"] = round(rate50, 1)
        result["single_append_sample"] = len(single)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
