"""Figure 1 on real images: the fashion branch of the tiny config, on 300 Fashion-MNIST test
images (30 per class), through the same code as the ImageNet branch."""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from tests.workflow.conftest import CONFIGS, ROOT, snakemake

FIGURE1 = ["umap_hierarchy", "umap_hierarchy_3d", "kernel_vs_wordnet", "neighbourhood_insets",
           "taxonomic_lift", "hierarchy_similarities"]
SIMILARITIES = ["R", "absR", "K", "pixels", "activations", "probabilities"]


def read(path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", comment="#")


@pytest.mark.slow
def test_the_fashion_branch_reads_real_images_against_wordnet(smoke_run):
    results = smoke_run.work / "results"
    for name in FIGURE1:
        with Image.open(results / f"figures/fashion/{name}.png") as figure:
            assert figure.text["losskernel:rule"] == "plot_figure1"
            assert figure.size[0] > 300
    hierarchy = read(results / "wordnet/fashion-mnist-hierarchy.tsv")
    assert list(hierarchy["name"])[:3] == ["T-shirt/top", "Trouser", "Pullover"]

    features = results / "fashion/input-features.nc"
    import xarray as xr

    with xr.open_dataset(features, engine="netcdf4") as dataset:
        assert dict(dataset.sizes) == {"obs_id": 300, "pixel": 784, "unit": 64, "class": 10}
        np.testing.assert_allclose(dataset["probabilities"].sum("class"), 1.0, rtol=1e-5)
        assert dataset.attrs["rule"] == "input_features"

    for seed in (0, 1):
        lift = read(results / f"fashion/seed{seed}/taxonomic-lift.tsv")
        assert list(dict.fromkeys(lift["similarity"])) == SIMILARITIES
        # 30 images of 10 classes, 5 cross-class neighbours each: 300 · 5 edges, 300 · 270 pairs
        assert (lift["edges"] == 300 * 5).all() and (lift["candidate_pairs"] == 300 * 270).all()
        values = read(results / f"fashion/seed{seed}/hierarchy.tsv").set_index("metric")["value"]
        assert values["depth_lift"] == values["depth_lift_absR"]  # the headline reads |R|
        p_values = values[[name for name in values.index if name.endswith("_p")
                           or "_p_" in name]]
        # the smallest p of 200 permutations is 1/201 (the table keeps 6 significant digits)
        assert len(p_values) == 3 * 7 and p_values.between(1 / 201 - 1e-6, 1).all()
        assert values[[f"rank_correlation_{name}" for name in SIMILARITIES]].between(-1, 1).all()
    # the baselines need no SGLD: the same numbers at every seed
    first, second = (read(results / f"fashion/seed{seed}/hierarchy.tsv").set_index("metric")
                     ["value"] for seed in (0, 1))
    assert first["depth_lift_pixels"] == second["depth_lift_pixels"]

    sweep = read(results / "fashion/gamma-sweep-lift.tsv")
    assert set(sweep["similarity"]) == {"R", "absR"}
    assert set(sweep["attribute"]) == {"wordnet_path", "ink_bin"}
    assert sorted(set(sweep["gamma"])) == [1000, 3000]
    headline = read(results / "fashion/headline.tsv")
    configured = yaml.safe_load((ROOT / "config/config.yaml").read_text())["experiments"]
    assert list(headline["metric"]) == [*configured["fashion"]["headline_metrics"], "worst_rhat",
                                        "median_ess_bulk", "seed_to_seed_cka"]
    assert headline["value"].notna().all()


def test_a_missing_fashion_mnist_stops_the_dry_run_naming_the_key_and_the_package(tmp_path):
    missing = tmp_path / "missing.yaml"
    missing.write_text(yaml.safe_dump(
        {"experiments": {"fashion": {"data": {"root": str(tmp_path / "nowhere")}}}}))
    work = tmp_path / "work"
    work.mkdir()
    result: subprocess.CompletedProcess = snakemake("--directory", str(work), *CONFIGS,
                                                    str(missing), "-n")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "experiments.fashion.data.root" in output
    assert "apt-get install dataset-fashion-mnist" in output
    assert not (work / "results").exists()
