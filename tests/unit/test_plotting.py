"""The figures: every panel draws, the right axes and insets, and each workflow rule's
figures under exactly its output names."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from PIL import Image

from losskernel import plotting
from losskernel.plotting import figures
from losskernel.plotting import hierarchy as figure1
from losskernel.readings.separation import KNN_READINGS

RECORD = {"rule": "figure1", "seed": 0}


@pytest.fixture(autouse=True)
def close_figures():
    """Figures are returned open; close them so that no test leaves more than 20 behind."""
    yield
    plt.close("all")


def tiny_imagenet(rng, num_classes: int = 4, per_class: int = 6):
    """A fake image task the size the pipeline tests use: a few classes of random-noise images."""
    labels = np.repeat(np.arange(num_classes), per_class)
    positions = labels / (num_classes - 1)
    same = (labels[:, None] == labels[None, :]).astype(float)
    noise = rng.normal(scale=0.05, size=same.shape)
    kernel = 0.6 * same + (noise + noise.T) / 2
    np.fill_diagonal(kernel, 1.0)
    distance = 2.0 * np.abs(labels[:, None] - labels[None, :])
    groups = np.array(["dogs", "dogs", "", "vehicles"])[labels]
    coords = rng.normal(size=(len(labels), 3)) + labels[:, None]
    thumbnails = {i: rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for i in range(len(labels))}
    captions = {i: f"class {c}" for i, c in enumerate(labels)}
    return labels, positions, kernel, distance, groups, coords, thumbnails, captions


def assert_saves_with_record(figure, path):
    plotting.save_figure(figure, path, RECORD)
    with Image.open(path) as image:
        assert image.info["losskernel:rule"] == "figure1"


def test_every_figure_saves_with_its_record(rng, tmp_path):
    labels, positions, kernel, distance, groups, coords, thumbnails, captions = tiny_imagenet(rng)
    insets = figure1.choose_insets(kernel, groups, k=3,
                                   excluded_edges=labels[:, None] == labels[None, :])
    table = pd.DataFrame({"depth": [1, 2, 3], "purity": [0.8, 0.4, 0.0],
                          "chance": [0.5, 0.1, 0.0], "lift": [1.6, 4.0, np.nan]})
    figures = [
        figure1.plot_hierarchy_umap(coords[:, :2], positions, "2-D", groups=groups),
        figure1.plot_hierarchy_umap_3d(coords, positions, "3-D"),
        figure1.plot_kernel_beside_hierarchy(kernel, distance, np.argsort(positions), "B"),
        figure1.plot_neighbourhood_insets(coords[:, :2], positions, insets, thumbnails, captions),
        figure1.plot_neighbourhood_insets(coords[:, :2], positions, [], thumbnails, captions),
        figure1.plot_taxonomic_lift(table, "lift"),
    ]
    for index, figure in enumerate(figures):
        assert_saves_with_record(figure, tmp_path / f"figure{index}.png")


def test_orbit_views_show_one_viewpoint_each(rng):
    views = ((10, 0), (45, 90), (80, 180))
    figure = figure1.plot_hierarchy_umap_3d(rng.normal(size=(20, 3)), np.linspace(0, 1, 20),
                                            views=views)
    axes_3d = [axis for axis in figure.axes if axis.name == "3d"]
    assert [(axis.elev, axis.azim) for axis in axes_3d] == list(views)
    plt.close(figure)


def test_insets_with_missing_thumbnails_and_no_insets_still_draw(rng):
    coords, positions = rng.normal(size=(5, 2)), np.linspace(0, 1, 5)
    inset = figure1.Inset("dogs", anchor=0, neighbours=[3, 1])
    figure = figure1.plot_neighbourhood_insets(coords, positions, [inset], {}, {})
    assert len(figure.axes) == 1 + 1 + 3  # UMAP, colourbar, anchor and two neighbours
    plt.close(figure)
    empty = figure1.plot_neighbourhood_insets(coords, positions, [], {}, {})
    assert empty.axes[0].get_title() == "no inset group present"
    plt.close(empty)


def test_hierarchy_colours_are_the_colourmap_ends():
    colours = figure1.hierarchy_colours(np.array([0.0, 1.0]))
    colourmap = plt.get_cmap(figure1.HIERARCHY_COLOURMAP)
    np.testing.assert_array_equal(colours, [colourmap(0.0), colourmap(1.0)])
    assert not np.allclose(colours[0], colours[1])
    with pytest.raises(ValueError, match="must lie in"):
        figure1.hierarchy_colours(np.array([0.5, 1.5]))


def test_block_average_known_answers():
    square = np.arange(16.0).reshape(4, 4)
    np.testing.assert_array_equal(figure1.block_average(square, 2),
                                  [[2.5, 4.5], [10.5, 12.5]])
    uneven = np.arange(9.0).reshape(3, 3)  # cut at 0, 1, 3: blocks of one and two
    np.testing.assert_array_equal(figure1.block_average(uneven, 2), [[0.0, 1.5], [4.5, 6.0]])
    np.testing.assert_array_equal(figure1.block_average(uneven, 3), uneven)


def test_large_heatmap_is_downsampled_before_drawing(rng):
    size = 3000
    kernel = np.eye(size)
    distance = np.zeros((size, size))
    figure = figure1.plot_kernel_beside_hierarchy(kernel, distance, np.arange(size),
                                                  max_pixels=1000)
    for axis in figure.axes[:2]:  # the two heatmaps, then their colourbars
        (image,) = axis.get_images()
        assert image.get_array().shape == (1000, 1000)
        assert axis.get_xlim() == (-0.5, size - 0.5)  # ticks still count images
    plt.close(figure)


def test_heatmaps_follow_the_order():
    kernel = np.array([[1.0, 0.2, 0.3], [0.2, 1.0, 0.4], [0.3, 0.4, 1.0]])
    distance = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 3.0], [2.0, 3.0, 0.0]])
    order = np.array([2, 0, 1])
    figure = figure1.plot_kernel_beside_hierarchy(kernel, distance, order)
    shown_kernel = figure.axes[0].get_images()[0].get_array()
    shown_distance = figure.axes[1].get_images()[0].get_array()
    np.testing.assert_array_equal(shown_kernel, kernel[np.ix_(order, order)])
    np.testing.assert_array_equal(shown_distance[0], [0.0, 2.0, 3.0])
    plt.close(figure)


def planted_kernel():
    """Dogs 0-2, birds 3-5, ungrouped 6-8. Among dogs only 1 has both other dogs as its two
    nearest neighbours (2 closer than 0); 0 and 2 each have an ungrouped image closer than their
    second dog. Birds are all equally close to each other. Every other pair is at -0.1."""
    kernel = np.full((9, 9), -0.1)
    np.fill_diagonal(kernel, 1.0)
    for i, j, value in [(1, 2, 0.95), (1, 0, 0.9), (0, 6, 0.8), (2, 7, 0.8), (0, 2, 0.1),
                        (3, 4, 0.9), (3, 5, 0.9), (4, 5, 0.9)]:
        kernel[i, j] = kernel[j, i] = value
    groups = np.array(["dogs"] * 3 + ["birds"] * 3 + [""] * 3)
    return kernel, groups


def test_choose_insets_picks_the_most_in_group_member():
    kernel, groups = planted_kernel()
    insets = figure1.choose_insets(kernel, groups, k=2,
                                   group_order=["dogs", "primates", "birds"])
    assert insets == [figure1.Inset("dogs", 1, [2, 0]),  # primates absent: skipped
                      figure1.Inset("birds", 3, [4, 5])]  # a three-way tie: the lowest index


def test_choose_insets_group_order_defaults_to_first_appearance_and_filters():
    kernel, groups = planted_kernel()
    assert [inset.group for inset in figure1.choose_insets(kernel, groups, k=2)] == [
        "dogs", "birds"]
    assert [inset.group for inset in figure1.choose_insets(kernel, groups, k=2,
                                                           group_order=["birds"])] == ["birds"]
    assert figure1.choose_insets(kernel, groups, k=2, group_order=["insects"]) == []


def test_choose_insets_respects_excluded_edges():
    kernel, groups = planted_kernel()
    excluded = np.zeros_like(kernel, dtype=bool)
    excluded[1, 2] = excluded[2, 1] = True  # e.g. dogs 1 and 2 share a label
    # now 0 and 1 each keep one dog among their two neighbours, and 2 keeps dog 0 (0.1):
    # a three-way tie, the lowest index wins
    (dogs,) = figure1.choose_insets(kernel, groups, k=2, group_order=["dogs"],
                                    excluded_edges=excluded)
    assert dogs == figure1.Inset("dogs", 0, [1, 6])
    everything_else = ~np.eye(9, dtype=bool)
    everything_else[3, [4, 5]] = False  # bird 3 may only see 4 and 5
    (birds,) = figure1.choose_insets(kernel, groups, k=4, group_order=["birds"],
                                     excluded_edges=everything_else)
    assert birds == figure1.Inset("birds", 3, [4, 5])  # fewer than k: only two candidates


# the figures of each workflow rule ---------------------------------------------------------


def correlation_dataset(rng, coords):
    """A kernel dataset of R for the inputs ``coords`` (one per-input array each)."""
    num_inputs = len(next(iter(coords.values())))
    noise = rng.normal(scale=0.3, size=(num_inputs, num_inputs))
    values = np.clip((noise + noise.T) / 2, -1, 1)
    np.fill_diagonal(values, 1.0)
    obs_id = [f"x_{i:04d}" for i in range(num_inputs)]
    return xr.Dataset({"kernel": (("obs_id", "obs_id_2"), values.astype(np.float32))},
                      coords={"obs_id": obs_id, "obs_id_2": obs_id,
                              **{name: ("obs_id", value) for name, value in coords.items()}})


def umap_rows(rng, obs_id, name, dimensions=2, **columns):
    return pd.DataFrame({"obs_id": obs_id, **columns, "embedding": name,
                         **{f"umap_{axis + 1}": rng.normal(size=len(obs_id))
                            for axis in range(dimensions)}})


def curve_labels(figure):
    """The legend entries of a one-axis figure."""
    return [text.get_text() for text in figure.axes[0].get_legend().get_texts()]


def test_separation_figures(rng):
    task = np.repeat(["add", "div"], 10)
    correlation = correlation_dataset(rng, {"task": task, "label": np.arange(20) % 4})
    obs_id = correlation["obs_id"].values
    embedding = pd.concat([umap_rows(rng, obs_id, f"seed{seed}", task=task) for seed in (0, 1)])
    scores = [pd.DataFrame({"obs_id": obs_id, "task": task,
                            **{reading: rng.random(20) for reading in KNN_READINGS}})] * 2
    metrics = [pd.DataFrame({"metric": [*KNN_READINGS, "roc_auc_pairwise"],
                             "value": [0.9, 0.8, 0.7, 0.6]})] * 2
    drawn = figures.separation_figures("toy", correlation, embedding, scores, metrics,
                                       seeds=[0, 1], figure_seed=1, knn_k=5)
    assert list(drawn) == ["heatmap", "distributions", "umap", "roc"]
    assert len(drawn["distributions"].axes) == 3  # within add, within div, cross-task
    assert curve_labels(drawn["roc"]) == [
        "seed 0, same-output edges removed (AUC 0.900)",
        *(f"seed 1, {label} (AUC {auc})" for (_, label), auc in
          zip(KNN_READINGS.values(), ["0.900", "0.800", "0.700"], strict=True)),
        "seed 1, every pair scored by R (AUC 0.600)"]
    with pytest.raises(ValueError, match="figure seed 2 is not among the seeds"):
        figures.separation_figures("toy", correlation, embedding, scores, metrics,
                                   seeds=[0, 1], figure_seed=2, knn_k=5)


def test_gamma_sweep_figures():
    gammas = [10.0, 100.0]
    cka = pd.DataFrame({"gamma_a": [10.0, 10.0, 100.0, 100.0],
                        "gamma_b": [10.0, 100.0, 10.0, 100.0], "cka": [1.0, 0.3, 0.3, 1.0]})
    lift = pd.DataFrame([{"gamma": gamma, "similarity": "R", "edges": rule,
                          "attribute": attribute, "purity": 0.5, "chance": 0.25, "lift": 2.0}
                         for gamma in gammas for rule in ("none", "same_output")
                         for attribute in ("true_label", "ink_bin")])
    curve = pd.DataFrame({"draws_per_chain": [10, 100], "cka_vs_final": [0.8, 1.0]})
    ceiling = pd.DataFrame({"gamma": 100.0, "seed_a": 0, "seed_b": 2,
                            "similarity": ["K", "R", "absR"], "cka": [0.9, 0.8, 0.85]})
    drawn = figures.gamma_sweep_figures("toy", gammas, cka, lift, [curve, curve], ceiling)
    assert list(drawn) == ["cka", "lift", "convergence"]
    np.testing.assert_array_equal(drawn["cka"].axes[0].get_images()[0].get_array(),
                                  [[1.0, 0.3], [0.3, 1.0]])
    adjacent, ceiling_line = drawn["cka"].axes[1].get_lines()  # axes[2]: the colour bar
    assert list(adjacent.get_ydata()) == [0.3] and list(ceiling_line.get_ydata()) == [0.9, 0.9]
    assert ceiling_line.get_label() == "same γ = 100, seeds 0 and 2"
    assert [axis.get_title() for axis in drawn["lift"].axes] == [
        "neighbour graph: all edges", "neighbour graph: same-output edges removed"]
    assert curve_labels(drawn["lift"]) == ["ink (tercile)", "true class"]
    assert curve_labels(drawn["convergence"]) == ["γ = 10", "γ = 100"]


def test_mislabel_figures(rng):
    flipped = np.arange(20) < 4
    scores = pd.DataFrame({"obs_id": [f"x{i}" for i in range(20)], "mislabeled": flipped,
                           "self_cov": rng.random(20) + flipped,
                           "posterior_mean_loss": rng.random(20),
                           "loss_at_optimum": rng.random(20)})
    metrics = pd.DataFrame({"metric": ["mislabel_roc_auc", "self_cov_ratio",
                                       "baseline_roc_auc_posterior_mean_loss",
                                       "baseline_roc_auc_loss_at_optimum"],
                            "value": [0.95, 3.0, 0.7, 0.6]})
    embedding = umap_rows(rng, scores["obs_id"], "seed0", label=np.arange(20) % 3,
                          mislabeled=flipped)
    drawn = figures.mislabel_figures("toy", 0, scores, metrics, embedding)
    assert list(drawn) == ["roc", "self_covariance", "umap"]
    assert curve_labels(drawn["roc"]) == ["K(z,z), the kernel (AUC 0.950)",
                                          "SGLD posterior mean loss (AUC 0.700)",
                                          "loss at w* (AUC 0.600)"]
    assert curve_labels(drawn["umap"])[-1] == "mislabeled (n=4)"


@pytest.mark.parametrize("name, lines", [("mislabel ROC-AUC of K(z,z)", 2),
                                         ("WordNet hierarchy lift of R", 1)])
def test_trajectory_figures(rng, name, lines):
    table = pd.DataFrame({"checkpoint": [0, 1, 2], "step": [0, 10, 100],
                          "structure_score": [0.5, 0.7, 0.9],
                          "same_output_pair_auc": [0.9, 0.9, 0.9], "structure_score_name": name})
    obs_id = [f"x{i}" for i in range(12)]
    embedding = pd.concat([umap_rows(rng, obs_id, f"checkpoint{i}", label=np.arange(12) % 3)
                           for i in range(3)])
    drawn = figures.trajectory_figures("toy", table, embedding)
    assert list(drawn) == ["score", "umap"]
    assert len(drawn["score"].axes[0].get_lines()) == lines + 1  # and the chance level
    assert [axis.get_title() for axis in drawn["umap"].axes if axis.get_visible()] == [
        "step 0: score 0.500", "step 10: score 0.700", "step 100: score 0.900"]


def figure1_inputs(rng):
    labels = np.repeat(np.arange(4), 5)
    paths = np.array(["r>a>a1", "r>a>a2", "r>b>b1", "r>b>b2"])[labels]
    coords = {"label": labels, "hierarchy_position": labels / 3, "wordnet_path": paths,
              "inset_group": np.array(["dogs", "dogs", None, "birds"], dtype=object)[labels],
              "class_name": np.array([f"class {c}" for c in labels])}
    correlation = correlation_dataset(rng, coords)
    obs_id = correlation["obs_id"].values
    embedding = pd.concat([umap_rows(rng, obs_id, "seed0"),
                           umap_rows(rng, obs_id, "seed0-3d", dimensions=3)])
    lift = pd.DataFrame({"depth": [1, 2], "purity": [0.8, 0.3], "chance": [0.5, 0.1],
                         "lift": [1.6, 3.0]})
    return correlation, embedding, lift


def same_label(inputs, rule):
    assert rule == "same_output"
    label = inputs["label"].to_numpy()
    return label[:, None] == label[None, :]


def test_figure1_figures(rng):
    correlation, embedding, lift = figure1_inputs(rng)
    asked = []

    def thumbnails(obs_ids):
        asked.append(list(obs_ids))
        return [np.zeros((8, 8, 3), dtype=np.uint8) for _ in obs_ids]

    drawn = figures.figure1_figures("toy", 0, correlation, embedding, lift, knn_k=4,
                                    inset_neighbours=3, inset_groups=["birds", "fish", "dogs"],
                                    excluded_edges=same_label, thumbnails=thumbnails)
    assert list(drawn) == ["umap", "umap_3d", "matrices", "insets", "lift"]
    inputs = correlation.coords.to_dataset().drop_vars("obs_id_2").to_dataframe()
    groups = inputs["inset_group"].fillna("").to_numpy()
    insets = figure1.choose_insets(correlation["kernel"].values, groups, 3,
                                   group_order=["birds", "fish", "dogs"],
                                   excluded_edges=same_label(inputs, "same_output"))
    assert [inset.group for inset in insets] == ["birds", "dogs"]  # fish: absent, skipped
    shown = sorted({index for inset in insets for index in (inset.anchor, *inset.neighbours)})
    assert asked == [[f"x_{index:04d}" for index in shown]]  # one call, in index order
    # the UMAP and its colourbar, then each inset's anchor and three neighbours
    assert len(drawn["insets"].axes) == 2 + 2 * (1 + 3)
    assert len([axis for axis in drawn["umap_3d"].axes if axis.name == "3d"]) == 4


def test_figure1_figures_refuse_an_embedding_of_other_inputs(rng):
    correlation, embedding, lift = figure1_inputs(rng)
    with pytest.raises(ValueError, match="'seed0-3d' does not embed the inputs"):
        figures.figure1_figures("toy", 0, correlation, embedding.iloc[:-1], lift, knn_k=4,
                                inset_neighbours=3, inset_groups=["dogs"],
                                excluded_edges=same_label, thumbnails=lambda ids: [])


def test_kernel_distributions_are_densities_on_common_bins_with_their_kde(rng):
    """Each panel's histogram integrates to 1 over bins shared by every panel, as many as
    numpy's "auto" choice (at most MAX_BINS), with one density curve and the zero and mean
    lines."""
    from losskernel.plotting import basic

    noise = rng.normal(size=(30, 30))
    kernel = (noise + noise.T) / 2
    groups = np.repeat(["add", "div"], 15)
    drawn = basic.plot_kernel_distributions(kernel, groups, "toy")
    edges = []
    for axis in drawn.axes:
        widths = np.array([bar.get_width() for bar in axis.patches])
        heights = np.array([bar.get_height() for bar in axis.patches])
        assert np.dot(widths, heights) == pytest.approx(1.0)
        edges.append(np.array([bar.get_x() for bar in axis.patches]))
        assert len(axis.get_lines()) == 3  # the density curve, zero, the mean
    assert all(np.array_equal(edges[0], other) for other in edges[1:])
    values = np.concatenate([kernel[(groups[:, None] == g) & (groups[None, :] == g)
                                    & ~np.eye(30, dtype=bool)] for g in ("add", "div")]
                            + [kernel[groups[:, None] != groups[None, :]]])
    low, high = np.quantile(values, [0.001, 0.999])
    shown = values[(values >= low) & (values <= high)]
    auto = len(np.histogram_bin_edges(shown, "auto", range=(low, high))) - 1
    assert len(edges[0]) == min(auto, basic.MAX_BINS) < 80


def test_group_histograms_show_each_groups_share(rng):
    """Both groups' step histograms sum to 1 (shares of the group, whatever its size) on the
    same log-spaced bins; the legend counts each group and gives its mean."""
    from losskernel.plotting import basic

    values = np.exp(rng.normal(size=100))
    flipped = np.arange(100) < 20
    drawn = basic.plot_group_histograms(values, flipped, ("normal", "mislabeled"), "K(z, z)")
    axis = drawn.axes[0]
    assert axis.get_xscale() == "log"
    shares = []
    for fill in axis.collections:
        vertices = fill.get_paths()[0].vertices
        x, y = np.log10(vertices[:, 0]), vertices[:, 1]
        area = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
        width = np.diff(np.unique(np.round(x, 9)))
        assert np.ptp(width) < 1e-6  # equal bins in log space
        shares.append(area / width.mean())  # sum over the bins of the share in each
    np.testing.assert_allclose(shares, [1.0, 1.0])
    assert [text.get_text() for text in axis.get_legend().get_texts()] == [
        f"normal (n=80, mean {values[~flipped].mean():.3g})",
        f"mislabeled (n=20, mean {values[flipped].mean():.3g})"]
