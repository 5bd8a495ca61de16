"""Faults lose no result: a chain killed outright, damaged files, a second Snakemake in the
same directory, a full disk.

Every test runs steps of the tiny digits config (tests/smoke/overrides.yaml), so the module is
marked slow; the trained model and one run's files are made once for the module.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
import yaml
from tests.workflow.conftest import CONFIGS, SNAKEMAKE

from losskernel import cli, dag
from losskernel.config import load_config
from losskernel.method import chains, traces
from losskernel.method.kernel import load_kernel
from losskernel.plan import Plan

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CONFIG = [str(ROOT / "config/config.yaml"), str(ROOT / "tests/smoke/overrides.yaml"),
          str(ROOT / "tests/smoke/one-chain-per-job.yaml")]  # faults in one chain's job
SCHEMA = str(ROOT / "workflow/schemas/config.schema.yaml")
PLAN = Plan.from_config(load_config(CONFIG), SCHEMA, check_files=False)
LOSSKERNEL = [sys.executable, "-m", "losskernel.cli"]
FIX = "delete it and rerun snakemake, which remakes it"
JOBS = [("train_model", {}),
        ("sample_chain", {"run": "seed0", "chain": "0"}),
        ("sample_chain", {"run": "seed0", "chain": "1"}),
        ("merge_chains", {"run": "seed0"}),
        ("compute_kernel", {"run": "seed0"}),
        ("mislabel_baselines", {}),
        ("mislabel_detection", {"seed": "0"})]
"""The jobs the module's work directory holds the outputs of, in order."""


def losskernel(*args: str, cwd: Path = ROOT, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([*LOSSKERNEL, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def wildcards(rule: str, values: dict[str, str]) -> list[str]:
    return [rule, "--experiment", "digits",
            *(part for name, value in values.items() for part in (f"--{name}", value))]


def output(rule: str, name: str, **values: str) -> str:
    """The path, relative to the work directory, of output ``name`` of a digits job."""
    return dag.job(PLAN, rule, {"experiment": "digits", **values}).outputs[name]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    """A work directory with the outputs of ``JOBS``: a trained digits model and its seed-0
    run up to its mislabel reading."""
    work = tmp_path_factory.mktemp("faults")
    for rule, values in JOBS:
        done = losskernel(*wildcards(rule, values), "--config", *CONFIG, "--directory",
                          str(work))
        assert done.returncode == 0, f"{rule}: {done.stderr[-2000:]}"
    return work


@pytest.fixture
def work(made, tmp_path) -> Path:
    """A copy of the module's work directory for one test to damage."""
    copy = tmp_path / "work"
    shutil.copytree(made / "results", copy / "results")
    return copy


def truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def overwritten(path: Path, size: int = 1024) -> None:
    """``size`` bytes in the middle of the file with every bit flipped."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + size] = bytes(255 - byte for byte in data[middle:middle + size])
    path.write_bytes(bytes(data))


DAMAGED = {  # file: (the next step that reads it, a file made from it)
    "chain": (output("sample_chain", "traces", run="seed0", chain="0"),
              ("merge_chains", {"run": "seed0"}), output("merge_chains", "traces", run="seed0")),
    "traces": (output("merge_chains", "traces", run="seed0"),
               ("compute_kernel", {"run": "seed0"}),
               output("compute_kernel", "covariance", run="seed0")),
    "kernel": (output("compute_kernel", "covariance", run="seed0"),
               ("mislabel_detection", {"seed": "0"}),
               output("mislabel_detection", "metrics", seed="0")),
    "model": (output("train_model", "model"), ("sample_chain", {"run": "seed0", "chain": "0"}),
              output("sample_chain", "traces", run="seed0", chain="0")),
    "checkpoints": (output("train_model", "checkpoints"),
                    ("sample_chain", {"run": "checkpoint0", "chain": "0"}),
                    output("mislabel_baselines", "scores")),
}


@pytest.mark.parametrize("damage", [truncated, overwritten])
@pytest.mark.parametrize("kind", list(DAMAGED))
def test_a_damaged_file_stops_the_next_step_and_the_audit_flags_it(kind, damage, work,
                                                                   monkeypatch, capsys):
    """Through the command line (in this process, to save torch's import): the step exits 2
    with one line naming the file and the fix, replaces nothing, and `losskernel provenance`
    flags the file (unreadable) or a file made from it (its recorded sha256 changed)."""
    damaged, (rule, values), downstream = DAMAGED[kind]
    damage(work / damaged)
    before = {path: sha256(path) for path in (work / "results").rglob("*") if path.is_file()}
    monkeypatch.chdir(ROOT)  # the command changes into --directory

    code = cli.main([*wildcards(rule, values), "--config", *CONFIG, "--directory", str(work),
                     "--force"])
    stderr = capsys.readouterr().err
    assert code == 2, stderr
    assert stderr.startswith(f"losskernel {rule}: error: {damaged} cannot be read "
                             f"(truncated or corrupted: ") and stderr.endswith(f"; {FIX}\n")
    assert before == {path: sha256(path) for path in (work / "results").rglob("*")
                      if path.is_file()}  # nothing replaced, nothing half-written

    monkeypatch.chdir(work)
    assert cli.main(["provenance", downstream]) == 1
    audit = capsys.readouterr().out
    assert f"CHANGED  {damaged}  since: recorded sha256" in audit
    if damage is truncated:  # its own record cannot be read either
        assert f"UNREADABLE  {damaged} cannot be read" in audit
        assert cli.main(["provenance", damaged]) == 1
        audit = capsys.readouterr().out
        assert f"* {damaged}\n    UNREADABLE  {damaged} cannot be read" in audit
        assert audit.splitlines()[-1].startswith("UNREADABLE FILES: 1 artifacts")


def test_a_damaged_model_stops_the_command_line_with_one_readable_line(work):
    """The same, as a separate process: exit status 2 and no traceback."""
    model = output("train_model", "model")
    truncated(work / model)
    run = losskernel(*wildcards("sample_chain", {"run": "seed0", "chain": "0"}), "--config",
                     *CONFIG, "--directory", str(work), "--output", f"traces={work / 'x.nc'}")
    assert run.returncode == 2, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    assert f"{model} cannot be read (truncated or corrupted: BadZipFile: " in run.stderr
    assert FIX in run.stderr and not (work / "x.nc").exists()


def test_a_chain_killed_outright_resumes_to_the_traces_of_an_uninterrupted_run(
        made, tmp_path, monkeypatch):
    """SIGKILL (no chance to save): the rerun resumes from the last periodic save. The rerun
    runs in this process, to see where the chain restarts."""
    for name in ("model", "checkpoints"):
        target = tmp_path / output("train_model", name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(made / output("train_model", name), target)
    longer = tmp_path / "longer.yaml"
    longer.write_text(yaml.safe_dump({"experiments": {"digits": {"sampling": {
        "num_draws": 300, "num_steps_between_draws": 1}}}}))
    sample = [*wildcards("sample_chain", {"run": "seed0", "chain": "1"}), "--config", *CONFIG,
              str(longer), "--directory", str(tmp_path)]
    reference = losskernel(*sample, "--output", f"traces={tmp_path / 'reference.nc'}")
    assert reference.returncode == 0, reference.stderr[-2000:]

    state = tmp_path / "results/digits/seed0/chains/chain1.state.pt"
    chain = tmp_path / output("sample_chain", "traces", run="seed0", chain="1")
    job = subprocess.Popen([*LOSSKERNEL, *sample, "--save-every", "0"], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while job.poll() is None and time.monotonic() < deadline and steps_done(state) < 30:
            time.sleep(0.05)
        assert job.poll() is None, "the chain finished before it could be killed: lengthen it"
        job.kill()  # SIGKILL
        job.communicate(timeout=60)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == -signal.SIGKILL
    killed_at = steps_done(state)
    assert 30 <= killed_at < 5 + 300 and not chain.exists()  # burn-in 5, then 300 draws

    restored, restore_progress = [], chains.restore_progress

    def restore(*args, **kwargs):
        restored.append((result := restore_progress(*args, **kwargs))[0])
        return result

    monkeypatch.setattr(chains, "restore_progress", restore)
    monkeypatch.chdir(ROOT)
    sigterm = signal.getsignal(signal.SIGTERM)  # the step asks SIGTERM to save and stop
    try:
        assert cli.main(sample) == 0  # saves every 60 s again
    finally:
        signal.signal(signal.SIGTERM, sigterm)
    assert restored == [killed_at]
    assert not state.exists()
    expected, got = traces.load_traces(tmp_path / "reference.nc"), traces.load_traces(chain)
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
    target = output("sample_chain", "traces", run="seed0", chain="0")
    command = [*SNAKEMAKE, target, "--directory", str(tmp_path), "--cores", "1", *CONFIGS,
               CONFIG[-1]]  # one chain per job, as the module's PLAN
    first = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True)
    model = tmp_path / output("train_model", "model")
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
    audit = losskernel("provenance", target, cwd=tmp_path)
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


def test_a_full_disk_leaves_no_partial_file_and_the_rerun_finishes(made, small_disk):
    """The kernel K (6.5 MB, the step's first output) does not fit beside its traces on a 4 MB
    disk: the step fails with ENOSPC and leaves nothing; with room made, the same command
    finishes."""
    traces_file = output("merge_chains", "traces", run="seed0")
    kernel = output("compute_kernel", "covariance", run="seed0")
    (small_disk / traces_file).parent.mkdir(parents=True)
    shutil.copy(made / traces_file, small_disk / traces_file)
    step = [*wildcards("compute_kernel", {"run": "seed0"}), "--config",
            *CONFIG, "--directory", str(small_disk)]

    full = losskernel(*step)
    assert full.returncode == 2, full.stderr[-2000:]
    assert f"No space left on device: {kernel} was not written" in full.stderr
    assert sorted(path.name for path in (small_disk / kernel).parent.iterdir()) == ["traces.nc"]

    subprocess.run(["mount", "-o", "remount,size=32m", str(small_disk)], check=True)
    rerun = losskernel(*step)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    expected = load_kernel(made / kernel)
    xr.testing.assert_equal(load_kernel(small_disk / kernel)["kernel"], expected["kernel"])
