"""A Workflow Run RO-Crate of a run: what ran, on what, with which code, and what it made.

The crate is read from files alone, the records every artifact carries
(:mod:`losskernel.provenance`), the data manifests ``results/data/<source>.tsv`` and the
workflow's own files; it knows nothing of Snakemake's API. It conforms to RO-Crate 1.1,
Workflow RO-Crate 1.0 and the Process, Workflow and Provenance Run Crate profiles 0.5
(https://w3id.org/ro/wfrun), as the Provenance Run Crate lays a run out:

- the workflow, ``Snakefile`` (``File``, ``SoftwareSourceCode``, ``ComputationalWorkflow``,
  ``HowTo``), in the Snakemake language at the version the records name;
- each rule is a tool (``SoftwareApplication`` ``#rule/<name>``), a part of the workflow,
  and a ``HowToStep`` ``#step/<name>`` of it; the rule's parts are its rule file, script and
  conda environment (the crate holds every rule file, script, schema and environment);
- each job, the files written together under one record (same rule, wildcards and
  ``created_at``), is a ``CreateAction`` ``#job/<n>`` with the rule as ``instrument``, its
  recorded inputs as ``object`` and its outputs as ``result``, ``startTime`` its record's
  ``created_at`` and ``endTime`` its last output's modification time; its record's commit,
  code fingerprint (sha256 of ``code``), settings, config and seed are ``PropertyValue``s
  (``additionalProperty``), its Snakemake benchmark its ``resourceUsage``, and its host a
  ``VirtualLocation`` (``location``); a ``ControlAction`` links it to its step;
- the run is a ``CreateAction`` ``#run`` with the workflow as ``instrument``, the run
  configs and the outside data as ``object`` and the files no job of the crate reads
  (figures, tables, macros, paper) as ``result``; an ``OrganizeAction`` says Snakemake ran it;
- each package a record names is a ``SoftwareApplication`` with its version (its PyPI
  release as id), required by the workflow; each outside data file (from the manifests) a
  file entity with its size, sha256 and origin.

Files of the run up to ``max_included_bytes`` are in the zip; larger ones (model weights,
traces) and the outside data are described by ``file://`` URIs, with size and sha256, without
their bytes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import ClassVar

from losskernel.provenance import (
    RUN_CONFIG_DIR,
    ProvenanceError,
    atomic_path,
    file_sha256,
    lineage,
    read_provenance,
    run_config_path,
)

PROFILES = {
    "process": "https://w3id.org/ro/wfrun/process/0.5",
    "workflow": "https://w3id.org/ro/wfrun/workflow/0.5",
    "provenance": "https://w3id.org/ro/wfrun/provenance/0.5",
    "workflow-ro-crate": "https://w3id.org/workflowhub/workflow-ro-crate/1.0",
}
"""The profiles the crate conforms to, besides RO-Crate 1.1, as their versioned permalinks."""

CONTEXT_URL = "https://w3id.org/ro/crate/1.1/context"
CONTEXT_FILE = "ro-crate-1.1-context.jsonld"
"""The RO-Crate 1.1 JSON-LD context shipped in ``losskernel/crate_context`` (see its README)."""

WORKFLOW_RUN_TERMS = {
    term: f"https://w3id.org/ro/terms/workflow-run#{term}"
    for term in ("sha256", "resourceUsage")
}
"""Terms of the Workflow Run Crate that the 1.1 context lacks, written into the crate's own
context with the IRIs of https://w3id.org/ro/terms/workflow-run/context: naming that remote
context instead would make every reader, the validator too, fetch it."""

RECORD_SUFFIXES = (".nc", ".tsv", ".png", ".pt", ".tex")
"""The kinds of file that carry a record (:func:`losskernel.provenance.read_provenance`)."""

RUN_DIRECTORIES = ("results", "paper")
"""Where a run writes, relative to its working directory: ``paper/generated/macros.tex`` and
``paper/main.pdf`` are outputs too."""
UNRECORDED_OUTPUTS = {"paper/main.pdf": "paper"}
"""Outputs that carry no record, by the rule that writes them beside a recorded output: the
paper's PDF is a result of the ``paper`` job (whose ``figure-provenance.tex`` has a record)."""

WORKFLOW_FILES = {"workflow/rules/*.smk": "the workflow's rules",
                  "workflow/scripts/*.py": "the script of a rule",
                  "workflow/schemas/*.yaml": "a JSON Schema of the config",
                  "envs/*.yaml": "a conda environment of the rules"}
"""The workflow's files in its checkout besides the Snakefile, as globs, and what each is; all
go into the crate as parts of the workflow."""

DEFAULT_MAX_INCLUDED_BYTES = 1 << 20
"""Files of the run up to this size go into the zip; larger ones are described only."""

DEFAULT_MAX_LISTED_DATA_FILES = 1000
"""A data source with more files (an ImageNet tree) is one ``Dataset`` entity, its files
listed, with their sha256, by its manifest (which the crate holds)."""

ENCODING_FORMATS = {".tsv": "text/tab-separated-values", ".png": "image/png",
                    ".pdf": "application/pdf", ".tex": "application/x-tex",
                    ".nc": "application/x-netcdf", ".yaml": "application/yaml",
                    ".py": "text/x-python", ".smk": "text/plain", ".pt": "application/zip",
                    ".gz": "application/gzip", ".md": "text/markdown"}

PROJECT_LICENSE = "https://spdx.org/licenses/MIT"
BIOSCHEMAS_WORKFLOW = "https://bioschemas.org/profiles/ComputationalWorkflow/1.0-RELEASE"
COMPLETED = "http://schema.org/CompletedActionStatus"
"""An action's ``actionStatus``, as text: the Process Run Crate checks the string."""


@dataclass(frozen=True)
class CrateSummary:
    """What :func:`build_crate` wrote: the zip, its size, how many jobs (``actions``, not
    counting the run's own action), file entities (``files``) and of them how many are in the
    zip (``included``), data files from the manifests, and the seconds it took."""

    path: Path
    bytes: int
    actions: int
    files: int
    included: int
    data_files: int
    seconds: float


@dataclass(frozen=True)
class Job:
    """The files one job wrote: they carry the same record. ``outputs`` are relative to the
    working directory; ``inputs`` are the record's ``input_sha256`` (path -> sha256)."""

    rule: str
    wildcards: str
    created_at: str
    record: Mapping[str, str]
    outputs: tuple[str, ...]
    inputs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DataFile:
    """One row of a data manifest: an outside file, its sha256 and size, and where it came
    from. ``location`` is its absolute path."""

    source: str
    location: Path
    bytes: int
    sha256: str
    origin: str


@dataclass(frozen=True)
class CrateValidation:
    """roc-validator's verdict on a crate: ``passed`` at ``severity`` for ``profile``, and
    one line per issue (``SEVERITY check-identifier: message (entity, property)``)."""

    profile: str
    severity: str
    passed: bool
    issues: tuple[str, ...]


def build_crate(workdir: Path, destination: Path, artifacts: Sequence[Path] | None = None, *,
                checkout: Path | None = None,
                max_included_bytes: int = DEFAULT_MAX_INCLUDED_BYTES,
                max_listed_data_files: int = DEFAULT_MAX_LISTED_DATA_FILES) -> CrateSummary:
    """Write the zipped Workflow Run RO-Crate of the run in ``workdir`` to ``destination``.

    With ``artifacts`` None, the crate holds every file under ``workdir/results`` and
    ``workdir/paper`` that carries a readable record; otherwise those files (paths relative to
    ``workdir``, or absolute) and their lineage (the recorded inputs, followed recursively).
    The workflow's files are read from ``checkout`` (the directory holding the ``Snakefile``;
    ``workdir`` by default, as when snakemake runs without ``--directory``). A file of the run
    larger than ``max_included_bytes`` is described (``file://`` URI, size, sha256) without its
    bytes; a data source of more than ``max_listed_data_files`` files is one ``Dataset``.
    """
    from rocrate.rocrate import ROCrate

    started = time.perf_counter()
    workdir = Path(workdir).resolve()
    checkout = Path(checkout).resolve() if checkout else workdir
    if not (checkout / "Snakefile").is_file():
        raise FileNotFoundError(f"{checkout / 'Snakefile'}: no Snakefile; pass checkout= the "
                                "directory of the workflow's checkout")
    jobs = with_unrecorded_outputs(
        workdir, group_jobs(read_records(workdir, collect_artifacts(workdir, artifacts))))
    if not jobs:
        raise ProvenanceError(f"{workdir}: no file with a provenance record under "
                              f"{' or '.join(RUN_DIRECTORIES)}; has the workflow run here?")
    data = read_manifests(workdir, [path for job in jobs for path in job.outputs])

    crate = ROCrate(version="1.1", gen_preview=True)  # ro-crate-preview.html, for people
    crate.metadata.extra_terms.update(WORKFLOW_RUN_TERMS)
    files = _FileEntities(crate, workdir, max_included_bytes)
    workflow = _add_workflow(crate, checkout, jobs)
    configs = [files.add(path) for path in run_config_paths(workdir, jobs)]
    data_entities = _add_data(crate, files, data, max_listed_data_files)
    software = _add_software(crate, jobs)
    workflow["softwareRequirements"] = list(software.values())
    benchmarks = benchmark_patterns(checkout)
    job_actions = [_add_job(crate, files, index, job, benchmarks.get(job.rule, ""))
                   for index, job in enumerate(jobs, start=1)]
    run = _add_run(crate, workflow, jobs, job_actions, files, configs + data_entities)
    _add_organize(crate, software["snakemake"], run, job_actions)
    _describe_root(crate, workdir, run, job_actions)
    _add_readme(crate, workdir, jobs, files)

    destination = Path(destination)
    with atomic_path(destination) as partial:  # a killed job leaves no half zip
        crate.write_zip(partial)
    return CrateSummary(path=destination, bytes=destination.stat().st_size,
                        actions=len(job_actions), files=files.count, included=files.included,
                        data_files=len(data), seconds=time.perf_counter() - started)


# Reading the run: artifacts, their records, jobs, run configs and data manifests.

def collect_artifacts(workdir: Path, artifacts: Sequence[Path] | None = None) -> list[str]:
    """The files of the crate, relative to ``workdir``, sorted: every file that carries a
    record under the run's directories, or ``artifacts`` and the files of their lineage."""
    if artifacts is None:
        found = (path for directory in RUN_DIRECTORIES
                 for path in (workdir / directory).rglob("*")
                 if path.suffix in RECORD_SUFFIXES and path.is_file()
                 and ".partial" not in path.name)
        return sorted(str(path.relative_to(workdir)) for path in found if _has_record(path))
    chosen: set[str] = set()
    for artifact in artifacts:
        absolute = artifact if Path(artifact).is_absolute() else workdir / artifact
        for node in lineage(absolute, workdir):
            if not node.unreadable:
                path = Path(node.path)
                chosen.add(str(path.relative_to(workdir) if path.is_absolute() else path))
    return sorted(chosen)


def _has_record(path: Path) -> bool:
    try:
        read_provenance(path)
    except ProvenanceError:  # a file without a record, or one that cannot be read
        return False
    return True


def read_records(workdir: Path, paths: Iterable[str]) -> dict[str, dict[str, str]]:
    """Each file's record, by its path relative to ``workdir``."""
    return {path: read_provenance(workdir / path) for path in paths}


def group_jobs(records: Mapping[str, Mapping[str, str]]) -> list[Job]:
    """The jobs that wrote the files: one per (rule, wildcards, created_at), since every output
    of a job carries the identical record; in the order they started."""
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for path, record in records.items():
        key = (record.get("rule", ""), record.get("wildcards", ""), record["created_at"])
        grouped.setdefault(key, []).append(path)
    jobs = []
    for (rule, wildcards, created_at), outputs in grouped.items():
        record = records[outputs[0]]
        inputs = json.loads(record.get("input_sha256") or "{}")
        jobs.append(Job(rule=rule, wildcards=wildcards, created_at=created_at, record=record,
                        outputs=tuple(sorted(outputs)), inputs=dict(inputs)))
    return sorted(jobs, key=lambda job: (job.created_at, job.rule, job.wildcards))


def with_unrecorded_outputs(workdir: Path, jobs: Sequence[Job]) -> list[Job]:
    """``jobs``, each with the outputs of ``UNRECORDED_OUTPUTS`` its rule wrote added."""
    extended = []
    for job in jobs:
        extra = tuple(path for path, rule in UNRECORDED_OUTPUTS.items()
                      if rule == job.rule and (workdir / path).is_file())
        extended.append(dataclasses.replace(job, outputs=job.outputs + extra) if extra else job)
    return extended


def run_config_paths(workdir: Path, jobs: Sequence[Job]) -> list[str]:
    """The run configs the jobs' records name that exist, relative to ``workdir``."""
    hashes = sorted({job.record.get("config_sha256", "") for job in jobs} - {""})
    paths = [str(run_config_path(sha256, RUN_CONFIG_DIR)) for sha256 in hashes]
    return [path for path in paths if (workdir / path).is_file()]


def read_manifests(workdir: Path, paths: Iterable[str]) -> list[DataFile]:
    """The rows of the data manifests among ``paths`` (``results/data/<source>.tsv``)."""
    import pandas as pd

    rows = []
    for path in sorted(paths):
        if not (path.startswith("results/data/") and path.endswith(".tsv")):
            continue
        table = pd.read_csv(workdir / path, sep="\t", comment="#", dtype=str,
                            keep_default_na=False)
        for row in table.itertuples(index=False):
            location = Path(row.root) / row.path if row.root else Path(row.path)
            rows.append(DataFile(source=row.source, location=location, bytes=int(row.bytes),
                                 sha256=row.sha256, origin=row.origin))
    return rows


# Writing the entities.

class _FileEntities:
    """The crate's file entities, one per path, in the zip up to ``max_included_bytes``."""

    def __init__(self, crate, workdir: Path, max_included_bytes: int) -> None:
        self.crate = crate
        self.workdir = workdir
        self.max_included_bytes = max_included_bytes
        self.entities: dict[str, object] = {}
        self.included = 0

    @property
    def count(self) -> int:
        return len(self.entities)

    def add(self, path: str, sha256: str = "") -> object:
        """The entity of ``path`` (relative to the working directory, or absolute), added on
        first use: in the zip when it is a file of the run no larger than the threshold, else
        by its ``file://`` URI; a recorded input that is gone keeps its recorded sha256."""
        absolute = (self.workdir / path).resolve()
        inside = absolute.is_relative_to(self.workdir)
        key = str(absolute.relative_to(self.workdir)) if inside else absolute.as_uri()
        if key in self.entities:
            return self.entities[key]
        exists = absolute.is_file()
        size = absolute.stat().st_size if exists else 0
        properties = {"name": key if inside else str(absolute),
                      "sha256": file_sha256(absolute) if exists else sha256}
        properties["encodingFormat"] = ENCODING_FORMATS.get(absolute.suffix,
                                                            "application/octet-stream")
        if exists:
            properties["contentSize"] = str(size)
            properties["dateModified"] = _mtime(absolute)
        if inside and exists and size <= self.max_included_bytes:
            entity = self.crate.add_file(absolute, dest_path=key, properties=properties)
            self.included += 1
        else:
            properties["description"] = (
                f"Not in the crate: {size} bytes, above the crate's limit of "
                f"{self.max_included_bytes}" if inside and exists
                else "Not in the crate: outside the run's directory" if exists
                else "Not in the crate: the file was gone when the crate was made")
            entity = self.crate.add_file(absolute.as_uri(), fetch_remote=False,
                                         properties=properties)
        self.entities[key] = entity
        return entity


def _mtime(path: Path) -> str:
    stamp = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    return stamp.isoformat(timespec="seconds")


def _add_workflow(crate, checkout: Path, jobs: Sequence[Job]):
    """The Snakefile as the main workflow, the checkout's workflow files, and each rule of
    ``jobs`` as a tool and a step of it.

    The Provenance Run Crate wants every part (``hasPart``) of the workflow to be a tool that
    some job ran, so the workflow's parts are its rules; a rule's parts are the files that
    define it (its rule file, script and conda environment), and every workflow file is a part
    of the crate.
    """
    from rocrate.model.computationalworkflow import ComputationalWorkflow
    from rocrate.model.contextentity import ContextEntity

    class WorkflowWithSteps(ComputationalWorkflow):
        """A workflow that lists its steps: a ``HowTo`` too (Provenance Run Crate)."""

        TYPES: ClassVar[list[str]] = [*ComputationalWorkflow.TYPES, "HowTo"]

    commit = _single_commit(jobs)
    workflow = crate.add_workflow(checkout / "Snakefile", dest_path="Snakefile", main=True,
                                  lang="snakemake",
                                  lang_version=_package_version(jobs, "snakemake") or None,
                                  cls=WorkflowWithSteps)
    workflow["name"] = "losskernel"
    workflow["description"] = "The Snakemake workflow of losskernel: its entry Snakefile"
    workflow["sha256"] = file_sha256(checkout / "Snakefile")
    workflow["encodingFormat"] = "text/plain"
    workflow["conformsTo"] = {"@id": BIOSCHEMAS_WORKFLOW}
    for pattern, what in WORKFLOW_FILES.items():
        for path in sorted(checkout.glob(pattern)):
            relative = str(path.relative_to(checkout))
            source = crate.add_file(path, dest_path=relative, properties={
                "@type": ["File", "SoftwareSourceCode"], "name": relative, "description": what,
                "sha256": file_sha256(path),
                "encodingFormat": ENCODING_FORMATS.get(path.suffix, "text/plain")})
            if commit:
                source["version"] = commit
    if commit:
        workflow["version"] = commit
    definitions = rule_definitions(checkout)
    tools, steps = [], []
    for position, rule in enumerate(sorted({job.rule for job in jobs}), start=1):
        files = [crate.get(path) for path in definitions.get(rule, ()) if crate.get(path)]
        tool = crate.add(ContextEntity(crate, f"#rule/{rule}", properties={
            "@type": "SoftwareApplication", "name": rule, "description": f"Snakemake rule {rule}"
            + (f", defined in {definitions[rule][0]}" if rule in definitions else "")}))
        if files:
            tool["hasPart"] = one_or_many(files)
        if rule_commit := _single_commit([job for job in jobs if job.rule == rule]):
            tool["softwareVersion"] = rule_commit  # the commit of the code every job ran
        tools.append(tool)
        steps.append(crate.add(ContextEntity(crate, f"#step/{rule}", properties={
            "@type": "HowToStep", "name": rule, "position": str(position), "workExample": tool})))
    workflow["hasPart"] = tools
    workflow["step"] = steps
    return workflow


def _single_commit(jobs: Sequence[Job]) -> str:
    """The git commit every job's record names, or the empty string if they differ."""
    commits = {job.record.get("git_commit", "") for job in jobs}
    return commits.pop() if len(commits) == 1 else ""


RULE = re.compile(r"^rule (\w+):\n((?:[ \t]+.*\n|[ \t]*\n)*)", re.M)
QUOTED_PATH = r'\s*\n?\s*"([^"]+)"'


def rule_definitions(checkout: Path) -> dict[str, list[str]]:
    """The files of the checkout that define each rule: the rule file whose ``rule <name>:``
    it is (rules in the Snakefile itself are left out: it is the workflow), then the
    ``script:`` and ``conda:`` files the rule names, relative to the checkout."""
    defined = {}
    for path in sorted(checkout.glob("workflow/rules/*.smk")):
        for name, body in RULE.findall(path.read_text(encoding="utf-8")):
            files = [str(path.relative_to(checkout))]
            for directive in ("script", "conda"):
                if found := re.search(rf"^\s*{directive}:{QUOTED_PATH}", body, re.M):
                    named = (path.parent / found[1]).resolve()
                    if named.is_relative_to(checkout.resolve()):
                        files.append(str(named.relative_to(checkout.resolve())))
            defined[name] = files
    return defined


def benchmark_patterns(checkout: Path) -> dict[str, str]:
    """Each rule's ``benchmark:`` file pattern (relative to the working directory), from the
    Snakefile and the rule files."""
    patterns = {}
    for path in [checkout / "Snakefile", *sorted(checkout.glob("workflow/rules/*.smk"))]:
        for name, body in RULE.findall(path.read_text(encoding="utf-8")):
            if found := re.search(rf"^\s*benchmark:{QUOTED_PATH}", body, re.M):
                patterns[name] = found[1]
    return patterns


BENCHMARK_UNITS = {"s": "SEC", "cpu_time": "SEC", "max_rss": "MebiBYTE",
                   "max_vms": "MebiBYTE", "io_in": "MebiBYTE", "io_out": "MebiBYTE",
                   "mean_load": "PERCENT"}
"""The columns of a Snakemake benchmark file a job's ``resourceUsage`` reports, and their
QUDT units (Snakemake's "MB" are bytes / 2**20)."""
QUDT_UNIT = "https://qudt.org/vocab/unit/"


def benchmark_usage(workdir: Path, pattern: str, wildcards: Mapping[str, str]
                    ) -> dict[str, float]:
    """A job's resource usage from its benchmark file: ``pattern`` filled with its wildcards
    (a ``{name,regex}`` constraint dropped), averaged over repeats; empty when there is none."""
    import pandas as pd

    missing = [name for name in re.findall(r"\{(\w+)", pattern) if name not in wildcards]
    if missing:
        return {}
    path = workdir / re.sub(r"\{(\w+)(?:,[^}]*)?\}", lambda m: str(wildcards[m[1]]), pattern)
    if not path.is_file():
        return {}
    table = pd.read_csv(path, sep="\t")
    return {column: float(table[column].mean()) for column in BENCHMARK_UNITS
            if column in table and not table[column].isna().all()}


def _package_version(jobs: Sequence[Job], name: str) -> str:
    """The version of ``name`` the latest job recorded, or the empty string."""
    for job in reversed(jobs):
        version = json.loads(job.record.get("packages") or "{}").get(name, "")
        if version:
            return version
    return ""


def _add_software(crate, jobs: Sequence[Job]) -> dict[str, object]:
    """A ``SoftwareApplication`` per package (and Python) at each version the records name, by
    name; ``snakemake`` is always there, as the engine of the run."""
    from rocrate.model.contextentity import ContextEntity

    versions: dict[str, set[str]] = {"snakemake": set()}
    for job in jobs:
        for name, version in json.loads(job.record.get("packages") or "{}").items():
            versions.setdefault(name, set()).add(version)
        if job.record.get("python"):
            versions.setdefault("python", set()).add(job.record["python"])
    software = {}
    for name, found in sorted(versions.items()):
        for version in sorted(found - {""}) or [""]:
            properties = {"@type": "SoftwareApplication", "name": name,
                          "url": "https://www.python.org/" if name == "python"
                          else f"https://pypi.org/project/{name}/"}
            if version:
                properties["softwareVersion"] = version
            identifier = software_id(name, version)
            # several versions of one package: the last (newest by sort) names it
            software[name] = crate.add(ContextEntity(crate, identifier, properties=properties))
    return software


def software_id(name: str, version: str) -> str:
    """A package's id: its release's page (on PyPI; Python's own), or a local id without a
    version."""
    if not version:
        return f"#software/{name}"
    if name == "python":
        return f"https://www.python.org/downloads/release/python-{version.replace('.', '')}/"
    return f"https://pypi.org/project/{name}/{version}/"


def _add_data(crate, files: _FileEntities, data: Sequence[DataFile],
              max_listed: int) -> list[object]:
    """The outside data files, one entity each, or per source one ``Dataset`` when it has more
    than ``max_listed`` files."""
    from rocrate.model.dataset import Dataset

    by_source: dict[str, list[DataFile]] = {}
    for row in data:
        by_source.setdefault(row.source, []).append(row)
    entities = []
    for source, rows in sorted(by_source.items()):
        if len(rows) <= max_listed:
            for row in rows:
                entity = files.add(str(row.location), row.sha256)
                entity["description"] = f"{source}: {row.origin}"
                entity["sha256"] = row.sha256
                entity["contentSize"] = str(row.bytes)
                entities.append(entity)
            continue
        root = Path(_common_root(row.location for row in rows))
        entities.append(crate.add(Dataset(crate, root.as_uri() + "/", fetch_remote=False,
                                          properties={
            "name": source, "contentSize": str(sum(row.bytes for row in rows)),
            "description": f"{source}: {rows[0].origin}; {len(rows)} files, each with its "
                           f"sha256 in the manifest results/data/{source}.tsv"})))
    return entities


def _common_root(paths: Iterable[Path]) -> str:
    import os

    return os.path.commonpath([str(path) for path in paths])


def _add_job(crate, files: _FileEntities, index: int, job: Job, benchmark: str) -> object:
    """The ``CreateAction`` of one job: rule, inputs, outputs, times, record, host, and the
    resources its ``benchmark`` file (the rule's pattern) measured."""
    from rocrate.model.contextentity import ContextEntity

    identifier = f"#job/{index}"
    record = job.record
    wildcards = _wildcards_text(job.wildcards)
    values = {
        "rule": job.rule, "wildcards": job.wildcards, "git_commit": record.get("git_commit", ""),
        "git_dirty": record.get("git_dirty", ""),
        "code_sha256": hashlib.sha256(record.get("code", "").encode()).hexdigest(),
        "settings_sha256": record.get("settings_sha256", ""),
        "config_sha256": record.get("config_sha256", ""), "seed": record.get("seed", ""),
        "slurm_job_id": record.get("slurm_job_id", ""), "python": record.get("python", ""),
    }
    properties = [crate.add(ContextEntity(crate, f"{identifier}/{key}", properties={
        "@type": "PropertyValue", "name": key, "propertyID": key, "value": str(value)}))
        for key, value in values.items() if str(value) != ""]
    outputs = [files.add(path) for path in job.outputs]
    inputs = [files.add(path, sha256) for path, sha256 in job.inputs.items()]
    action = {
        "@type": "CreateAction", "name": f"{job.rule} ({wildcards})",
        "description": f"The job of rule {job.rule} ({wildcards}) that wrote "
                       f"{', '.join(job.outputs)}",
        "instrument": crate.get(f"#rule/{job.rule}"), "object": one_or_many(inputs),
        "result": one_or_many(outputs),
        "startTime": job.created_at, "endTime": job_end(files.workdir, job),
        "actionStatus": COMPLETED,
        "additionalProperty": one_or_many(properties),
    }
    if record.get("host"):
        action["location"] = _host(crate, record["host"])
    usage = benchmark_usage(files.workdir, benchmark, json.loads(job.wildcards or "{}"))
    measured = [crate.add(ContextEntity(crate, f"{identifier}/usage/{key}", properties={
        "@type": "PropertyValue", "name": key, "propertyID": key, "value": str(value),
        "unitCode": {"@id": QUDT_UNIT + BENCHMARK_UNITS[key]}})) for key, value in usage.items()]
    if measured:
        action["resourceUsage"] = one_or_many(measured)
    return crate.add(ContextEntity(crate, identifier, properties=action))


def job_end(workdir: Path, job: Job) -> str:
    """When a job ended: the latest modification time of its outputs, in UTC (the outputs are
    renamed into place as they are finished, so the last rename is the job's end)."""
    stamps = [(workdir / path).stat().st_mtime for path in job.outputs]
    return dt.datetime.fromtimestamp(max(stamps), dt.UTC).isoformat(timespec="seconds")


def _host(crate, host: str) -> object:
    """The machine a job ran on: a ``VirtualLocation`` (schema.org's ``location`` of an
    action, "where an action takes place"), named by its host name."""
    from rocrate.model.contextentity import ContextEntity

    identifier = f"#host/{host}"
    return crate.get(identifier) or crate.add(ContextEntity(crate, identifier, properties={
        "@type": "VirtualLocation", "name": host,
        "description": "The machine the job ran on (its host name)"}))


def _wildcards_text(wildcards: str) -> str:
    values = json.loads(wildcards or "{}")
    return ", ".join(f"{key}={value}" for key, value in values.items()) or "no wildcards"


def _add_run(crate, workflow, jobs: Sequence[Job], job_actions: Sequence, files: _FileEntities,
             used: Sequence) -> object:
    """The run's own ``CreateAction``: the workflow, its configs and data, and the files no
    job of the crate reads (its end products)."""
    from rocrate.model.contextentity import ContextEntity

    read = {files.add(path).id for job in jobs for path in job.inputs}
    made = [entity for job in jobs for entity in map(files.add, job.outputs)]
    products = list({entity.id: entity for entity in made if entity.id not in read}.values())
    return crate.add(ContextEntity(crate, "#run", properties={
        "@type": "CreateAction", "name": "Run of the losskernel workflow",
        "description": "The run of the workflow: its configs and outside data in, the files no "
                       "job of the crate reads out",
        "instrument": workflow, "object": one_or_many(used), "result": one_or_many(products),
        "startTime": min(job.created_at for job in jobs),
        "endTime": max(action["endTime"] for action in job_actions),
        "actionStatus": COMPLETED}))


def _add_organize(crate, engine, run, job_actions: Sequence) -> None:
    """The engine's part, as the Provenance Run Crate has it: an ``OrganizeAction`` of
    Snakemake that ran ``run``, and per job a ``ControlAction`` from its step to its action."""
    from rocrate.model.contextentity import ContextEntity

    controls = []
    for action in job_actions:
        rule = action["instrument"]["name"]
        controls.append(crate.add(ContextEntity(crate, f"{action.id}/control", properties={
            "@type": "ControlAction", "name": f"orchestrate {action['name']}",
            "instrument": crate.get(f"#step/{rule}"), "object": action})))
    crate.add(ContextEntity(crate, "#organize", properties={
        "@type": "OrganizeAction", "name": "Snakemake's orchestration of the run",
        "instrument": engine, "object": one_or_many(controls), "result": run,
        "startTime": run["startTime"], "endTime": run["endTime"]}))


def one_or_many(values: Sequence) -> object | list:
    """A property's values, a single one as itself (RO-Crate 1.1 wants no singleton list)."""
    return values[0] if len(values) == 1 else list(values)


def _describe_root(crate, workdir: Path, run, job_actions: Sequence) -> None:
    """The root dataset's name, description, licence, profiles and the run it records."""
    from rocrate.model.contextentity import ContextEntity

    root = crate.root_dataset
    root["name"] = f"losskernel run in {workdir.name}"
    root["description"] = ("Workflow Run RO-Crate of a run of the losskernel workflow: the "
                           "workflow, its configs, the jobs with their provenance records, and "
                           "the figures, tables and paper they made")
    root["license"] = crate.add(ContextEntity(crate, PROJECT_LICENSE, properties={
        "@type": "CreativeWork", "name": "MIT License"}))
    profiles = [crate.add(ContextEntity(crate, url, properties={
        "@type": "CreativeWork", "name": f"{name} profile", "version": url.rsplit("/", 1)[-1]}))
        for name, url in PROFILES.items()]
    root["conformsTo"] = profiles
    root["mentions"] = [run, *job_actions]
    crate.metadata["conformsTo"] = [{"@id": "https://w3id.org/ro/crate/1.1"},
                                    {"@id": PROFILES["workflow-ro-crate"]}]


def _add_readme(crate, workdir: Path, jobs: Sequence[Job], files: _FileEntities) -> None:
    """A ``README.md`` about the crate (Workflow RO-Crate wants one): what run it records and
    where to look."""
    import io

    rules = sorted({job.rule for job in jobs})
    text = "\n".join([
        f"# {crate.root_dataset['name']}", "",
        f"A Workflow Run RO-Crate of a run of the losskernel workflow in `{workdir}`: "
        f"{len(jobs)} jobs of {len(rules)} rules, from {jobs[0].created_at} on.", "",
        "- `ro-crate-metadata.json`: every job as a `CreateAction` (`#job/<n>`) with its rule, "
        "inputs, outputs, times and provenance record; the run as `#run`.",
        "- `Snakefile`, `workflow/`, `envs/`: the workflow.",
        "- `results/provenance/configs/`: the run's whole config, named by its sha256.",
        f"- {files.included} of the {files.count} files described are in this archive; the "
        "others (large traces and models, outside data) are named by `file://` URIs, with "
        "their size and sha256.", ""])
    crate.add_file(io.StringIO(text), dest_path="README.md", properties={
        "name": "README.md", "about": crate.root_dataset, "encodingFormat": "text/markdown"})


# Validating a crate with roc-validator, offline.

def context_path() -> Path:
    """The shipped copy of the RO-Crate 1.1 JSON-LD context."""
    return Path(str(resources.files("losskernel") / "crate_context" / CONTEXT_FILE))


def validate_crate(path: Path, profile: str = "workflow-run-crate",
                   severity: str = "REQUIRED") -> CrateValidation:
    """roc-validator's verdict on the crate at ``path`` (a zip or a directory) for
    ``profile`` (and the profiles it builds on) at ``severity`` and above.

    Offline, leaving nothing behind: the validator fetches the crate's JSON-LD context over
    HTTP through a ``requests_cache`` session; here that session is a temporary cache, seeded
    with the shipped context (:func:`context_path`) and put in offline mode, so a request for
    anything else fails instead of going out, and the cache is deleted afterwards.
    """
    from rocrate_validator import services
    from rocrate_validator.models import Severity, ValidationSettings

    with tempfile.TemporaryDirectory(prefix="losskernel-crate-validation-") as scratch:
        cache = Path(scratch) / "http_cache"
        seed_context_cache(cache)
        with _validator_session(), warnings.catch_warnings():
            # rdflib and pyshacl warn of their own deprecations (ConjunctiveGraph): not ours
            warnings.simplefilter("ignore", DeprecationWarning)
            settings = ValidationSettings(
                rocrate_uri=str(Path(path).resolve()), profile_identifier=profile,
                requirement_severity=severity, cache_path=cache, offline=True)
            result = services.validate(settings)
            issues = tuple(_issue_text(issue)
                           for issue in result.get_issues(Severity[severity]))
            passed = result.passed(Severity[severity])
    return CrateValidation(profile=profile, severity=severity, passed=passed, issues=issues)


def seed_context_cache(cache: Path) -> None:
    """Make ``cache`` (a ``requests_cache`` SQLite cache name) hold the shipped context as
    the response to a GET of ``CONTEXT_URL``: an adapter serves the file to a cached session,
    which stores the response under the key the validator's request looks up."""
    import io

    import requests
    from requests.adapters import HTTPAdapter
    from requests_cache import CachedSession
    from urllib3 import HTTPResponse

    content = context_path().read_bytes()

    class ShippedContext(HTTPAdapter):
        """Answers a GET of the context with the shipped file, as a server would."""

        def send(self, request, **kwargs):
            if request.url != CONTEXT_URL:
                raise requests.ConnectionError(f"offline: {request.url} is not shipped")
            raw = HTTPResponse(body=io.BytesIO(content), status=200, preload_content=False,
                               headers={"Content-Type": "application/ld+json",
                                        "Content-Length": str(len(content))},
                               request_url=request.url)
            return self.build_response(request, raw)

    with CachedSession(cache_name=str(cache), backend="sqlite", expire_after=-1,
                       allowable_codes=(200,)) as session:
        session.mount("https://", ShippedContext())
        response = session.get(CONTEXT_URL, headers={"Accept": "application/ld+json"})
        response.raise_for_status()


@contextmanager
def _validator_session() -> Iterator[None]:
    """Let roc-validator set itself up for one validation, and undo it after: its HTTP
    session (a process-wide singleton holding the cache file open) is dropped, and rdflib's
    JSON-LD loader, which it patches, restored."""
    from rocrate_validator.utils.document_loader import uninstall_document_loader
    from rocrate_validator.utils.http import HttpRequester

    try:
        yield
    finally:
        HttpRequester.reset()
        uninstall_document_loader()


def _issue_text(issue) -> str:
    where = ", ".join(part for part in (issue.violatingEntity, issue.violatingProperty) if part)
    return (f"{issue.severity.name} {issue.check.identifier}: {issue.message}"
            + (f" ({where})" if where else ""))
