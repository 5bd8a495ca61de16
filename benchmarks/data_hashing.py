"""What recording a data tree costs: hashing every file once, against what the workflow then does
again (losskernel.manifest).

Makes an ImageFolder-like tree of ``--files`` files of ``--bytes`` bytes each (random content,
ImageNet's training JPEGs average about 110 KB) in a temporary directory, then times, in one
process:

- the first manifest: every file read and hashed (the baseline, ratio 1);
- the tree's stamp: a walk with one ``stat`` per file, no reads (what Snakemake's params
  trigger compares at every run that plans the rule);
- the manifest again with the hash cache: no file changed, none read;
- the manifest after one file changed: that file read again.

Usage: ``.venv/bin/python benchmarks/data_hashing.py [--files 50000] [--bytes 110000]``.
The tree is deleted afterwards. Prints the times and their ratios to the first hash.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from losskernel.manifest import tree_hashes, tree_stamp


def make_tree(root: Path, files: int, size: int, classes: int = 1000) -> None:
    """``files`` files of random bytes in ``classes`` wnid-like folders."""
    for index in range(files):
        folder = root / f"n{index % classes:08d}"
        folder.mkdir(exist_ok=True)
        (folder / f"image_{index:07d}.JPEG").write_bytes(os.urandom(size))


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=50_000)
    parser.add_argument("--bytes", type=int, default=110_000)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="losskernel-hashing-"))
    try:
        root, cache = scratch / "train", scratch / "cache.tsv"
        root.mkdir()
        made = timed(lambda: make_tree(root, args.files, args.bytes))
        gigabytes = args.files * args.bytes / 1e9
        print(f"tree: {args.files:,} files x {args.bytes:,} bytes = {gigabytes:.2f} GB "
              f"(written in {made:.1f} s; the page cache may hold some of it)")
        first = timed(lambda: tree_hashes(root, cache))
        stamp = timed(lambda: tree_stamp(root))
        cached = timed(lambda: tree_hashes(root, cache))
        changed = next(root.glob("n00000000/*.JPEG"))
        changed.write_bytes(os.urandom(args.bytes))
        one_changed = timed(lambda: tree_hashes(root, cache))
        print(f"{'what':<48} {'seconds':>8} {'ratio':>8}")
        for name, seconds in (("first manifest: every file read and hashed", first),
                              ("stamp: sizes and times only (each run's plan)", stamp),
                              ("manifest again, hash cache, nothing changed", cached),
                              ("manifest again, hash cache, one file changed", one_changed)):
            print(f"{name:<48} {seconds:>8.2f} {seconds / first:>8.3f}")
        print(f"hashing throughput: {gigabytes / first * 1000:.0f} MB/s")
    finally:
        shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
