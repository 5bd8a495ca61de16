"""The figures of each workflow rule, from loaded data.

One function per figure rule; each returns ``{output name: Figure}`` with the rule's output
names as keys, and the caller saves them (``plotting.save_figure``). Tables arrive as read by
``pd.read_csv(path, sep="\\t", comment="#")``, kernels as kernel datasets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from losskernel.plotting import basic
from losskernel.plotting import hierarchy as panels
from losskernel.readings import obs_table
from losskernel.readings.gamma_sweep import EDGE_RULES
from losskernel.readings.hierarchy import tree_distance_matrix
from losskernel.readings.mislabels import mislabel_baseline_curves
from losskernel.readings.separation import KNN_READINGS

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.figure import Figure

ATTRIBUTE_NAMES: dict[str, str] = {
    # legend names of the γ sweep's attributes
    "true_label": "true class", "ink_bin": "ink (tercile)",
    "wordnet_path": "WordNet hierarchy (mean LCA depth)", "colour_bin": "colour (hue bin)"}


SIMILARITY_NAMES: dict[str, str] = {
    # legend names of the similarities the hierarchy reading and the γ sweep compare
    "R": "R", "absR": "|R|", "K": "K", "pixels": "pixels (cosine)",
    "activations": "penultimate activations (cosine)",
    "probabilities": "output probabilities (cosine)"}


def separation_figures(
    experiment: str, correlation: xr.Dataset, embedding: pd.DataFrame,
    scores: Sequence[pd.DataFrame], metrics: Sequence[pd.DataFrame], seeds: Sequence[int],
    figure_seed: int, knn_k: int,
) -> dict[str, Figure]:
    """The experiment's four figures: heatmap, distributions, UMAP and ROC curves.

    ``correlation`` (the kernel dataset of R) belongs to ``figure_seed``; ``embedding`` holds
    its rows ``seed<figure_seed>``. ``scores`` and ``metrics`` are the separation tables of each
    of ``seeds``; the ROC figure shows the strict reading of every seed and the other readings
    of the figure seed. Keys: ``heatmap``, ``distributions``, ``umap``, ``roc``.
    """
    if figure_seed not in seeds:
        raise ValueError(f"the figure seed {figure_seed} is not among the seeds {list(seeds)}; "
                         f"pass its scores and metrics")
    inputs = obs_table(correlation)
    R = correlation["kernel"].values
    groups = inputs["task"].to_numpy()
    secondary = inputs["label"].to_numpy() if "label" in inputs else None
    figures = {
        "heatmap": basic.plot_kernel_heatmap(
            R, groups, f"{experiment}: R sorted by task, then output", secondary),
        "distributions": basic.plot_kernel_distributions(
            R, groups, f"{experiment}: off-diagonal R"),
    }
    embedding = embedding[embedding["embedding"] == f"seed{figure_seed}"]
    figures["umap"] = basic.plot_embedding(
        embedding[["umap_1", "umap_2"]].to_numpy(), embedding["task"].to_numpy(),
        f"{experiment}: UMAP of d = sqrt(2(1 - R)),\nsame-output edges removed")
    curves = _separation_curves(R, groups, scores, metrics, seeds, figure_seed)
    figures["roc"] = basic.plot_roc_curves(
        curves, f"{experiment}: task separation under R ({knn_k}-NN votes, pairs)")
    return figures


def _separation_curves(
    R: np.ndarray, groups: np.ndarray, scores: Sequence[pd.DataFrame],
    metrics: Sequence[pd.DataFrame], seeds: Sequence[int], figure_seed: int,
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The ROC curves of :func:`separation_figures`: kNN readings, then every pair scored by R."""
    curves = []
    for seed, seed_scores, seed_metrics in zip(seeds, scores, metrics, strict=True):
        values = seed_metrics.set_index("metric")["value"]
        positive = seed_scores["task"].to_numpy() == np.unique(seed_scores["task"])[0]
        readings = list(KNN_READINGS) if seed == figure_seed else ["roc_auc"]
        for reading in readings:
            curves.append((f"seed {seed}, {KNN_READINGS[reading][1]} "
                           f"(AUC {values[reading]:.3f})", positive,
                           seed_scores[reading].to_numpy()))
        if seed == figure_seed:
            pairwise_auc = values["roc_auc_pairwise"]
    upper_i, upper_j = np.triu_indices(len(groups), k=1)
    curves.append((f"seed {figure_seed}, every pair scored by R (AUC {pairwise_auc:.3f})",
                   groups[upper_i] == groups[upper_j], R[upper_i, upper_j]))
    return curves


def gamma_sweep_figures(
    experiment: str, localizations: Sequence[float], cka: pd.DataFrame, lift: pd.DataFrame,
    convergence: Sequence[pd.DataFrame], ceiling: pd.DataFrame,
) -> dict[str, Figure]:
    """Figures of the γ sweep: CKA matrix beside the adjacent γ's CKA and its noise
    ``ceiling`` (``cka``), lift against γ (``lift``), CKA convergence per γ
    (``convergence``, one curve table per γ of ``localizations``)."""
    labels = [f"{gamma:g}" for gamma in localizations]
    ordered = sorted(localizations)
    cka = cka.pivot(index="gamma_a", columns="gamma_b", values="cka")
    cka = cka.loc[ordered, ordered].to_numpy()
    of_K = ceiling.set_index("similarity").loc["K"]
    figures = {"cka": basic.plot_cka_with_ceiling(
        cka, [f"{gamma:g}" for gamma in ordered], float(of_K["cka"]),
        f"same γ = {of_K['gamma']:g}, seeds {int(of_K['seed_a'])} and {int(of_K['seed_b'])}",
        f"{experiment}: CKA between the kernels K at each γ, and its noise ceiling")}
    graph_names = {"none": "all edges", "same_output": "same-output edges removed"}
    several = lift["similarity"].nunique() > 1

    def name(attribute: str, similarity: str) -> str:
        named = ATTRIBUTE_NAMES.get(attribute, attribute)
        return f"{named}, {SIMILARITY_NAMES[similarity]}" if several else named

    lift_panels = {
        f"neighbour graph: {graph_names[rule]}": {
            name(attribute, similarity): (group["gamma"].to_numpy(), group["lift"].to_numpy())
            for (attribute, similarity), group in lift[lift["edges"] == rule].groupby(
                ["attribute", "similarity"])}
        for rule in EDGE_RULES}
    figures["lift"] = basic.plot_lines(
        lift_panels, xlabel="localization γ", ylabel="neighbour lift (1 = chance)",
        reference=1.0,
        title=f"{experiment}: which structure the kernel's neighbours share, against γ")
    curves = {f"γ = {label}": (table["draws_per_chain"].to_numpy(),
                               table["cka_vs_final"].to_numpy())
              for label, table in zip(labels, convergence, strict=True)}
    figures["convergence"] = basic.plot_lines(
        {"kernel of the first t draws against all draws": curves}, reference=0.95,
        xlabel="draws per chain t", ylabel="linear CKA",
        title=f"{experiment}: convergence of K")
    return figures


def mislabel_figures(experiment: str, figure_seed: int, scores: pd.DataFrame,
                     metrics: pd.DataFrame, embedding: pd.DataFrame) -> dict[str, Figure]:
    """Figures of the mislabel analysis at the figure seed: ROC curves of K(z, z) and of every
    baseline (``roc``), the K(z, z) histograms of both groups (``self_covariance``), and the
    UMAP with flipped labels marked (``umap``, the rows ``seed<figure_seed>`` of
    ``embedding``)."""
    values = metrics.set_index("metric")["value"]
    flipped = scores["mislabeled"].to_numpy().astype(bool)
    curves = [(f"K(z,z), the kernel (AUC {values['mislabel_roc_auc']:.3f})", flipped,
               scores["self_cov"].to_numpy())]
    for column, name in mislabel_baseline_curves(values).items():
        curves.append((f"{name} (AUC {values[f'baseline_roc_auc_{column}']:.3f})", flipped,
                       scores[column].to_numpy()))
    figures = {"roc": basic.plot_roc_curves(
        curves, f"{experiment}: detecting flipped labels (seed {figure_seed})",
        highlight_first=True)}
    figures["self_covariance"] = basic.plot_group_histograms(
        scores["self_cov"].to_numpy(), flipped, ("normal", "mislabeled"), "K(z, z)",
        f"{experiment}: self-covariance (ratio of means {values['self_cov_ratio']:.2f})")
    embedding = embedding[embedding["embedding"] == f"seed{figure_seed}"]
    figures["umap"] = basic.plot_labelled_embedding(
        embedding[["umap_1", "umap_2"]].to_numpy(), embedding["label"].to_numpy(),
        embedding["mislabeled"].to_numpy().astype(bool),
        f"{experiment}: UMAP of R (same-label edges removed), colour = training label",
        marked_name="mislabeled")
    return figures


def trajectory_figures(experiment: str, table: pd.DataFrame,
                       embedding: pd.DataFrame) -> dict[str, Figure]:
    """Figures of the development: the structure scores per checkpoint (``score``), and the
    UMAPs of R at every checkpoint with identical hyperparameters (``umap``, the rows
    ``checkpoint<i>`` of ``embedding``)."""
    steps = table["step"].to_numpy() + 1  # step 0 (initialization) on a log axis
    name = table["structure_score_name"].iloc[0]
    lines = {f"structure score: {name}": (steps, table["structure_score"].to_numpy()),
             "naive: same-output pairs vs the rest (counts shared logits)": (
                 steps, table["same_output_pair_auc"].to_numpy())}
    if "lift" in name:  # a lift (chance 1) and an AUC (chance 0.5) do not share an axis
        score = basic.plot_lines(
            {"scores of R and K at each checkpoint": dict(list(lines.items())[:1])},
            xlabel="training step + 1", ylabel="lift (1 = chance)", reference=1.0,
            title=f"{experiment}: how the kernel's structure develops")
    else:
        score = basic.plot_lines(
            {"scores of R and K at each checkpoint": lines}, xlabel="training step + 1",
            ylabel="ROC-AUC", reference=0.5,
            title=f"{experiment}: how the kernel's structure develops")
    colour = "task" if "task" in embedding else "label"
    embeddings = []
    for row in table.itertuples():
        points = embedding[embedding["embedding"] == f"checkpoint{row.checkpoint}"]
        marked = points["mislabeled"].to_numpy().astype(bool) if "mislabeled" in points else None
        embeddings.append((f"step {row.step}: score {row.structure_score:.3f}",
                           points[["umap_1", "umap_2"]].to_numpy(), points[colour].to_numpy(),
                           marked))
    umap = basic.plot_embedding_grid(
        embeddings, f"{experiment}: UMAP of R at each checkpoint (colour = {colour})",
        marked_name="mislabeled")
    return {"score": score, "umap": umap}


def figure1_figures(
    experiment: str, figure_seed: int, correlation: xr.Dataset, embedding: pd.DataFrame,
    lift: pd.DataFrame, knn_k: int, inset_neighbours: int, inset_groups: Sequence[str],
    excluded_edges: Callable[[pd.DataFrame, str], np.ndarray | None],
    thumbnails: Callable[[Sequence[str]], Sequence[np.ndarray]], similarity: str = "R",
) -> dict[str, Figure]:
    """The panels of the paper's Figure 1 at the figure seed.

    UMAP in 2-D (``umap``) and 3-D (``umap_3d``; the rows ``seed<figure_seed>`` and
    ``seed<figure_seed>-3d`` of ``embedding``, made from ``similarity``: R, or ``|R|`` for
    ``absR``) coloured by place in the WordNet hierarchy; R beside the WordNet tree distance,
    both in hierarchy order (``matrices``); neighbourhood insets (``insets``): each group of
    ``inset_groups`` gets its anchor image and its ``inset_neighbours`` nearest neighbours
    under the same similarity, same-class edges removed by
    ``excluded_edges(inputs, "same_output")``, drawn from ``thumbnails(obs_ids)`` (one
    H x W x 3 uint8 image per obs_id); the taxonomic lift per depth with its chance baseline
    (``lift``, the table of ``knn_k`` neighbours).
    """
    inputs, R = obs_table(correlation), correlation["kernel"].values
    positions = inputs["hierarchy_position"].to_numpy()
    flat = embedding[embedding["embedding"] == f"seed{figure_seed}"]
    solid = embedding[embedding["embedding"] == f"seed{figure_seed}-3d"]
    for name, table in ((f"seed{figure_seed}", flat), (f"seed{figure_seed}-3d", solid)):
        if not np.array_equal(table["obs_id"].to_numpy(), inputs["obs_id"].to_numpy()):
            raise ValueError(f"the embedding {name!r} does not embed the inputs of the "
                             f"correlation kernel (in its order); embed this kernel again")
    coords = flat[["umap_1", "umap_2"]].to_numpy()
    shown = SIMILARITY_NAMES[similarity]
    title = f"{experiment}: UMAP of d = sqrt(2(1 - {shown})), same-class edges removed"
    groups = inputs["inset_group"].fillna("").astype(str).to_numpy()
    order = np.lexsort((inputs["obs_id"].to_numpy(), positions))
    return {
        "umap": panels.plot_hierarchy_umap(coords, positions, title, groups=groups),
        "umap_3d": panels.plot_hierarchy_umap_3d(
            solid[["umap_1", "umap_2", "umap_3"]].to_numpy(), positions, title),
        "matrices": panels.plot_kernel_beside_hierarchy(
            R, tree_distance_matrix(inputs["wordnet_path"].tolist()), order,
            f"{experiment}: R and WordNet tree distance, images in hierarchy order"),
        "insets": _insets_figure(experiment, inputs, np.abs(R) if similarity == "absR" else R,
                                 coords, inset_neighbours, inset_groups, excluded_edges,
                                 thumbnails, shown),
        "lift": panels.plot_taxonomic_lift(
            lift, f"{experiment}: taxonomic lift of R's {knn_k} nearest neighbours per "
            f"WordNet depth"),
    }


def _insets_figure(
    experiment: str, inputs: pd.DataFrame, R: np.ndarray, coords: np.ndarray,
    inset_neighbours: int, inset_groups: Sequence[str],
    excluded_edges: Callable[[pd.DataFrame, str], np.ndarray | None],
    thumbnails: Callable[[Sequence[str]], Sequence[np.ndarray]], similarity_name: str = "R",
) -> Figure:
    """The neighbourhood insets of :func:`figure1_figures` under ``R`` (R or ``|R|``, named
    ``similarity_name`` in the title)."""
    positions = inputs["hierarchy_position"].to_numpy()
    groups = inputs["inset_group"].fillna("").astype(str).to_numpy()
    insets = panels.choose_insets(R, groups, inset_neighbours, group_order=list(inset_groups),
                                  excluded_edges=excluded_edges(inputs, "same_output"))
    shown = sorted({index for inset in insets for index in (inset.anchor, *inset.neighbours)})
    images = thumbnails([str(inputs["obs_id"].iloc[index]) for index in shown])
    captions = {index: str(inputs["class_name"].iloc[index]) for index in shown}
    return panels.plot_neighbourhood_insets(
        coords, positions, insets, dict(zip(shown, images, strict=True)), captions,
        f"{experiment}: nearest neighbours under {similarity_name} (same-class edges removed)")


def hierarchy_similarity_figure(experiment: str, lift: pd.DataFrame,
                                metrics: Sequence[pd.DataFrame], depth: int, knn_k: int
                                ) -> Figure:
    """Every similarity of the hierarchy reading against WordNet, side by side.

    Left: the taxonomic lift per depth of each similarity's ``knn_k`` nearest neighbours
    (``lift``, the figure seed's table with a ``similarity`` column). Right: the lift at
    ``depth`` and Spearman's ρ of class similarity against tree closeness, one dot per SGLD
    seed (``metrics``, one metrics table per seed), each labelled with the largest
    class-permutation p-value over the seeds.
    """
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(lift["similarity"]))
    values = pd.concat([table.set_index("metric")["value"] for table in metrics], axis=1)
    figure, axes = plt.subplots(1, 3, figsize=(13.0, 3.8),
                                gridspec_kw={"width_ratios": [1.3, 1, 1]})
    for name in names:
        rows = lift[lift["similarity"] == name].sort_values("depth")
        axes[0].plot(rows["depth"], rows["lift"], marker="o", ms=3, lw=1.2,
                     label=SIMILARITY_NAMES.get(name, name))
    axes[0].axhline(1.0, color="0.5", ls=":", lw=0.8)
    axes[0].axvline(depth, color="0.7", lw=0.8)
    axes[0].set(xlabel="WordNet depth d of the shared ancestor", ylabel="lift(d) (1 = chance)",
                title=f"lift of each similarity's {knn_k} nearest neighbours")
    axes[0].legend(fontsize=7, frameon=False)
    for axis, metric, label in ((axes[1], "depth_lift", f"lift at depth {depth}"),
                                (axes[2], "rank_correlation",
                                 "Spearman ρ: class similarity vs tree closeness")):
        for row, name in enumerate(names):
            seeds = values.loc[f"{metric}_{name}"].to_numpy(dtype=float)
            axis.plot(seeds, np.full(len(seeds), row), "o", color="k", ms=4)
            worst = values.loc[f"{metric}_p_{name}"].to_numpy(dtype=float).max()
            axis.annotate(f"p ≤ {worst:.2g}", (np.nanmax(seeds), row), xytext=(6, -3),
                          textcoords="offset points", fontsize=7)
        axis.axvline(1.0 if metric == "depth_lift" else 0.0, color="0.5", ls=":", lw=0.8)
        axis.set_yticks(range(len(names)), [SIMILARITY_NAMES.get(n, n) for n in names],
                        fontsize=7)
        axis.invert_yaxis()
        axis.set(xlabel=label, title=f"{label}\n(one dot per SGLD seed)")
    figure.suptitle(f"{experiment}: the loss kernel and cheap similarities against WordNet",
                    fontsize=10)
    figure.tight_layout()
    return figure
