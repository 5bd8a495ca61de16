"""Faults lose no result: a chain killed outright, damaged files, a second Snakemake in the
same directory, a full disk.

Every test runs steps of the tiny digits config (tests/smoke/overrides.yaml), so the module is
marked slow; the trained model and one run's files are made once for the module, by Snakemake.
A step runs in this process (to save torch's import) as its rule's script would run it: a job
of the files the rule file names and the params ``job_params`` gives.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
import yaml
from tests.workflow.conftest import CONFIGS, SNAKEMAKE, own_process

from losskernel import pipeline
from losskernel.config import load_config
from losskernel.job import Files, Job
from losskernel.method import chains, traces
from losskernel.method.kernel import load_kernel
from losskernel.params import job_params
from losskernel.plan import Plan

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CONFIG = [str(ROOT / "config/config.yaml"), str(ROOT / "tests/smoke/overrides.yaml"),
          str(ROOT / "tests/smoke/one-chain-per-job.yaml")]  # faults in one chain's job
SCHEMA = str(ROOT / "workflow/schemas/config.schema.yaml")
PLAN = Plan.from_config(load_config(CONFIG), SCHEMA, check_files=False)
FIX = "delete it and rerun snakemake, which remakes it"

# The digits files the tests read and damage, as workflow/rules/*.smk name them.
MODEL = "results/digits/model.pt"
CHECKPOINTS = "results/digits/checkpoints.pt"
CHAINS = ["results/digits/seed0/chains/chain0.nc", "results/digits/seed0/chains/chain1.nc"]
TRACES = "results/digits/seed0/traces.nc"
COVARIANCE = "results/digits/seed0/kernel-covariance.nc"
CORRELATION = "results/digits/seed0/kernel-correlation.nc"
BASELINES = "results/digits/mislabel-baselines.tsv"
MISLABELS = "results/digits/seed0/mislabels.tsv"
MADE = [MODEL, *CHAINS, TRACES, COVARIANCE, BASELINES, MISLABELS]
"""The targets of the module's work directory: a trained digits model and its seed-0 run up
to its mislabel reading (train_model, sample_chain ×2, merge_chains, compute_kernel,
mislabel_baselines, mislabel_detection)."""


@dataclass(frozen=True)
class Step:
    """A digits job of ``rule`` at ``wildcards`` (besides the experiment), with its files."""

    rule: str
    wildcards: dict[str, str]
    inputs: Files
    outputs: dict[str, str]

    def job(self, elsewhere: Path | None = None, plan: Plan = PLAN, **arguments) -> Job:
        """The job, its outputs in the directory ``elsewhere`` if given (so that nothing of
        results/ can be replaced), its params from ``plan`` updated with ``arguments``."""
        outputs = self.outputs if elsewhere is None else {
            name: str(elsewhere / Path(path).name) for name, path in self.outputs.items()}
        wildcards = {"experiment": "digits", **self.wildcards}
        params = job_params(plan, self.rule, wildcards)
        if self.rule == "sample_chain":  # the rule's own param: its output's directory
            params["state_dir"] = str(Path(outputs["traces"]).parent)
        return Job(self.rule, self.rule, wildcards, self.inputs, outputs,
                   {**params, **arguments})


def run(job: Job, plan: Plan = PLAN) -> None:
    """Run a job in this process with the record a rule's script gives its outputs."""
    pipeline.run_step(job, pipeline.job_record(job, ROOT, run_config=plan.config))


def sample_chain(run_name: str, chain: int, model: str = MODEL) -> Step:
    return Step("sample_chain", {"run": run_name, "chain": str(chain)}, {"model": model},
                {"traces": f"results/digits/{run_name}/chains/chain{chain}.nc"})


COMPUTE_KERNEL = Step("compute_kernel", {"run": "seed0"}, {"traces": TRACES},
                      {"covariance": COVARIANCE, "correlation": CORRELATION})


def provenance_audit(path: str, work: Path) -> subprocess.CompletedProcess:
    """`losskernel provenance PATH` run in ``work``, as a user runs it: in a process of its own
    (netCDF's HDF5 library once crashed this test process, reading an overwritten file after
    many others; a fresh process never did, 117 overwritten files tried)."""
    return subprocess.run([sys.executable, "-m", "losskernel.cli", "provenance", path], cwd=work,
                          capture_output=True, text=True, timeout=600)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snakemake(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Snakemake with the module's config (one chain per job)."""
    return subprocess.run([*SNAKEMAKE, *args, "--configfile", *CONFIG], cwd=cwd,
                          capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    """A work directory with the files of ``MADE``, made by one Snakemake run."""
    work = tmp_path_factory.mktemp("faults")
    done = snakemake(*MADE, "--directory", str(work), "--cores", "2")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return work


@pytest.fixture
def work(made, tmp_path) -> Path:
    """A copy of the module's work directory for one test to damage."""
    copy = tmp_path / "work"
    shutil.copytree(made / "results", copy / "results")
    return copy


@pytest.fixture(autouse=True)
def sigterm_handler() -> Iterator[None]:
    """The sampling step asks SIGTERM to save and stop; the test run's own handler is put back
    after each test."""
    handler = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, handler)


def truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def overwritten(path: Path, size: int = 1024) -> None:
    """``size`` bytes in the middle of the file with every bit flipped."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + size] = bytes(255 - byte for byte in data[middle:middle + size])
    path.write_bytes(bytes(data))


def files(work: Path) -> dict[Path, str]:
    """Every file of the work directory's results/ by its sha256."""
    return {path: sha256(path) for path in (work / "results").rglob("*") if path.is_file()}


DAMAGED = {  # file: (the next step's job, which reads it, a file made from it)
    "chain": (CHAINS[0], Step("merge_chains", {"run": "seed0"}, {"chains": CHAINS},
                              {"traces": TRACES}), TRACES),
    "traces": (TRACES, COMPUTE_KERNEL, COVARIANCE),
    "kernel": (COVARIANCE, Step("mislabel_detection", {"seed": "0"},
                                {"covariance": COVARIANCE, "traces": TRACES,
                                 "baselines": BASELINES},
                                {"metrics": MISLABELS,
                                 "scores": "results/digits/seed0/mislabel-scores.tsv"}),
               MISLABELS),
    "model": (MODEL, sample_chain("seed0", 0), CHAINS[0]),
    "checkpoints": (CHECKPOINTS, sample_chain("checkpoint0", 0, model=CHECKPOINTS), BASELINES),
}


@pytest.mark.parametrize("damage", [truncated, overwritten])
@pytest.mark.parametrize("kind", list(DAMAGED))
def test_a_damaged_file_stops_the_next_step_and_the_audit_flags_it(kind, damage, work,
                                                                   tmp_path, monkeypatch):
    """The next step stops with an error of one line naming the file and the fix, replaces
    nothing (its outputs go elsewhere, and nothing is written there either), and `losskernel
    provenance` flags the file (unreadable) or a file made from it (its recorded sha256
    changed)."""
    damaged, step, downstream = DAMAGED[kind]
    damage(work / damaged)
    before = files(work)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(work)  # the jobs' paths are relative to it, as Snakemake's

    # in a process of its own, as Snakemake runs a job (HDF5 reading damaged files in this
    # process once crashed it; see provenance_audit)
    ran = subprocess.run(job_command(step.job(elsewhere), tmp_path), cwd=work,
                         capture_output=True, text=True, timeout=600)
    assert ran.returncode == 1
    error = ran.stderr.rstrip("\n").splitlines()[-1]  # the traceback's last line: one line
    assert error.startswith(f"losskernel.provenance.UnreadableFileError: {damaged} cannot be "
                            f"read (truncated or corrupted: ") and error.endswith(f"; {FIX}")
    assert files(work) == before  # nothing replaced, nothing half-written
    assert list(elsewhere.iterdir()) == []

    audit = provenance_audit(downstream, work)
    assert audit.returncode == 1, audit.stderr[-2000:]
    assert f"CHANGED  {damaged}  since: recorded sha256" in audit.stdout
    if damage is truncated:  # its own record cannot be read either
        assert f"UNREADABLE  {damaged} cannot be read" in audit.stdout
        audit = provenance_audit(damaged, work)
        assert audit.returncode == 1, audit.stderr[-2000:]
        assert f"* {damaged}\n    UNREADABLE  {damaged} cannot be read" in audit.stdout
        assert audit.stdout.splitlines()[-1].startswith("UNREADABLE FILES: 1 artifacts")


def test_a_damaged_model_stops_its_snakemake_job_with_one_readable_line(work):
    """The same, as Snakemake runs the step: asked for a chain not made yet, around the
    damaged (so newer) model, the gate before sampling reads the model again and fails; its log
    says in one line which file and what to do, no chain starts, and nothing else changes."""
    truncated(work / MODEL)
    before = files(work)
    target = sample_chain("seed1", 0).outputs["traces"]

    failed = snakemake(target, "--directory", str(work), "--cores", "1")
    assert failed.returncode != 0, failed.stderr[-3000:]
    assert "rule sample_chain:" not in failed.stdout + failed.stderr
    log = work / "results/logs/accept_model/digits.log"
    assert str(log.relative_to(work)) in failed.stderr  # Snakemake points at the log
    lines = [line for line in log.read_text().splitlines() if f"{MODEL} cannot be read" in line]
    assert len(lines) == 1, log.read_text()[-3000:]
    # the gate reads the model's record (torch's reader: OSError here, where loading the
    # weights met BadZipFile)
    assert "(truncated or corrupted: " in lines[0] and lines[0].endswith(FIX)
    assert not (work / target).exists()
    made_now = {path for path in files(work) if path not in before}
    assert {path.relative_to(work).parts[1] for path in made_now} <= {"logs", "benchmarks"}
    # the gate's verdict on the model before the damage goes with the gate's failed rerun
    # (Snakemake deletes a failed job's outputs), and the gate's log is its new one; every
    # result, the model itself included, is left as it is
    verdict = work / "results/digits/model-accepted.tsv"
    assert verdict in before and not verdict.exists()
    kept = {path: digest for path, digest in before.items() if path != verdict
            and path.relative_to(work).parts[1] not in ("logs", "benchmarks")}
    assert {path: sha256(path) for path in kept} == kept and work / MODEL in kept


def job_command(job: Job, directory: Path, plan: Plan = PLAN) -> list[str]:
    """The command that runs ``job`` in a process of its own, with the record a rule's script
    gives its outputs (tests/workflow/conftest.py)."""
    return own_process(job, pipeline.job_record(job, ROOT, run_config=plan.config), directory)


def test_a_chain_killed_outright_resumes_to_the_traces_of_an_uninterrupted_run(
        made, tmp_path, monkeypatch):
    """SIGKILL (no chance to save): the rerun resumes from the last periodic save. The rerun
    runs in this process, to see where the chain restarts."""
    for name in (MODEL, CHECKPOINTS):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(made / name, tmp_path / name)
    longer = tmp_path / "longer.yaml"
    longer.write_text(yaml.safe_dump({"experiments": {"digits": {"sampling": {
        "num_draws": 300, "num_steps_between_draws": 1}}}}))
    plan = Plan.from_config(load_config([*CONFIG, str(longer)]), SCHEMA, check_files=False)
    step = sample_chain("seed0", 1)
    monkeypatch.chdir(tmp_path)  # the jobs' paths are relative to it, as Snakemake's
    run(step.job(tmp_path / "reference", plan), plan)

    state = tmp_path / "results/digits/seed0/chains/chain1.state.pt"
    chain = tmp_path / step.outputs["traces"]
    saving_often = step.job(plan=plan, save_every_seconds=0)  # saves after every step
    with open(tmp_path / "stderr.txt", "w") as stderr:  # a pipe could fill and stall it
        job = subprocess.Popen(job_command(saving_often, tmp_path, plan), cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 300
        while job.poll() is None and time.monotonic() < deadline and steps_done(state) < 30:
            time.sleep(0.05)
        assert job.poll() is None, ("the chain finished before it could be killed: lengthen "
                                    f"it; {(tmp_path / 'stderr.txt').read_text()[-2000:]}")
        job.kill()  # SIGKILL
        job.wait(timeout=60)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait(timeout=60)
    assert job.returncode == -signal.SIGKILL
    killed_at = steps_done(state)
    assert 30 <= killed_at < 5 + 300 and not chain.exists()  # burn-in 5, then 300 draws

    restored, restore_progress = [], chains.restore_progress

    def restore(*args, **kwargs):
        restored.append((result := restore_progress(*args, **kwargs))[0])
        return result

    monkeypatch.setattr(chains, "restore_progress", restore)
    run(step.job(plan=plan), plan)  # saves every 60 s again
    assert restored == [killed_at]
    assert not state.exists()
    expected = traces.load_traces(tmp_path / "reference/chain1.nc")
    got = traces.load_traces(chain)
    for name in traces.TRACE_VARIABLES:
        np.testing.assert_array_equal(got[name].values, expected[name].values, err_msg=name)
    left = [path.name for path in chain.parent.iterdir() if not path.name.endswith(".writing")]
    assert left == ["chain1.nc"]  # (a state save cut short by the kill can leave its .writing)


def steps_done(state: Path) -> int:
    """The steps a chain's saved state has completed (0 before its first save)."""
    return int(torch.load(state, weights_only=False)["steps_done"]) if state.exists() else 0


def test_a_second_snakemake_in_the_same_directory_is_refused(tmp_path):
    """The first run is stopped (SIGSTOP) once it has trained the model, so the second surely
    starts while it holds the directory's lock; the first then finishes with its files intact."""
    target = CHAINS[0]
    command = [*SNAKEMAKE, target, "--directory", str(tmp_path), "--cores", "1", *CONFIGS,
               CONFIG[-1]]  # one chain per job, as the module's PLAN
    first = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True)
    model = tmp_path / MODEL
    try:
        deadline = time.monotonic() + 600
        while not model.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert first.poll() is None, first.communicate()[0][-3000:]
        os.killpg(first.pid, signal.SIGSTOP)
        trained = sha256(model)

        second = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert second.returncode != 0
        assert "Directory cannot be locked" in second.stdout + second.stderr, second.stderr
    finally:
        os.killpg(first.pid, signal.SIGCONT)
    log, _ = first.communicate(timeout=600)
    assert first.returncode == 0, log[-3000:]
    assert sha256(model) == trained  # not retrained by the second run
    assert traces.load_traces(tmp_path / target)["chain"].values.tolist() == [0]
    audit = provenance_audit(target, tmp_path)
    assert audit.returncode == 0, audit.stdout  # the chain's recorded model is the one on disk


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB tmpfs, unmounted afterwards; needs root."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        reason = f"cannot mount a tmpfs: {mounted.stderr.strip()}"
        if os.environ.get("CI"):
            pytest.fail(f"run the tests as root (the full-disk test mounts a tmpfs); {reason}")
        pytest.skip(reason)
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_a_full_disk_leaves_no_partial_file_and_the_rerun_finishes(made, small_disk, tmp_path,
                                                                   monkeypatch):
    """The kernel K (6.5 MB, the step's first output) does not fit beside its traces on a 4 MB
    disk: the step fails with ENOSPC and leaves nothing; with room made, the same job
    finishes. The job runs in a process of its own, as under Snakemake: in this one, the
    netCDF library would keep the failed file open, and the disk busy."""
    (small_disk / TRACES).parent.mkdir(parents=True)
    shutil.copy(made / TRACES, small_disk / TRACES)
    monkeypatch.chdir(small_disk)  # the job's paths are relative to it, as Snakemake's
    command = job_command(COMPUTE_KERNEL.job(), tmp_path)

    full = subprocess.run(command, cwd=small_disk, capture_output=True, text=True, timeout=600)
    assert full.returncode == 1, full.stderr[-2000:]
    assert (f"OSError: [Errno {errno.ENOSPC}] No space left on device: {COVARIANCE} was not "
            f"written") in full.stderr, full.stderr[-2000:]
    assert sorted(path.name for path in (small_disk / COVARIANCE).parent.iterdir()) == [
        "traces.nc"]

    subprocess.run(["mount", "-o", "remount,size=32m", str(small_disk)], check=True)
    rerun = subprocess.run(command, cwd=small_disk, capture_output=True, text=True,
                           timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    expected = load_kernel(made / COVARIANCE)
    xr.testing.assert_equal(load_kernel(small_disk / COVARIANCE)["kernel"], expected["kernel"])
