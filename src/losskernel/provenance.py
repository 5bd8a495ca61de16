"""Provenance of an artifact: code version, config, seed, inputs, software and machine.

Every value is a netCDF-legal scalar (str or int): dicts are JSON strings, flags are 0/1, and a
missing value is the empty string, so the same record can go into netCDF attributes, PNG
metadata and the comment header of a TSV table.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import socket
import subprocess
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path

TRACKED_PACKAGES = ("losskernel", "torch", "numpy", "xarray", "netCDF4", "scikit-learn",
                    "umap-learn", "matplotlib", "snakemake")


def file_sha256(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def config_sha256(config: Mapping | list | None) -> str:
    """Hash of a config, stable across key order."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()


def canonical_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def git_state(directory: str | os.PathLike = ".") -> tuple[str, int]:
    """``(commit, dirty)`` of the git work tree holding ``directory``; ``("", 0)`` outside git."""
    def run(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=directory, capture_output=True, text=True,
                              check=True, timeout=30).stdout.strip()
    try:
        commit = run("rev-parse", "HEAD")
        dirty = int(bool(run("status", "--porcelain", "--untracked-files=no")))
    except (OSError, subprocess.SubprocessError):
        return "", 0
    return commit, dirty


def package_versions(names: Iterable[str] = TRACKED_PACKAGES) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = ""
    return versions


def collect_provenance(
    config: Mapping | None = None,
    *,
    rule: str = "",
    wildcards: Mapping[str, str] | None = None,
    seed: int | None = None,
    inputs: Iterable[str | os.PathLike] = (),
    workdir: str | os.PathLike = ".",
) -> dict[str, str | int]:
    """The provenance record of an artifact made now from ``inputs`` under ``config``."""
    commit, dirty = git_state(workdir)
    return {
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": commit,
        "git_dirty": dirty,
        "rule": rule,
        "wildcards": canonical_json(dict(wildcards or {})),
        "config": canonical_json(config),
        "config_sha256": config_sha256(config),
        "seed": "" if seed is None else int(seed),
        "input_sha256": canonical_json({str(p): file_sha256(p) for p in inputs}),
        "packages": canonical_json(package_versions()),
        "python": platform.python_version(),
        "host": socket.gethostname(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID", ""),
    }


def provenance_header(record: Mapping[str, str | int]) -> str:
    """The record as ``# key: value`` lines, the comment header of a TSV table."""
    return "".join(f"# {key}: {value}\n" for key, value in record.items())


def write_tsv(table, path: str | os.PathLike, record: Mapping[str, str | int]) -> None:
    """Write a pandas table as TSV preceded by its provenance header (read with comment='#')."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        handle.write(provenance_header(record))
        table.to_csv(handle, sep="\t", index=False, float_format="%.6g")
