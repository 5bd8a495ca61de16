"""A researcher's own task, defined in this module and named by import path in a config
(``task: test_custom_task``), runs through the whole workflow: training, SGLD, kernels, the
generic convergence reading, its own reading and its own figure, the headline rows. Nothing of
``workflow/`` or ``src/`` knows it.

The task: 2-D points from two Gaussian clusters, labelled by the side of a line that cuts
across the clusters, so the label and the cluster differ; a tiny MLP learns the labels. Its own
reading is the cluster purity of R's nearest neighbours (with same-label edges removed), its
own figure the histogram of R.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from losskernel.tasks.defaults import *  # noqa: F403 - the default hooks of the contract
from losskernel.tasks.protocol import Figure, FigureSet, Reading
from losskernel.tasks.splits import same_label_edges, select_split

ROOT = Path(__file__).resolve().parents[2]

# The task ---------------------------------------------------------------------------------

INPUT_ATTRIBUTES = ("label", "cluster", "split")
STRUCTURE_SCORE = "cluster purity of R's neighbours"
SETTINGS_SCHEMA = {
    "required": ["training"],
    "properties": {
        "data": {"type": "object", "additionalProperties": False,
                 "required": ["num_examples", "seed"],
                 "properties": {"num_examples": {"type": "integer", "minimum": 8},
                                "seed": {"type": "integer", "minimum": 0}}},
        "model": {"type": "object", "additionalProperties": False,
                  "properties": {"hidden": {"type": "integer", "minimum": 1, "default": 8},
                                 "init_seed": {"type": "integer", "default": 0}}},
        "kernel_inputs": {"type": "object", "additionalProperties": False,
                          "required": ["count"],
                          "properties": {"count": {"type": "integer", "minimum": 4}}},
        "training": {"required": ["target_train_accuracy"],
                     "properties": {"target_train_accuracy": {"type": "number"}}},
    },
}


@dataclass(frozen=True)
class Points:
    examples: pd.DataFrame  # obs_id, label, cluster, split
    points: np.ndarray  # (n, 2) float32

    def tensors(self, rows: pd.DataFrame):
        import torch

        from losskernel.method.chains import TensorData

        index = rows.index.to_numpy()
        return TensorData(torch.from_numpy(self.points[index]),
                          torch.tensor(rows["label"].to_numpy(dtype=np.int64)))


def make_data(data_settings: Mapping) -> Points:
    rng = np.random.default_rng(data_settings["seed"])
    count = data_settings["num_examples"]
    cluster = np.arange(count) % 2
    points = rng.normal(size=(count, 2)) * 0.5 + np.where(cluster[:, None] == 1, 2.0, -2.0)
    label = (points[:, 0] - points[:, 1] > 0).astype(np.int64)
    examples = pd.DataFrame({"obs_id": [f"point_{i:03d}" for i in range(count)],
                             "label": label, "cluster": cluster,
                             "split": np.where(np.arange(count) < count * 3 // 4, "train",
                                               "test")})
    return Points(examples, points.astype(np.float32))


def build_model(model_settings: Mapping, data: Points | None):
    import torch

    torch.manual_seed(model_settings["init_seed"])
    return torch.nn.Sequential(torch.nn.Linear(2, model_settings["hidden"]), torch.nn.ReLU(),
                               torch.nn.Linear(model_settings["hidden"], 2))


def check_settings(settings: Mapping) -> None:
    if settings["kernel_inputs"]["count"] > settings["data"]["num_examples"]:
        raise ValueError("kernel_inputs.count: more than data.num_examples; lower it")


def training_split(data: Points):
    return data.tensors(select_split(data.examples, "train")), None


def evaluate(model, data: Points) -> dict[str, float]:
    import torch

    train = training_split(data)[0]
    with torch.inference_mode():
        correct = model(train.inputs).argmax(1) == train.targets
    return {"train_accuracy": float(correct.float().mean())}


def is_converged(metrics: Mapping[str, float], training_settings: Mapping) -> bool:
    return metrics["train_accuracy"] >= training_settings["target_train_accuracy"]


def select_kernel_inputs(data: Points, kernel_input_settings: Mapping) -> pd.DataFrame:
    return data.examples.head(kernel_input_settings["count"])


def excluded_edges(inputs: pd.DataFrame, rule: str) -> np.ndarray | None:
    return same_label_edges(inputs, rule, "the points")


def structure_score(covariance, correlation, inputs: pd.DataFrame, analysis: Mapping) -> float:
    from losskernel.readings.neighbours import neighbour_lift

    purity, _, _ = neighbour_lift(correlation, inputs["cluster"].to_numpy(), analysis["knn_k"],
                                  excluded_edges(inputs, "same_output"))
    return purity


def score_purity(task, settings: Mapping, correlation) -> dict[str, pd.DataFrame]:
    """The cluster purity and lift of R's ``knn_k`` nearest neighbours, same-label edges out."""
    from losskernel.readings import metrics_table, obs_table
    from losskernel.readings.neighbours import neighbour_lift

    inputs = obs_table(correlation)
    purity, chance, lift = neighbour_lift(correlation["kernel"].values,
                                          inputs["cluster"].to_numpy(), settings["knn_k"],
                                          excluded_edges(inputs, "same_output"))
    return {"metrics": metrics_table({"cluster_purity": purity, "cluster_lift": lift}),
            "chance": pd.DataFrame({"chance": [chance]})}


def draw_purity(experiment: str, task, settings: Mapping, correlation, metrics) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = correlation["kernel"].values[np.triu_indices(correlation.sizes["obs_id"], 1)]
    figure, axis = plt.subplots()
    axis.hist(values, bins=20)
    purities = [table.set_index("metric")["value"]["cluster_purity"] for table in metrics]
    axis.set_title(f"{experiment} (seed {settings['figure_seed']}): off-diagonal R; purity "
                   f"{np.mean(purities):.2f}")
    return {"histogram": figure}


DATA_FILES = ()
READINGS = (Reading(name="purity", rule="score_purity",
                    inputs={"correlation": "kernel-correlation.nc"},
                    tables={"chance": "purity-chance.tsv"},
                    metrics=("cluster_purity", "cluster_lift"), compute=score_purity,
                    settings=("analysis.knn_k",)),)
FIGURES = (FigureSet(name="purity", rule="plot_purity", category="A task of the tests",
                     figures={"histogram": Figure("r_histogram", caption=__file__)},
                     inputs={"correlation": ("figure_seed", "kernel-correlation.nc"),
                             "metrics": ("every_seed", "purity.tsv")},
                     draw=draw_purity, settings=("analysis.figure_seed",)),)

# The tests --------------------------------------------------------------------------------

EXPERIMENT = {
    "task": "test_custom_task",
    "data": {"num_examples": 48, "seed": 0},
    "training": {"learning_rate": 0.05, "weight_decay": 0.0, "betas": [0.9, 0.99],
                 "max_steps": 300, "patience_steps": 20, "eval_every": 10,
                 "num_checkpoints": 4, "target_train_accuracy": 1.0},
    "kernel_inputs": {"count": 24},
    "sampling": {"seeds": [0, 1], "step_size": 1e-3, "nbeta": 10, "localization": 100,
                 "num_chains": 2, "num_burnin_steps": 5, "num_draws": 30,
                 "num_steps_between_draws": 1, "batch_size": 12, "eval_batch_size": 24},
    "analysis": {"figure_seed": 0, "knn_k": 3, "umap": {"n_neighbors": 5},
                 "convergence": {"num_points": 3}},
    "headline_metrics": ["cluster_purity", "cka_half"],
}


def test_the_module_is_a_task(monkeypatch):
    from losskernel.tasks import load_task

    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    assert load_task("test_custom_task").READINGS == READINGS


@pytest.mark.slow
def test_a_task_named_by_import_path_runs_through_the_workflow(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({"experiments": {"tiny": EXPERIMENT}}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    targets = ["results/tiny/headline.tsv", "results/figures/tiny/r_histogram.png"]
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
         "--directory", str(tmp_path), "--configfile", str(ROOT / "config/config.yaml"),
         str(config), "--cores", "2", *targets],
        cwd=ROOT, capture_output=True, text=True, timeout=1200, env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for rule in ("train_model", "sample_chain", "compute_kernel", "convergence", "score_purity",
                 "summarize_experiment", "plot_purity"):
        assert f"rule {rule}:" in run.stdout + run.stderr, rule
    headline = pd.read_csv(tmp_path / "results/tiny/headline.tsv", sep="\t", comment="#")
    # the task's rows, then the sampler diagnostics every experiment reports
    assert list(headline["metric"]) == ["cluster_purity", "cka_half", "worst_rhat",
                                        "median_ess_bulk", "seed_to_seed_cka"]
    own = headline.head(2)
    assert (own["seeds"] == 2).all() and own["value"].between(0, 1).all()
    assert (own["models"] == 1).all()  # one trained model: its spread is over seeds only
    assert headline["value"].notna().all()
    seed = pd.read_csv(tmp_path / "results/tiny/seed1/purity.tsv", sep="\t", comment="#")
    assert list(seed["metric"]) == ["cluster_purity", "cluster_lift"]
    assert (tmp_path / "results/tiny/seed1/purity-chance.tsv").is_file()
    from PIL import Image

    with Image.open(tmp_path / "results/figures/tiny/r_histogram.png") as figure:
        assert figure.text["losskernel:rule"] == "plot_purity"
    assert not (tmp_path / "results/modarith").exists()  # only what the targets need ran
    # the code its jobs ran includes this module: the hooks training calls, the reading's own
    # function (found through its declaration), by their module's digest
    from losskernel.provenance import read_provenance

    for made in ("results/tiny/model.pt", "results/tiny/seed1/purity.tsv"):
        assert "test_custom_task" in json.loads(read_provenance(tmp_path / made)["code"]), made
