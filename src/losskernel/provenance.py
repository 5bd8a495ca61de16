"""Provenance of an artifact: code version, config, seed, inputs, software and machine.

Every value is a netCDF-legal scalar (str or int): dicts are JSON strings, flags are 0/1, and a
missing value is the empty string, so the same record can go into netCDF attributes, PNG
metadata and the comment header of a TSV table.

Two hashes name an artifact's config. ``config_sha256`` is the hash of the whole resolved
config of the run that made it: one value for every artifact of a run, and the file
:func:`save_run_config` wrote under ``RUN_CONFIG_DIR`` gives the config back. ``config`` is
the slice of it the job received (its settings, i.e. its arguments) and ``settings_sha256``
that slice's hash. Records written before run configs were recorded have no
``settings_sha256``, and their ``config_sha256`` is the settings' hash.
"""

from __future__ import annotations

import datetime as dt
import errno
import functools
import hashlib
import json
import os
import pickle
import platform
import re
import shutil
import socket
import subprocess
import threading
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from losskernel.manifest import DataCheck

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


UNKNOWN_COMMIT = "unknown"
"""The start of a record's ``git_commit`` when git could not say which commit the code was."""


def git_state(directory: str | os.PathLike = ".") -> tuple[str, int]:
    """``(commit, dirty)`` of the git work tree holding ``directory``: the full hex commit and
    whether tracked files have uncommitted changes. When git cannot say (not a work tree, no
    ``git``, a repository without a commit), the commit is ``"unknown: <git's reason>"`` and
    dirty 0: a record says its code version is unknown rather than holding an empty string,
    and ``losskernel provenance`` flags it (:func:`is_commit`)."""
    def run(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=directory, capture_output=True, text=True,
                              check=True, timeout=30).stdout.strip()
    try:
        commit = run("rev-parse", "--verify", "HEAD")
        dirty = int(bool(run("status", "--porcelain", "--untracked-files=no")))
    except subprocess.CalledProcessError as error:
        reason = (error.stderr or "").strip().splitlines()[-1:] or [f"exit {error.returncode}"]
        return f"{UNKNOWN_COMMIT}: git {error.cmd[1]}: {reason[0]}", 0
    except (OSError, subprocess.SubprocessError) as error:
        return f"{UNKNOWN_COMMIT}: cannot run git ({_short_error(error)})", 0
    if not is_commit(commit):
        return f"{UNKNOWN_COMMIT}: git rev-parse printed {commit[:80]!r}", 0
    return commit, dirty


def is_commit(text: str) -> bool:
    """Whether ``text`` is a full git commit id (40 hex digits, or 64 in a SHA-256 repository)."""
    return re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", text) is not None


def short_commit(commit: str) -> str:
    """A commit's first 7 hex digits, as git abbreviates it; ``unknown`` if it is not one."""
    return commit[:7] if is_commit(commit) else UNKNOWN_COMMIT


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
    run_config: Mapping | None = None,
    rule: str = "",
    wildcards: Mapping[str, str] | None = None,
    seed: int | None = None,
    inputs: Iterable[str | os.PathLike] = (),
    code: Mapping[str, str] | None = None,
    workdir: str | os.PathLike = ".",
) -> dict[str, str | int]:
    """The provenance record of an artifact made now from ``inputs`` with the job's settings
    ``config`` (recorded whole, and hashed as ``settings_sha256``) by a run of the whole
    config ``run_config`` (hashed as ``config_sha256``; empty without one); ``code`` is the
    fingerprint of the code that made it (module -> digest, :mod:`losskernel.fingerprint`),
    recorded beside the commit."""
    commit, dirty = git_state(workdir)
    return {
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": commit,
        "git_dirty": dirty,
        "code": canonical_json(dict(code or {})),
        "rule": rule,
        "wildcards": canonical_json(dict(wildcards or {})),
        "config": canonical_json(config),
        "settings_sha256": config_sha256(config),
        "config_sha256": "" if run_config is None else config_sha256(run_config),
        "seed": "" if seed is None else int(seed),
        "input_sha256": canonical_json({str(p): file_sha256(p) for p in inputs}),
        "packages": canonical_json(package_versions()),
        "python": platform.python_version(),
        "host": socket.gethostname(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID", ""),
    }


RUN_CONFIG_DIR = Path("results/provenance/configs")
"""Where :func:`save_run_config` keeps each run's whole config as ``<config_sha256>.yaml``,
relative to the directory the workflow runs in."""


def run_config_path(sha256: str, directory: str | os.PathLike = RUN_CONFIG_DIR) -> Path:
    """The file of the run config whose hash is ``sha256``."""
    return Path(directory) / f"{sha256}.yaml"


def save_run_config(config: Mapping, directory: str | os.PathLike = RUN_CONFIG_DIR) -> Path:
    """Write a run's whole config to ``<directory>/<config_sha256>.yaml`` unless it is there,
    and return the file's path.

    The file holds the config as it is hashed (its canonical JSON read back), as YAML with
    sorted keys, so ``config_sha256(yaml.safe_load(file))`` is the file's name. Every job of a
    run writes the same file, several at once: each writes a temporary file of its own and
    renames it into place, so a reader never sees part of one and the last identical copy wins.
    """
    import yaml

    plain = json.loads(canonical_json(config))
    path = run_config_path(config_sha256(plain), directory)
    if path.is_file():
        return path
    with atomic_path(path, shared=True) as partial:
        partial.write_text(yaml.safe_dump(plain, sort_keys=True, allow_unicode=True),
                           encoding="utf-8")
    return path


def provenance_header(record: Mapping[str, str | int]) -> str:
    """The record as ``# key: value`` lines, the comment header of a TSV table."""
    return "".join(f"# {key}: {value}\n" for key, value in record.items())


def write_tsv(table, path: str | os.PathLike, record: Mapping[str, str | int]) -> None:
    """Write a pandas table as TSV preceded by its provenance header (read with comment='#')."""
    with atomic_path(path) as partial, open(partial, "w") as handle:
        handle.write(provenance_header(record))
        table.to_csv(handle, sep="\t", index=False, float_format="%.6g")


# Writing result files whole or not at all, and reading them with an error that says the fix.

DISK_FULL_BYTES = 1 << 20
"""A write that fails with less than this left on its file system failed for want of space."""


@contextmanager
def atomic_path(path: str | os.PathLike, shared: bool = False) -> Iterator[Path]:
    """A temporary sibling of ``path`` to write to, renamed onto ``path`` once the body succeeds.

    The temporary file is ``<stem>.partial<suffix>`` in the same directory (created if needed),
    so writers that go by the suffix see the right one and the rename is atomic: a step killed,
    failing or out of disk mid-write leaves no partial file at ``path``, and a file already there
    stays untouched. On an error the temporary file is deleted and the error re-raised; when the
    disk is full (less than ``DISK_FULL_BYTES`` left) it is re-raised as an ``OSError`` ENOSPC
    naming ``path``, since netCDF and torch report a failed write only as "HDF error" or
    "unexpected pos". A SIGKILL can leave the temporary file; the next write replaces it.
    With ``shared`` (several writers of the same content at once, as every job of a run saves
    the run's config), each writer has its own ``<stem>.partial.<pid>-<thread><suffix>``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = f".{os.getpid()}-{threading.get_ident()}" if shared else ""
    partial = path.with_name(f"{path.stem}.partial{writer}{path.suffix}")
    try:
        yield partial
        os.replace(partial, path)
    except BaseException as error:
        full = isinstance(error, Exception) and (
            getattr(error, "errno", None) == errno.ENOSPC
            or shutil.disk_usage(path.parent).free < DISK_FULL_BYTES)
        partial.unlink(missing_ok=True)
        if full:
            raise OSError(errno.ENOSPC, f"No space left on device: {path} was not written "
                                        f"({_short_error(error)}); free space in "
                                        f"{path.parent} and rerun") from error
        raise


_READ_ERRORS = (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError,
                zipfile.BadZipFile, SyntaxError)  # PIL reports a broken PNG as a SyntaxError
"""What netCDF4, torch, pickle, pandas and PIL raise for a file they cannot read."""


def unreadable_file(path: str | os.PathLike, error: BaseException) -> UnreadableFileError:
    """The error for ``path`` that failed to read with ``error``."""
    return UnreadableFileError(f"{path} cannot be read (truncated or corrupted: "
                               f"{_short_error(error)}); delete it and rerun snakemake, which "
                               "remakes it")


@contextmanager
def reading(path: str | os.PathLike) -> Iterator[None]:
    """Raise a failure to read ``path`` in the body as :func:`unreadable_file`; a missing file
    or one without permission keeps its own error."""
    try:
        yield
    except (FileNotFoundError, PermissionError, UnreadableFileError):
        raise
    except _READ_ERRORS as error:
        raise unreadable_file(path, error) from error


def verify_zip(path: str | os.PathLike) -> None:
    """Check every member of a zip archive (a ``torch.save`` file) against its CRC-32: torch
    itself loads an archive with overwritten bytes without a word."""
    with zipfile.ZipFile(path) as archive:
        damaged = archive.testzip()
    if damaged is not None:
        raise zipfile.BadZipFile(f"member {damaged} fails its CRC-32 check")


def _short_error(error: BaseException, limit: int = 120) -> str:
    """``Type: first line of the message``, at most ``limit`` characters."""
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


# Reading records back and tracing an artifact's lineage.

RECORD_KEYS = ("created_at", "git_commit", "git_dirty", "code", "rule", "wildcards", "config",
               "settings_sha256", "config_sha256", "seed", "input_sha256", "packages", "python",
               "host", "slurm_job_id", "training")
"""The keys of a record, in the order ``collect_provenance`` writes them; ``training`` (a
trained model's and its history's: whether it met its convergence target, as JSON) last."""

REQUIRED_KEYS = ("created_at", "git_commit", "input_sha256")
"""A file holds a record when it has at least these keys (``macros.tex`` omits ``config``)."""

PNG_PREFIX = "losskernel:"
_COMMENT_LINE = re.compile(r"^[#%]\s*(\w+): ?(.*)$")

InputStatus = Literal["ok", "changed", "missing"]


class ProvenanceError(ValueError):
    """A file holds no readable provenance record."""


class UnreadableFileError(ProvenanceError):
    """A file that exists but cannot be read at all: truncated or corrupted. Its message names
    the file and the fix (:func:`unreadable_file`); the command line prints it as one line."""


def read_provenance(path: str | os.PathLike) -> dict[str, str]:
    """The provenance record of an artifact, read by its suffix, every value as a string.

    ``.nc``: global attributes; ``.tsv``: the ``# key: value`` header; ``.png``: text chunks
    ``losskernel:<key>``; ``.pt``: the dict's ``provenance`` entry (unpickled, so read only
    files you trust); ``.tex``: ``% key: value`` comment lines. Only the keys of ``RECORD_KEYS``
    are returned, in that order (a trace file's ``sgld_*`` attributes are not). Raises
    ``FileNotFoundError`` for a missing file, ``ProvenanceError`` (a ``ValueError``) for a
    file of another kind or without a record, and its ``UnreadableFileError`` for a file that
    cannot be read (truncated or corrupted).
    """
    path = Path(path)
    readers = {".nc": _netcdf_attrs, ".tsv": _comment_header, ".png": _png_text,
               ".pt": _torch_provenance, ".tex": _comment_header}
    if path.suffix not in readers:
        raise ProvenanceError(f"{path}: cannot read a provenance record from a {path.suffix!r} "
                              f"file; supported: {', '.join(readers)}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    with reading(path):
        found = readers[path.suffix](path)
    absent = [key for key in REQUIRED_KEYS if key not in found]
    if absent:
        raise ProvenanceError(f"{path} holds no provenance record (missing {', '.join(absent)}); "
                              "was it written by the losskernel workflow?")
    return {key: str(found[key]) for key in RECORD_KEYS if key in found}


def _netcdf_attrs(path: Path) -> Mapping[str, object]:
    import netCDF4

    with netCDF4.Dataset(path) as dataset:
        return {key: dataset.getncattr(key) for key in dataset.ncattrs()}


def _comment_header(path: Path) -> Mapping[str, str]:
    """``key: value`` pairs of the leading ``#`` (TSV) or ``%`` (LaTeX) comment lines."""
    found = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.startswith(("#", "%")):
                break
            if match := _COMMENT_LINE.match(line.rstrip("\n")):
                found[match[1]] = match[2]
    return found


def _png_text(path: Path) -> Mapping[str, str]:
    from PIL import Image

    with Image.open(path) as image:
        text = dict(getattr(image, "text", {}))
    return {key.removeprefix(PNG_PREFIX): value for key, value in text.items()
            if key.startswith(PNG_PREFIX)}


def _torch_provenance(path: Path) -> Mapping[str, object]:
    import torch

    # mmap: the weights of a large checkpoint file are not read
    content = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    record = content.get("provenance") if isinstance(content, Mapping) else None
    return record if isinstance(record, Mapping) else {}


@dataclass(frozen=True)
class InputCheck:
    """One recorded input of an artifact against the file on disk now.

    ``status`` is ``ok`` (same sha256), ``changed`` (different) or ``missing`` (no such file,
    ``current_sha256`` is then empty).
    """

    path: str
    recorded_sha256: str
    current_sha256: str
    status: InputStatus


@dataclass(frozen=True)
class Node:
    """One artifact of a lineage: who made it (rule, wildcards, seed, code, config, machine) and
    how its recorded inputs compare with the files on disk. ``depth`` is 0 for the artifact
    asked about, 1 for its inputs, and so on. ``config_sha256`` is the hash of the whole config
    of the run that made it, ``settings`` the job's slice of it (JSON) and ``settings_sha256``
    that slice's hash; an older record (no ``settings_sha256``) has ``config_sha256`` empty and
    ``older_record`` set, and its recorded ``config_sha256``, the settings' hash, as
    ``settings_sha256``. ``unreadable`` is the error of a file that cannot be read (truncated or
    corrupted); its other fields are then empty. A data manifest (:mod:`losskernel.manifest`)
    has ``data``: each outside file it lists, re-hashed now."""

    path: str
    depth: int
    rule: str = ""
    wildcards: str = ""
    seed: str = ""
    git_commit: str = ""
    git_dirty: bool = False
    code: str = ""
    config_sha256: str = ""
    settings_sha256: str = ""
    settings: str = ""
    older_record: bool = False
    host: str = ""
    slurm_job_id: str = ""
    created_at: str = ""
    inputs: tuple[InputCheck, ...] = ()
    unreadable: str = ""
    data: tuple[DataCheck, ...] = ()


def lineage(path: str | os.PathLike, workdir: str | os.PathLike = ".") -> list[Node]:
    """The artifact at ``path``, then depth-first each recorded input that has a record.

    ``path`` is relative to the current directory; the recorded input paths are relative to
    ``workdir``, the directory the workflow ran in. Every recorded input is hashed and compared
    with its recorded sha256; an input without a record (raw data, another file kind) is checked
    but not traced further; a file that cannot be read, ``path`` included, is a node with its
    error in ``unreadable``. Each file is visited once, so an input shared by several artifacts
    appears as one node, under the first artifact that names it. A data manifest's files (the
    outside data, :mod:`losskernel.manifest`) are re-hashed too (a tree's through its hash
    cache), into the node's ``data``.
    """
    workdir = Path(workdir)
    nodes: list[Node] = []
    visited: set[Path] = set()
    hashes: dict[Path, str] = {}

    def current_sha256(file: Path) -> str:
        if file not in hashes:
            hashes[file] = file_sha256(file) if file.is_file() else ""
        return hashes[file]

    def visit(label: str, file: Path, depth: int) -> None:
        visited.add(file.resolve())
        try:
            record = read_provenance(file)
        except UnreadableFileError as error:
            nodes.append(Node(path=label, depth=depth, unreadable=str(error)))
            return
        except ProvenanceError:
            if depth == 0:
                raise
            return  # an input without a record
        recorded = _json_object(record["input_sha256"], f"{label}: input_sha256")
        checks = []
        for name, sha256 in recorded.items():
            now = current_sha256(workdir / name)
            status = "missing" if not now else "ok" if now == sha256 else "changed"
            checks.append(InputCheck(name, str(sha256), now, status))
        older = "settings_sha256" not in record
        data = tuple(_data_checks(file, hashes)) if file.suffix == ".tsv" else ()
        nodes.append(Node(
            path=label, depth=depth, rule=record.get("rule", ""),
            wildcards=record.get("wildcards", ""), seed=record.get("seed", ""),
            git_commit=record.get("git_commit", ""), git_dirty=record.get("git_dirty") == "1",
            code=record.get("code", ""),
            config_sha256="" if older else record.get("config_sha256", ""),
            settings_sha256=record.get("config_sha256" if older else "settings_sha256", ""),
            settings=record.get("config", ""), older_record=older,
            host=record.get("host", ""), slurm_job_id=record.get("slurm_job_id", ""),
            created_at=record.get("created_at", ""), inputs=tuple(checks), data=data))
        for check in checks:
            file_in = workdir / check.path
            if check.status != "missing" and file_in.resolve() not in visited:
                visit(check.path, file_in, depth + 1)

    visit(str(path), Path(path), 0)
    return nodes


def _data_checks(file: Path, hashes: dict[Path, str]) -> list[DataCheck]:
    """The outside files a manifest lists, each re-hashed (none when ``file`` is another
    table)."""
    import pandas as pd

    from losskernel.manifest import check_manifest, hash_cache_path, is_manifest

    read = functools.partial(pd.read_csv, file, sep="\t", comment="#", dtype=str,
                             keep_default_na=False)
    if not is_manifest(read(nrows=0)):  # the header alone: most tables are no manifest
        return []
    return check_manifest(read(), hashes, cache=hash_cache_path(file))


def _json_object(text: str, what: str) -> dict[str, object]:
    try:
        value = json.loads(text) if text else {}
    except json.JSONDecodeError as error:
        raise ProvenanceError(f"{what} is not JSON: {text[:80]!r}") from error
    if not isinstance(value, dict):
        raise ProvenanceError(f"{what} must be a JSON object, got {text[:80]!r}")
    return value


def format_lineage(nodes: Sequence[Node], show_config: bool = False,
                   run_configs: str | os.PathLike = RUN_CONFIG_DIR) -> str:
    """A lineage as an indented tree, one block per artifact, then a summary.

    Each block is the artifact's path; a line with rule, wildcards, seed, the sha256 of its
    run's config and of its settings (an older record has no run config: ``config sha256 -
    (older record)``); a line with git commit (``+dirty`` when the work tree had uncommitted
    changes; ``UNKNOWN (why)`` when the record has none), the sha256 of its code's fingerprint
    (``code``, :mod:`losskernel.fingerprint`), host, SLURM job and creation time; with
    ``show_config`` the settings and the fingerprint; then one line per recorded input: ``ok``,
    ``CHANGED  since: recorded sha256 ..., now ...`` or ``MISSING``. An input traced under an
    earlier artifact is marked ``(traced above)``. Hashes show their first 12 characters. A file
    that cannot be read has one line, ``UNREADABLE`` and the error. The summary
    (:func:`_summary`) ends the text; with ``show_config`` it names each run config's file in
    ``run_configs``.
    """
    lines = []
    for index, node in enumerate(nodes):
        pad = "  " * node.depth
        lines.append(f"{pad}* {node.path}")
        if node.unreadable:
            lines.append(f"{pad}    UNREADABLE  {node.unreadable}")
            continue
        run_config = (_short(node.config_sha256) or "-") + (
            " (older record)" if node.older_record else "")
        lines.append(f"{pad}    rule {node.rule or '-'} ({_wildcards_text(node.wildcards)}), "
                     f"seed {node.seed or '-'}, config sha256 {run_config}, "
                     f"settings sha256 {_short(node.settings_sha256) or '-'}")
        code = (_short(hashlib.sha256(node.code.encode()).hexdigest())
                if node.code not in ("", "{}") else "-")
        lines.append(f"{pad}    commit {_commit_text(node)}, code {code}, host {node.host or '-'}, "
                     f"slurm job {node.slurm_job_id or '-'}, created {node.created_at or '-'}")
        if show_config:
            lines.append(f"{pad}    settings {node.settings or '(not recorded)'}")
            lines.append(f"{pad}    code {node.code or '(not recorded)'}")
        earlier = {other.path for other in nodes[:index]}
        for check in node.inputs:
            lines.append(f"{pad}    input {_check_text(check)}"
                         + ("  (traced above)" if check.path in earlier else ""))
    lines.extend(_data_text(nodes))
    lines.extend(_summary(nodes, run_configs if show_config else None))
    return "\n".join(lines) + "\n"


LISTED_DATA_FILES = 20
"""A data source with more files than this shows only those that differ."""


def _data_text(nodes: Sequence[Node]) -> list[str]:
    """The outside data at the bottom of a lineage: per manifest, its source, origins and
    files, each ``ok``, ``CHANGED``, ``MISSING`` or ``ADDED`` (a tree's new file), with its
    sha256 as recorded."""
    manifests = [node for node in nodes if node.data]
    if not manifests:
        return []
    lines = ["data (outside files the lineage read, re-hashed now):"]
    for node in manifests:
        origins = sorted({check.origin for check in node.data if check.status != "added"})
        recorded = [check for check in node.data if check.status != "added"]
        lines.append(f"  {node.data[0].source}: {_plural(len(recorded), 'file')} "
                     f"({sum(check.bytes for check in recorded):,} bytes), from "
                     f"{'; '.join(origins)}; manifest {node.path}")
        shown = [check for check in node.data
                 if len(node.data) <= LISTED_DATA_FILES or check.status != "ok"]
        for check in shown:
            lines.append(f"    {_data_check_text(check)}")
        if len(shown) < len(node.data):
            lines.append(f"    ok       the other {len(node.data) - len(shown):,} files")
    return lines


def _data_check_text(check: DataCheck) -> str:
    sha256 = _short(check.recorded_sha256)
    if check.status == "ok":
        return f"ok       {check.path}  sha256 {sha256}"
    if check.status == "changed":
        return (f"CHANGED  {check.path}  since: recorded sha256 {sha256}, "
                f"now {_short(check.current_sha256)}")
    if check.status == "missing":
        return f"MISSING  {check.path}  (recorded sha256 {sha256}, no such file now)"
    return f"ADDED    {check.path}  (not in the manifest: the data has a file it did not have)"


def _short(sha256: str, length: int = 12) -> str:
    return sha256[:length] + "..." if len(sha256) > length else sha256


def _commit_text(node: Node) -> str:
    """``0123456789ab...`` (``+dirty``), or ``UNKNOWN (why)`` for a record without a commit."""
    if not is_commit(node.git_commit):
        why = node.git_commit.removeprefix(f"{UNKNOWN_COMMIT}: ") or "none recorded"
        return f"UNKNOWN ({why})"
    return _short(node.git_commit) + ("+dirty" if node.git_dirty else "")


def _check_text(check: InputCheck) -> str:
    if check.status == "ok":
        return f"ok       {check.path}"
    if check.status == "changed":
        return (f"CHANGED  {check.path}  since: recorded sha256 "
                f"{_short(check.recorded_sha256)}, now {_short(check.current_sha256)}")
    return (f"MISSING  {check.path}  (recorded sha256 {_short(check.recorded_sha256)}, "
            "no such file now)")


def _wildcards_text(wildcards: str) -> str:
    """``{"experiment":"toy","run":"seed0"}`` as ``experiment=toy, run=seed0``."""
    try:
        values = json.loads(wildcards) if wildcards else {}
    except json.JSONDecodeError:
        return wildcards
    if not isinstance(values, dict):
        return wildcards
    return ", ".join(f"{key}={value}" for key, value in values.items()) or "no wildcards"


def _summary(nodes: Sequence[Node], run_configs: str | os.PathLike | None = None
             ) -> list[str]:
    """The summary lines of a lineage; the verdict line is the last.

    The verdict counts artifacts and inputs and names the git commits and the run configs (by
    sha256); it is ``CODE VERSION UNKNOWN`` when every input matches but some artifact's
    record has no commit. When the artifacts come from more than one run config, or some
    record none (an older record, or one made outside the workflow), the lines before it say
    which artifacts came from which: an artifact whose job was not rerun keeps the config of
    the earlier run that made it. With ``run_configs`` (the directory of
    :func:`save_run_config`), each run config's file is named and checked against its hash.
    """
    checks = [check for node in nodes for check in node.inputs]
    changed = sum(check.status == "changed" for check in checks)
    missing = sum(check.status == "missing" for check in checks)
    data = [check for node in nodes for check in node.data]
    data_differ = sum(check.status != "ok" for check in data)
    unreadable = sum(bool(node.unreadable) for node in nodes)
    readable = [node for node in nodes if not node.unreadable]
    commits = sorted({_commit_text(node) for node in readable})
    by_config: dict[str, list[str]] = {}
    for node in readable:
        by_config.setdefault(node.config_sha256, []).append(node.path)
    configs = sorted(sha256 for sha256 in by_config if sha256)
    unrecorded = len(by_config.get("", []))
    older = sum(node.older_record for node in readable)
    unknown = sum(not is_commit(node.git_commit) for node in readable)
    verdict = ("UNREADABLE FILES" if unreadable else "INPUTS DIFFER" if changed + missing
               else "DATA DIFFERS" if data_differ
               else "CODE VERSION UNKNOWN" if unknown else "all recorded inputs match")
    counts = f"{changed} changed, {missing} missing" + (
        f"; {len(data)} data files checked, {data_differ} differ" if data else "") + (
        f", {unreadable} unreadable" if unreadable else "") + (
        f", {_plural(unknown, 'artifact')} without a known commit" if unknown else "")
    lines = []
    if len(configs) > 1 or (configs and unrecorded):
        lines.append(f"artifacts by run config: {_plural(len(configs), 'run config')}"
                     + (" and artifacts without one" if unrecorded else "")
                     + "; an artifact whose job was not rerun keeps the config of the run "
                       "that made it")
        groups = sorted(by_config.items(), key=lambda group: (len(group[1]), group[0]))
        for index, (sha256, paths) in enumerate(groups):
            name = _short(sha256) if sha256 else "none recorded"
            listed = (f"the other {_plural(len(paths), 'artifact')}" if index == len(groups) - 1
                      else f"{_plural(len(paths), 'artifact')}: {', '.join(paths)}")
            lines.append(f"  {name}: {listed}")
    if run_configs is not None:
        lines.extend(f"run config {_short(sha256)}: {_run_config_text(sha256, run_configs)}"
                     for sha256 in configs)
    recorded = (f"run config sha256 ({len(configs)}): {', '.join(map(_short, configs))}"
                if configs else "run config sha256: none recorded")
    if configs and unrecorded:
        recorded += f", none recorded for {_plural(unrecorded, 'artifact')}"
    if older:
        recorded += (f" ({_plural(older, 'older record')}: the config sha256 recorded is the "
                     "settings sha256)")
    lines.append(f"{verdict}: {len(nodes)} artifacts, {len(checks)} inputs checked, {counts}; "
                 f"git commits: {', '.join(commits)}; {recorded}")
    return lines


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


def _run_config_text(sha256: str, directory: str | os.PathLike) -> str:
    """The file of a run config and whether it holds the config of that hash."""
    import yaml

    path = run_config_path(sha256, directory)
    if not path.is_file():
        return f"{path} (MISSING: not saved, or results/provenance/ was deleted)"
    try:
        saved = config_sha256(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as error:
        return f"{path} (UNREADABLE: {_short_error(error)})"
    return str(path) if saved == sha256 else (
        f"{path} (CHANGED: its content hashes to {_short(saved)})")
