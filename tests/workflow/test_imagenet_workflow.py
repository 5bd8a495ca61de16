"""The ImageNet branch (Figure 1) as a user runs it, on a tiny fake ImageNet the tests build."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from PIL import Image
from tests.needs import require

from losskernel.config import load_config
from losskernel.plan import Plan
from losskernel.tasks.imagenet import make_fake_imagenet

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = [str(ROOT / "config/config.yaml"), str(ROOT / "config/imagenet.yaml"),
           str(ROOT / "tests/smoke/without-fashion.yaml")]
SMOKE = ROOT / "tests/smoke/imagenet.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]
# Real ImageNet-1k wnids, one per inset group of Figure 1 and a cat outside them all.
WNIDS = {
    "n02099601": "dogs",  # golden retriever
    "n02480855": "primates",  # gorilla
    "n01530575": "birds",  # brambling
    "n01677366": "diapsids",  # common iguana
    "n01983481": "crustaceans",  # American lobster
    "n02165456": "insects",  # ladybug
    "n07753592": "produce",  # banana
    "n03272010": "musical instruments",  # electric guitar
    "n03594945": "vehicles",  # jeep
    "n02123045": "",  # tabby cat
}
FIGURE1 = ["umap_hierarchy", "umap_hierarchy_3d", "kernel_vs_wordnet", "neighbourhood_insets",
           "taxonomic_lift", "hierarchy_similarities"]


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """Snakemake in ``workdir``; ``.stdout`` holds both streams (errors go to either)."""
    return subprocess.run([*SNAKEMAKE, "--directory", str(workdir), *args], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=1800)


def override(path: Path, imagenet: dict) -> str:
    path.write_text(yaml.safe_dump({"experiments": {"imagenet": imagenet}}))
    return str(path)


def require_wordnet() -> None:
    """The workflow reads nltk's own WordNet corpus when nltk finds one, else Debian's files."""
    import nltk

    try:
        nltk.data.find("corpora/wordnet")
    except LookupError:
        require("wordnet")


@pytest.fixture(scope="module")
def fake_imagenet(tmp_path_factory) -> Path:
    return make_fake_imagenet(tmp_path_factory.mktemp("imagenet") / "train", list(WNIDS), 6)


@pytest.mark.parametrize("root", [None, "does/not/exist"])
def test_a_missing_imagenet_root_fails_the_dry_run_naming_root(tmp_path, root):
    result = snakemake(tmp_path, "--configfile", *CONFIGS,
                       override(tmp_path / "root.yaml", {"data": {"root": root}}), "-n")
    assert result.returncode != 0
    assert "experiments.imagenet.data.root" in result.stdout
    assert "ImageFolder" in result.stdout  # and how to set it
    assert not (tmp_path / "results").exists()


def test_missing_weights_or_checkpoints_fail_the_dry_run_naming_the_key(tmp_path, fake_imagenet):
    root = {"data": {"root": str(fake_imagenet)}}
    weights = override(tmp_path / "weights.yaml", {**root, "model": {"weights": "no.pth"}})
    result = snakemake(tmp_path, "--configfile", *CONFIGS, weights, "-n")
    assert result.returncode != 0 and "experiments.imagenet.model.weights" in result.stdout

    present = tmp_path / "googlenet.pth"
    present.write_bytes(b"")
    checkpoints = override(tmp_path / "checkpoints.yaml", {**root, "model": {
        "weights": str(present), "checkpoints": [{"step": 0, "path": "gone.pt"}]}})
    result = snakemake(tmp_path, "--configfile", *CONFIGS, checkpoints, "-n")
    assert result.returncode != 0
    assert "experiments.imagenet.model.checkpoints[0].path" in result.stdout


def test_pretrained_weights_are_imported_not_trained(tmp_path, fake_imagenet):
    weights = tmp_path / "googlenet.pth"
    weights.write_bytes(b"")  # the dry run only checks that it exists
    config = override(tmp_path / "pretrained.yaml", {
        "data": {"root": str(fake_imagenet)}, "model": {"weights": str(weights)}})
    result = snakemake(tmp_path, "--configfile", *CONFIGS, config, "-n", "figure1")
    assert result.returncode == 0, result.stdout
    assert "import_model" in result.stdout and "wordnet_hierarchy" in result.stdout
    assert "rule train_model" not in result.stdout
    # the γ sweep's 1000 is the main run of seed 0: 3 more γ and the replica of γ = 1000, no
    # trajectory without checkpoints
    assert result.stdout.count("rule sample_chain:") == 1 + 3 + 1  # a job of 4 chains each

    for step in (0, 10, 100):
        (tmp_path / f"step{step}.pt").write_bytes(b"")
    development = override(tmp_path / "development.yaml", {
        "data": {"root": str(fake_imagenet)},
        "model": {"weights": str(weights), "checkpoints": [
            {"step": step, "path": str(tmp_path / f"step{step}.pt")} for step in (0, 10, 100)]},
        "analysis": {"trajectory": {"num_checkpoints": 3, "seed": 0, "sampling": {}}}})
    result = snakemake(tmp_path, "--configfile", *CONFIGS, development, "-n", "figure1")
    assert result.returncode == 0, result.stdout
    assert result.stdout.count("rule merge_chains:") == 1 + 3 + 1 + 3  # one per checkpoint
    assert "rule plot_trajectory:" in result.stdout
    # `losskernel plan` sizes exactly the sampling runs the workflow runs
    planned = set(re.findall(r"wildcards: experiment=imagenet, run=([\w.-]+)", result.stdout))
    plan = Plan.from_config(load_config([*CONFIGS, development]),
                            ROOT / "workflow/schemas/config.schema.yaml")
    assert planned == set(plan.experiment("imagenet").runs)


@pytest.mark.slow
def test_the_imagenet_branch_runs_on_fake_data_and_draws_every_figure1_panel(
        tmp_path, fake_imagenet):
    require_wordnet()
    configs = ["--configfile", *CONFIGS, str(SMOKE),
               override(tmp_path / "root.yaml", {"data": {"root": str(fake_imagenet)}})]
    run = snakemake(tmp_path, *configs, "--cores", "2", "figure1")
    assert run.returncode == 0, run.stdout[-6000:]

    results = tmp_path / "results"
    for name in [*FIGURE1, "gamma_cka", "gamma_lift", "convergence", "trajectory_score",
                 "trajectory_umap"]:
        with Image.open(results / f"figures/imagenet/{name}.png") as figure:
            assert figure.text["losskernel:rule"] in ("plot_figure1", "plot_gamma_sweep",
                                                      "plot_trajectory")

    hierarchy = pd.read_csv(results / "wordnet/imagenet1k-hierarchy.tsv", sep="\t", comment="#")
    assert len(hierarchy) == 1000
    groups = hierarchy.set_index("wnid").loc[list(WNIDS), "inset_group"].fillna("")
    assert groups.to_dict() == WNIDS

    lifts = pd.read_csv(results / "imagenet/seed0/taxonomic-lift.tsv", sep="\t", comment="#")
    assert list(dict.fromkeys(lifts["similarity"])) == [
        "R", "absR", "K", "pixels", "activations", "probabilities"]
    lift = lifts[lifts["similarity"] == "R"].reset_index(drop=True)
    assert list(lift["depth"]) == list(range(1, len(lift) + 1))
    # depth 1-3 (physical entity, ...) hold for every pair of these classes: chance 1, lift 1
    assert lift.loc[0, "chance"] == 1 and lift.loc[0, "lift"] == 1
    # 3 images × 10 classes, 4 neighbours each, all cross-class: 27 × 10 candidate pairs each
    assert (lift["edges"] == 30 * 4).all() and (lift["candidate_pairs"] == 30 * 27).all()

    metrics = pd.read_csv(results / "imagenet/seed0/hierarchy.tsv", sep="\t", comment="#")
    values = metrics.set_index("metric")["value"]
    assert values["hierarchy_lift"] == values["hierarchy_lift_R"]  # the headline reads R
    assert values[[name for name in values.index if name.endswith("_p")]].between(0, 1).all()
    sweep = pd.read_csv(results / "imagenet/gamma-sweep-lift.tsv", sep="\t", comment="#")
    assert set(sweep["attribute"]) == {"wordnet_path", "colour_bin"}
    assert sorted(set(sweep["gamma"])) == [100, 1000]
    embedding = pd.read_csv(results / "imagenet/umap.tsv", sep="\t", comment="#")
    assert embedding.loc[embedding["embedding"] == "seed0-3d", "umap_3"].notna().sum() == 30
    trajectory = pd.read_csv(results / "imagenet/trajectory.tsv", sep="\t", comment="#")
    assert list(trajectory["step"]) == [0, 2, 6]  # 3 of the trained log-spaced checkpoints
    headline = pd.read_csv(results / "imagenet/headline.tsv", sep="\t", comment="#")
    expected = yaml.safe_load((ROOT / "config/imagenet.yaml").read_text())
    # one SGLD seed: no seed-to-seed CKA among the diagnostic rows
    assert list(headline["metric"]) == [*expected["experiments"]["imagenet"]["headline_metrics"],
                                        "worst_rhat", "median_ess_bulk"]
    assert headline["value"].notna().all()

    again = snakemake(tmp_path, *configs, "-n", "figure1")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout
