"""Outside data in the lineage: manifests of the files a task reads, with hashes and origins.

A task's data comes from outside the workflow: Debian's Fashion-MNIST idx files, WordNet's
files, an ImageNet directory tree. Each source (:class:`losskernel.tasks.protocol.DataSource`)
gets a manifest, a table with one row per file: ``source``, ``root`` (the tree's directory, or
empty for a single file), ``path`` (absolute for a single file, relative to ``root`` in a tree),
``bytes``, ``sha256`` and ``origin`` (the Debian package and version that installed the file,
or where the config pointed). The manifest is an input of every job that reads the data, so
its hash is in their records, and ``losskernel provenance`` re-hashes each file it lists
(:func:`check_manifest`).

Hashing a tree of a million images takes long; :func:`tree_hashes` keeps each file's hash in a
cache beside the manifest and reuses it while the file's size and modification time are
unchanged (what ``make`` and ``rsync`` trust as well: a file rewritten in place with the same
size within the same nanosecond-resolution time stamp is not noticed).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterable, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from losskernel.provenance import atomic_path, file_sha256

MANIFEST_COLUMNS = ("source", "root", "path", "bytes", "sha256", "origin")
"""The columns of a manifest table, in order."""
CACHE_COLUMNS = ("path", "bytes", "mtime_ns", "sha256")

DataStatus = Literal["ok", "changed", "missing", "added"]


def debian_origins(paths: Iterable[str | os.PathLike]) -> dict[str, str]:
    """``Debian package <name> <version>`` for each of ``paths`` that an installed Debian
    package owns (``dpkg-query -S``); files no package owns, or a machine without dpkg, are
    left out."""
    paths = [str(Path(path).resolve()) for path in paths]
    try:
        found = subprocess.run(["dpkg-query", "-S", *paths], capture_output=True, text=True,
                               timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    packages: dict[str, str] = {}
    for line in found.splitlines():  # "wordnet-base: /usr/share/wordnet/data.noun"
        package, _, path = line.partition(": ")
        if path in paths and "," not in package:
            packages[path] = package.split(":")[0]  # drop an architecture qualifier
    versions = {package: _debian_version(package) for package in set(packages.values())}
    return {path: f"Debian package {package} {versions[package]}".rstrip()
            for path, package in packages.items()}


def _debian_version(package: str) -> str:
    try:
        return subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True,
                              text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def files_manifest(source: str, files: Sequence[str | os.PathLike], origin: str
                   ) -> pd.DataFrame:
    """The manifest of single files: each hashed, its origin the Debian package that owns it,
    else ``origin`` (where the config pointed)."""
    owners = debian_origins(files)
    rows = [{"source": source, "root": "", "path": str(Path(path).resolve()),
             "bytes": Path(path).stat().st_size, "sha256": file_sha256(path),
             "origin": owners.get(str(Path(path).resolve()), origin)} for path in files]
    return pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))


def tree_files(root: str | os.PathLike) -> list[tuple[str, os.stat_result]]:
    """Every regular file under ``root`` (symbolic links followed) as (path relative to the
    root with ``/`` separators, its stat), in path order; hidden files and directories (names
    starting with ``.``) are left out, as torchvision's ImageFolder leaves them out."""
    root = Path(root)
    found = []
    for directory, subdirectories, names in os.walk(root, followlinks=True):
        subdirectories[:] = sorted(name for name in subdirectories if not name.startswith("."))
        for name in names:
            if name.startswith("."):
                continue
            path = Path(directory) / name
            stat = path.stat()
            found.append((path.relative_to(root).as_posix(), stat))
    return sorted(found)


def stat_stamp(files: Iterable[tuple[str, os.stat_result]]) -> str:
    """A hash of each named file's name, size and modification time, in order: it changes
    when a file is added, removed, resized or rewritten, and costs a ``stat`` per file, no
    reads."""
    listing = [(name, stat.st_size, stat.st_mtime_ns) for name, stat in files]
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()


def tree_stamp(root: str | os.PathLike) -> str:
    """The :func:`stat_stamp` of every file under ``root`` (what the workflow compares to decide
    whether to hash the tree again): a directory walk, no reads."""
    return stat_stamp(tree_files(root))


def tree_hashes(root: str | os.PathLike, cache: str | os.PathLike | None
                ) -> list[tuple[str, int, str]]:
    """(relative path, bytes, sha256) of every file under ``root`` (:func:`tree_files`).

    With ``cache`` (a TSV of path, bytes, mtime_ns, sha256), a file whose size and
    modification time match its cached row keeps its cached hash, and only the others are
    read; the cache is then rewritten with the tree as it is now.
    """
    known: dict[str, tuple[int, int, str]] = {}
    if cache is not None and Path(cache).is_file():
        cached = pd.read_csv(cache, sep="\t", dtype={"path": str, "sha256": str})
        known = {row.path: (int(row.bytes), int(row.mtime_ns), row.sha256)
                 for row in cached.itertuples()}
    rows = []
    for path, stat in tree_files(root):
        hit = known.get(path)
        fresh = hit is not None and hit[:2] == (stat.st_size, stat.st_mtime_ns)
        sha256 = hit[2] if fresh else file_sha256(Path(root) / path)
        rows.append((path, stat.st_size, stat.st_mtime_ns, sha256))
    if cache is not None:
        with atomic_path(cache, shared=True) as partial:
            pd.DataFrame(rows, columns=list(CACHE_COLUMNS)).to_csv(partial, sep="\t",
                                                                   index=False)
    return [(path, size, sha256) for path, size, _, sha256 in rows]


def tree_manifest(source: str, root: str | os.PathLike, origin: str,
                  cache: str | os.PathLike | None = None) -> pd.DataFrame:
    """The manifest of every file under the directory ``root`` (:func:`tree_hashes`)."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"data source {source}: {root} is not a directory")
    rows = [{"source": source, "root": str(root), "path": path, "bytes": size, "sha256": sha256,
             "origin": origin} for path, size, sha256 in tree_hashes(root, cache)]
    if not rows:
        raise ValueError(f"data source {source}: no files under {root}")
    return pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))


def hash_cache_path(manifest: str | os.PathLike) -> Path:
    """Where the tree hashes of a manifest are cached: ``hash-cache/<name>`` beside it (not an
    output of the workflow, so Snakemake does not delete it before it reruns the job)."""
    manifest = Path(manifest)
    return manifest.parent / "hash-cache" / manifest.name


def is_manifest(table: pd.DataFrame) -> bool:
    return tuple(table.columns) == MANIFEST_COLUMNS


@dataclass(frozen=True)
class DataCheck:
    """One data file of a manifest against the file on disk now: ``ok`` (same sha256),
    ``changed``, ``missing``, or ``added`` (a file of a tree the manifest does not list)."""

    source: str
    path: str
    origin: str
    bytes: int
    recorded_sha256: str
    current_sha256: str
    status: DataStatus


def check_manifest(table: pd.DataFrame, hashes: MutableMapping[Path, str] | None = None,
                   cache: str | os.PathLike | None = None) -> list[DataCheck]:
    """Each file of a manifest re-hashed and compared with its recorded sha256: single files
    read whole (``hashes``, by absolute path: hashes already computed, and where this adds
    its own), a tree's files through its hash cache (:func:`tree_hashes`); files added to a
    tree since are ``added``."""
    hashes = {} if hashes is None else hashes
    checks = []
    for (source, root), rows in table.fillna({"root": ""}).groupby(["source", "root"],
                                                                     sort=False):
        if root:
            now = ({path: sha256 for path, _, sha256 in tree_hashes(root, cache)}
                   if Path(root).is_dir() else {})
        else:
            now = {}
            for path in rows["path"]:
                file = Path(path)
                if file not in hashes:
                    hashes[file] = file_sha256(file) if file.is_file() else ""
                now[path] = hashes[file]
        for row in rows.itertuples():
            current = now.pop(row.path, "")
            status = ("missing" if not current else "ok" if current == row.sha256
                      else "changed")
            shown = str(Path(root) / row.path) if root else row.path
            checks.append(DataCheck(source, shown, row.origin, int(row.bytes), row.sha256,
                                    current, status))
        checks.extend(DataCheck(source, str(Path(root) / path), rows["origin"].iloc[0], 0, "",
                                sha256, "added") for path, sha256 in now.items())
    return checks
