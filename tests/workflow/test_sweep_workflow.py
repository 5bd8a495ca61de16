"""A sweep end to end: the target `sweeps` runs each size's models and readings, and only
them, then the sweep's table and figure (tests/smoke/sweep.yaml, a tiny capacity sweep)."""

from __future__ import annotations

import pandas as pd
import pytest
from PIL import Image
from tests.workflow.conftest import CONFIGS, ROOT
from tests.workflow.conftest import snakemake as run_snakemake
from tests.workflow.test_workflow import planned_jobs

SWEEP = ROOT / "tests/smoke/sweep.yaml"


def weights(first: int, second: int, hidden: int) -> int:
    """Parameters of the fashion network: conv 4×4 (1 → c₁), conv 4×4 (c₁ → c₂), 7·7·c₂ →
    hidden, hidden → 10, with biases."""
    return ((16 + 1) * first + (16 * first + 1) * second + (49 * second + 1) * hidden
            + (hidden + 1) * 10)


@pytest.mark.slow
def test_the_sweep_target_runs_its_sizes_then_its_table_and_figure(tmp_path):
    configs = [*CONFIGS, str(SWEEP)]
    planned = planned_jobs(run_snakemake("--directory", str(tmp_path), *configs, "-n",
                                         "sweeps"))
    # 2 fashion models and 1 narrow one, each its 2 seeds; no figure of an experiment
    assert planned["train_model"] == planned["describe_model"] == 3
    assert planned["sample_chain"] == 6 and planned["summarize_models"] == 2
    assert planned["summarize_sweep"] == planned["plot_sweep"] == 1
    assert "plot_figure1" not in planned and "headline_table" not in planned

    run = run_snakemake("--directory", str(tmp_path), *configs, "--cores", "2", "sweeps")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    table = pd.read_csv(tmp_path / "results/sweeps/size.tsv", sep="\t", comment="#")
    assert list(dict.fromkeys(table["experiment"])) == ["fashion-narrow", "fashion-same"]
    sizes = table.drop_duplicates("experiment").set_index("experiment")
    assert sizes.loc["fashion-narrow", "x"] == weights(2, 4, 16)
    assert sizes.loc["fashion-same", "x"] == weights(8, 16, 64)
    assert sizes["label"].between(0, 1).all()  # the test accuracy
    assert list(table["panel"].unique()) == ["lift", "branches", "cka"]
    models = table.set_index(["experiment", "metric"])["models"]
    assert models["fashion-same", "depth_lift_R"] == 2
    assert models["fashion-narrow", "depth_lift_R"] == 1
    assert table["value"].notna().all()
    with Image.open(tmp_path / "results/figures/sweeps/size.png") as figure:
        assert figure.text["losskernel:rule"] == "plot_sweep"
        assert figure.size[0] > 600
    again = run_snakemake("--directory", str(tmp_path), *configs, "-n", "sweeps")
    assert again.returncode == 0 and planned_jobs(again) == {}, again.stdout
