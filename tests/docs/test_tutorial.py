"""The tutorial of the documentation (examples/loss_kernel_on_your_model.py) runs as a plain
script and says what its page says: the draws pass the diagnostics' bounds, K(z,z) finds the
mislabelled points, and the figure is saved. About a minute on 2 cores, so it is marked slow."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "examples" / "loss_kernel_on_your_model.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def number(pattern: str, text: str) -> float:
    """The number that ``pattern``'s group catches in ``text``; fails naming the pattern."""
    found = re.search(pattern, text)
    assert found is not None, f"no line matches {pattern!r} in:\n{text}"
    return float(found.group(1))


@pytest.fixture(scope="module")
def tutorial_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """The tutorial, run once as a script in an empty directory, with matplotlib's file
    backend and the default figure path."""
    work = tmp_path_factory.mktemp("tutorial")
    env = {**os.environ, "MPLBACKEND": "Agg"}
    env.pop("LOSSKERNEL_TUTORIAL_OUT", None)
    run = subprocess.run([sys.executable, str(TUTORIAL)], cwd=work, env=env,
                         capture_output=True, text=True, timeout=900)
    return run, work


@pytest.mark.slow
def test_tutorial_runs_cleanly_and_saves_its_figure(tutorial_run):
    run, work = tutorial_run
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Warning" not in run.stderr, run.stderr  # the docs page would show it
    figure = work / "loss-kernel-tutorial.png"
    assert "figure saved to " in run.stdout and figure.is_file()
    data = figure.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk, first after the signature
    assert (width, height) == (1100, 450)  # figsize (11, 4.5) at 100 dpi
    assert len(data) > 20_000  # two drawn panels, not an empty canvas


@pytest.mark.slow
def test_tutorial_draws_pass_the_diagnostics(tutorial_run):
    out = tutorial_run[0].stdout
    assert number(r"worst R-hat ([0-9.]+) \(bound 1\.01\)", out) <= 1.01
    assert number(r"smallest bulk or tail ESS ([0-9.]+) \(bound 400", out) >= 400
    assert number(r"median bulk ESS ([0-9.]+)", out) >= 400
    assert number(r"largest \|Geweke z\| of the minibatch loss ([0-9.]+)", out) <= 3
    assert "diagnostics: every input within the bounds" in out


@pytest.mark.slow
def test_tutorial_finds_the_mislabelled_points(tutorial_run):
    out = tutorial_run[0].stdout
    assert number(r"accuracy on the \(noisy\) training labels ([0-9.]+)", out) == 1.0
    # 0.986-0.990 over seeds 0, 1, 2 of the data, model and SGLD; chance is 0.5
    assert number(r"ROC-AUC of K\(z,z\)\s+([0-9.]+)", out) > 0.9
    for baseline in ("loss at w\\*", "posterior mean loss"):
        assert 0.5 < number(rf"ROC-AUC of {baseline}\s+([0-9.]+)", out) <= 1
        assert re.search(rf"K\(z,z\) minus {baseline}: [-+][0-9.]+ \(95 % interval .*\): "
                         r"(K\(z,z\) wins|.* wins|no clear winner)", out), out
