"""The paper's appendix analyses as steps: convergence, γ sweep, mislabels, development.

Like ``losskernel.steps``, each function reads and writes files and stamps its outputs with the
provenance ``record`` it is given; the Snakemake scripts and the command line both call them.

- ``convergence``: linear CKA between the kernel of the first t draws of every chain and the
  kernel of all draws, against t; plus the first half against all draws (``cka_half``, optimistic
  because the halves overlap) and against the second half (``cka_halves``, disjoint).
- ``gamma_sweep``: CKA between the kernels at every pair of localizations γ, and the neighbour
  lift of attributes (class, ink) under R at each γ.
- ``mislabel_baselines`` and ``mislabels``: K(z, z) as a score for flipped labels, beside
  honest baselines that need no SGLD (loss at w*, loss under isotropic Gaussian weight noise,
  per-sample loss over the training checkpoints) and the SGLD posterior mean loss.
- ``trajectory``: the task's structure score at each training checkpoint and its gain.
- ``taxonomy`` and ``figure1`` (ImageNet): the taxonomic lift of R's neighbours per WordNet
  depth, and the panels of the paper's Figure 1.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from losskernel import kernel as kernels
from losskernel import metrics, traces
from losskernel.provenance import write_tsv
from losskernel.steps import PathLike, Record, load_model, obs_table, read_tsv, set_threads
from losskernel.taxonomy import hierarchy_lift, taxonomic_lift, tree_distance_matrix

EDGE_RULES: tuple[str, ...] = ("none", "same_output")
"""Neighbour graphs of the γ sweep: every edge, and same-output edges removed (the paper's map)."""
ATTRIBUTE_NAMES: dict[str, str] = {
    # legend names of the γ sweep's attributes
    "true_label": "true class", "ink_bin": "ink (tercile)",
    "wordnet_path": "WordNet hierarchy (mean LCA depth)", "colour_bin": "colour (hue bin)"}


def draw_counts(num_draws: int, num_points: int) -> list[int]:
    """About ``num_points`` log-spaced draws-per-chain counts from ``min(10, num_draws)`` up to
    ``num_draws`` (both included)."""
    counts = np.geomspace(min(10, num_draws), num_draws, num_points)
    return sorted({*np.round(counts).astype(int).tolist(), num_draws})


def convergence(traces_path: PathLike, centring: str, num_points: int, *, curve_path: PathLike,
                metrics_path: PathLike, record: Record) -> None:
    """CKA of the kernel of the first t draws (of every chain) against the final kernel."""
    losses = traces.load_traces(traces_path)["loss"].transpose("chain", "draw", "obs_id").values
    losses = losses.astype(np.float64)
    num_chains, num_draws, _ = losses.shape
    final = kernels.covariance_kernel(losses, centring)
    rows = [{"draws_per_chain": t, "samples": t * num_chains,
             "cka_vs_final": metrics.linear_cka(kernels.covariance_kernel(losses[:, :t], centring),
                                                final)}
            for t in draw_counts(num_draws, num_points)]
    write_tsv(pd.DataFrame(rows), curve_path, record)
    half = num_draws // 2
    first = kernels.covariance_kernel(losses[:, :half], centring)
    second = kernels.covariance_kernel(losses[:, half:], centring)
    values = {"cka_half": metrics.linear_cka(first, final),
              "cka_halves": metrics.linear_cka(first, second)}
    if num_chains >= 2:
        split = num_chains // 2
        values["cka_chain_halves"] = metrics.linear_cka(
            kernels.covariance_kernel(losses[:split], centring),
            kernels.covariance_kernel(losses[split:], centring))
    _write_metrics(values, metrics_path, record)


def gamma_sweep(
    task: str, localizations: Sequence[float], settings: Mapping, *,
    covariance_paths: Sequence[PathLike], correlation_paths: Sequence[PathLike],
    cka_path: PathLike, lift_path: PathLike, record: Record,
) -> None:
    """CKA between the kernels K of every pair of γ; neighbour lift under R at each γ.

    ``settings``: ``knn_k`` and ``attributes`` (per-input columns, e.g. ``true_label``,
    ``ink_bin``). Lift is computed on the full neighbour graph and with same-output edges
    removed (``EDGE_RULES``); removing them removes the class signal by construction, so what is
    left there is structure beyond the shared output logit. The attribute ``wordnet_path`` (a
    place in a tree, not a category) gets the hierarchy lift instead: mean depth of the lowest
    common WordNet ancestor of neighbours over that of candidate pairs
    (``losskernel.taxonomy.hierarchy_lift``).
    """
    from losskernel.experiments import get_task

    module = get_task(task)
    covariances = [kernels.load_kernel(path)["kernel"].values for path in covariance_paths]
    cka_rows = [{"gamma_a": gamma_a, "gamma_b": gamma_b,
                 "cka": metrics.linear_cka(covariances[a], covariances[b])}
                for a, gamma_a in enumerate(localizations)
                for b, gamma_b in enumerate(localizations)]
    write_tsv(pd.DataFrame(cka_rows), cka_path, record)
    lift_rows = []
    for gamma, path in zip(localizations, correlation_paths, strict=True):
        correlation = kernels.load_kernel(path)
        inputs, R = obs_table(correlation), correlation["kernel"].values
        for rule in EDGE_RULES:
            excluded = module.excluded_edges(inputs, rule)
            for attribute in settings["attributes"]:
                if attribute == "wordnet_path":
                    purity, chance, lift = hierarchy_lift(
                        R, inputs[attribute].tolist(), settings["knn_k"], excluded)
                else:
                    purity, chance, lift = metrics.neighbour_lift(
                        R, inputs[attribute].to_numpy(), settings["knn_k"], excluded)
                lift_rows.append({"gamma": gamma, "edges": rule, "attribute": attribute,
                                  "purity": purity, "chance": chance, "lift": lift})
    write_tsv(pd.DataFrame(lift_rows), lift_path, record)


def mislabel_baselines(
    task: str, data_settings: Mapping, kernel_input_settings: Mapping, settings: Mapping, *,
    model_path: PathLike, checkpoints_path: PathLike, output_path: PathLike, record: Record,
    threads: int = 1,
) -> None:
    """Per-input scores for flipped labels that need no SGLD, one column each.

    - ``loss_at_optimum``: the loss at w*;
    - ``noise_variance_sigma{σ}`` / ``noise_mean_sigma{σ}``: variance / mean of the loss over
      ``noise_draws`` draws of isotropic Gaussian weight noise N(0, σ²) around w*;
    - ``history_loss_mean`` / ``history_loss_variance``: the loss over the saved training
      checkpoints (needs the training run, which the kernel does not).
    """
    import torch

    from losskernel.experiments import get_task
    from losskernel.losses import cross_entropy_per_sample
    from losskernel.sgld import evaluate_per_sample_losses

    set_threads(threads)
    module = get_task(task)
    data = module.make_data(data_settings)
    inputs = module.select_kernel_inputs(data, kernel_input_settings)
    input_data = data.tensors(inputs)
    batch_size = settings["eval_batch_size"]

    def losses_of(model: torch.nn.Module) -> np.ndarray:
        return evaluate_per_sample_losses(model, cross_entropy_per_sample, input_data,
                                          batch_size).numpy()

    model = load_model(task, data_settings, model_path)
    table = inputs[["obs_id"]].assign(loss_at_optimum=losses_of(model))
    generator = torch.Generator().manual_seed(settings["seed"])
    noisy = copy.deepcopy(model)  # one copy, overwritten with w* + σ ξ at every draw
    for sigma in settings["noise_scales"]:
        draws = []
        for _ in range(settings["noise_draws"]):
            with torch.no_grad():
                for perturbed, optimum in zip(noisy.parameters(), model.parameters(),
                                              strict=True):
                    perturbed.copy_(optimum).add_(
                        torch.randn(optimum.shape, generator=generator), alpha=sigma)
            draws.append(losses_of(noisy))
        table[f"noise_variance_sigma{sigma:g}"] = np.var(draws, axis=0, ddof=1)
        table[f"noise_mean_sigma{sigma:g}"] = np.mean(draws, axis=0)
    saved = torch.load(checkpoints_path, weights_only=False)["checkpoints"]
    history = []
    for step in sorted(saved):
        model.load_state_dict(saved[step])
        history.append(losses_of(model))
    table["history_loss_mean"] = np.mean(history, axis=0)
    table["history_loss_variance"] = np.var(history, axis=0, ddof=1)
    write_tsv(table, output_path, record)


def mislabels(*, covariance_path: PathLike, traces_path: PathLike, baselines_path: PathLike,
              metrics_path: PathLike, scores_path: PathLike, record: Record) -> None:
    """K(z, z) as the score of a flipped label, beside every baseline.

    Metrics: ``mislabel_roc_auc`` (flipped = positive), ``self_cov_mislabeled`` and
    ``self_cov_normal`` (mean K(z, z) of each group), ``self_cov_ratio`` (their ratio), and
    ``baseline_roc_auc_<score>`` for the SGLD posterior mean loss and every column of the
    baselines table. ``baseline_roc_auc_noise_{variance,mean}_best`` is the best over the noise
    scales σ: σ is chosen with the labels, which favours the baseline, never the kernel.
    """
    covariance = kernels.load_kernel(covariance_path)
    inputs = obs_table(covariance)
    scores = inputs[["obs_id", "mislabeled"]].assign(
        self_cov=np.diag(covariance["kernel"].values).astype(np.float64))
    losses = traces.load_traces(traces_path)["loss"]
    if not np.array_equal(losses["obs_id"].values, inputs["obs_id"].to_numpy()):
        raise ValueError(f"{traces_path} and {covariance_path} hold different kernel inputs; "
                         f"recompute the kernel from these traces")
    scores["posterior_mean_loss"] = losses.mean(dim=("chain", "draw")).values.astype(np.float64)
    baselines = read_tsv(baselines_path)
    scores = scores.merge(baselines, on="obs_id", how="left", validate="one_to_one")
    if scores.isna().any().any():
        raise ValueError(f"{baselines_path} does not cover the kernel inputs of {covariance_path}")
    flipped = scores["mislabeled"].to_numpy().astype(bool)
    self_cov = scores["self_cov"].to_numpy()
    values = {
        "mislabel_roc_auc": float(roc_auc_score(flipped, self_cov)),
        "self_cov_mislabeled": float(self_cov[flipped].mean()),
        "self_cov_normal": float(self_cov[~flipped].mean()),
    }
    values["self_cov_ratio"] = values["self_cov_mislabeled"] / values["self_cov_normal"]
    for column in scores.columns.drop(["obs_id", "mislabeled", "self_cov"]):
        values[f"baseline_roc_auc_{column}"] = float(roc_auc_score(flipped, scores[column]))
    for statistic in ("noise_variance", "noise_mean"):
        per_sigma = [value for key, value in values.items()
                     if key.startswith(f"baseline_roc_auc_{statistic}_sigma")]
        if per_sigma:
            values[f"baseline_roc_auc_{statistic}_best"] = max(per_sigma)
    _write_metrics(values, metrics_path, record)
    write_tsv(scores, scores_path, record)


def trajectory(
    task: str, analysis_settings: Mapping, *, covariance_paths: Sequence[PathLike],
    correlation_paths: Sequence[PathLike], table_path: PathLike, metrics_path: PathLike,
    record: Record,
) -> None:
    """The task's structure score at each checkpoint (in training order) and its gain.

    Beside it, the naive score that counts same-output pairs (ROC-AUC of R_ij for pairs with
    the same output against the rest): those pairs share an output logit, so it is high already
    at initialization and says nothing about learned structure.
    """
    from losskernel.experiments import get_task

    module = get_task(task)
    rows = []
    for index, (covariance_path, correlation_path) in enumerate(
            zip(covariance_paths, correlation_paths, strict=True)):
        covariance, correlation = (kernels.load_kernel(covariance_path),
                                   kernels.load_kernel(correlation_path))
        inputs = obs_table(correlation)
        K, R = covariance["kernel"].values, correlation["kernel"].values
        rows.append({
            "checkpoint": index, "step": int(correlation.attrs["checkpoint_step"]),
            "structure_score": module.structure_score(K, R, inputs, analysis_settings),
            "same_output_pair_auc": metrics.pairwise_separation_auc(
                R, inputs["label"].to_numpy()),
        })
    table = pd.DataFrame(rows)
    write_tsv(table.assign(structure_score_name=module.STRUCTURE_SCORE), table_path, record)
    first, last = table["structure_score"].iloc[0], table["structure_score"].iloc[-1]
    _write_metrics({"trajectory_gain": last - first, "structure_score_first": first,
                    "structure_score_last": last}, metrics_path, record)


def plot_gamma_sweep(
    experiment: str, localizations: Sequence[float], *, cka_path: PathLike, lift_path: PathLike,
    convergence_paths: Sequence[PathLike], cka_figure: PathLike, lift_figure: PathLike,
    convergence_figure: PathLike, record: Record,
) -> None:
    """Figures of the γ sweep: CKA matrix, lift against γ, CKA convergence per γ."""
    from losskernel import plotting

    labels = [f"{gamma:g}" for gamma in localizations]
    cka = read_tsv(cka_path).pivot(index="gamma_a", columns="gamma_b", values="cka")
    cka = cka.loc[list(localizations), list(localizations)].to_numpy()
    plotting.save_figure(plotting.plot_matrix(
        cka, labels, f"{experiment}: CKA between the kernels K at each γ", "linear CKA"),
        cka_figure, record)
    lift = read_tsv(lift_path)
    graph_names = {"none": "all edges", "same_output": "same-output edges removed"}
    panels = {
        f"neighbour graph: {graph_names[rule]}": {
            ATTRIBUTE_NAMES.get(attribute, attribute): (group["gamma"].to_numpy(),
                                                        group["lift"].to_numpy())
            for attribute, group in lift[lift["edges"] == rule].groupby("attribute")}
        for rule in EDGE_RULES}
    plotting.save_figure(plotting.plot_lines(
        panels, xlabel="localization γ", ylabel="neighbour lift (1 = chance)", reference=1.0,
        title=f"{experiment}: which structure the kernel's neighbours share, against γ"),
        lift_figure, record)
    curves = {f"γ = {label}": (table["draws_per_chain"].to_numpy(),
                               table["cka_vs_final"].to_numpy())
              for label, table in zip(labels, map(read_tsv, convergence_paths), strict=True)}
    plotting.save_figure(plotting.plot_lines(
        {"kernel of the first t draws against all draws": curves}, reference=0.95,
        xlabel="draws per chain t", ylabel="linear CKA",
        title=f"{experiment}: convergence of K"), convergence_figure, record)


def mislabel_baseline_curves(values: Mapping[str, float]) -> dict[str, str]:
    """The baselines the ROC figure draws, as {score column: legend name}: every baseline, with
    the Gaussian-noise scores at their best σ only (all σ are in the metrics table)."""
    curves = {"posterior_mean_loss": "SGLD posterior mean loss",
              "loss_at_optimum": "loss at w*"}
    for statistic in ("variance", "mean"):
        best = values.get(f"baseline_roc_auc_noise_{statistic}_best")
        sigmas = [key.removeprefix("baseline_roc_auc_") for key, value in values.items()
                  if key.startswith(f"baseline_roc_auc_noise_{statistic}_sigma") and value == best]
        if sigmas:
            sigma = sigmas[0].rsplit("_sigma", 1)[1]
            curves[sigmas[0]] = f"loss {statistic}, Gaussian weight noise σ={sigma}"
    curves |= {"history_loss_mean": "loss mean over training checkpoints",
               "history_loss_variance": "loss variance over training checkpoints"}
    return {column: name for column, name in curves.items()
            if f"baseline_roc_auc_{column}" in values}


def plot_mislabels(
    experiment: str, figure_seed: int, *, scores_path: PathLike, metrics_path: PathLike,
    embedding_path: PathLike, roc_figure: PathLike, histogram_figure: PathLike,
    umap_figure: PathLike, record: Record,
) -> None:
    """Figures of the mislabel analysis at the figure seed: ROC curves of K(z, z) and of every
    baseline, the K(z, z) histograms of both groups, and the UMAP with flipped labels marked."""
    from losskernel import plotting

    scores = read_tsv(scores_path)
    values = read_tsv(metrics_path).set_index("metric")["value"]
    flipped = scores["mislabeled"].to_numpy().astype(bool)
    curves = [(f"K(z,z), the kernel (AUC {values['mislabel_roc_auc']:.3f})", flipped,
               scores["self_cov"].to_numpy())]
    for column, name in mislabel_baseline_curves(values).items():
        curves.append((f"{name} (AUC {values[f'baseline_roc_auc_{column}']:.3f})", flipped,
                       scores[column].to_numpy()))
    plotting.save_figure(plotting.plot_roc_curves(
        curves, f"{experiment}: detecting flipped labels (seed {figure_seed})",
        highlight_first=True), roc_figure, record)
    plotting.save_figure(plotting.plot_group_histograms(
        scores["self_cov"].to_numpy(), flipped, ("normal", "mislabeled"), "K(z, z)",
        f"{experiment}: self-covariance (ratio of means {values['self_cov_ratio']:.2f})"),
        histogram_figure, record)
    embedding = read_tsv(embedding_path)
    embedding = embedding[embedding["embedding"] == f"seed{figure_seed}"]
    plotting.save_figure(plotting.plot_labelled_embedding(
        embedding[["umap_1", "umap_2"]].to_numpy(), embedding["label"].to_numpy(),
        embedding["mislabeled"].to_numpy().astype(bool),
        f"{experiment}: UMAP of R (same-label edges removed), colour = training label",
        marked_name="mislabeled"), umap_figure, record)


def plot_trajectory(experiment: str, *, table_path: PathLike, embedding_path: PathLike,
                    score_figure: PathLike, umap_figure: PathLike, record: Record) -> None:
    """Figures of the development: the structure scores per checkpoint, and the UMAPs of R at
    every checkpoint (identical hyperparameters)."""
    from losskernel import plotting

    table = read_tsv(table_path)
    steps = table["step"].to_numpy() + 1  # step 0 (initialization) on a log axis
    name = table["structure_score_name"].iloc[0]
    lines = {f"structure score: {name}": (steps, table["structure_score"].to_numpy()),
             "naive: same-output pairs vs the rest (counts shared logits)": (
                 steps, table["same_output_pair_auc"].to_numpy())}
    if "lift" in name:  # a lift (chance 1) and an AUC (chance 0.5) do not share an axis
        figure = plotting.plot_lines(
            {"scores of R and K at each checkpoint": dict(list(lines.items())[:1])},
            xlabel="training step + 1", ylabel="lift (1 = chance)", reference=1.0,
            title=f"{experiment}: how the kernel's structure develops")
    else:
        figure = plotting.plot_lines(
            {"scores of R and K at each checkpoint": lines}, xlabel="training step + 1",
            ylabel="ROC-AUC", reference=0.5,
            title=f"{experiment}: how the kernel's structure develops")
    plotting.save_figure(figure, score_figure, record)
    embedding = read_tsv(embedding_path)
    colour = "task" if "task" in embedding else "label"
    panels = []
    for row in table.itertuples():
        points = embedding[embedding["embedding"] == f"checkpoint{row.checkpoint}"]
        marked = points["mislabeled"].to_numpy().astype(bool) if "mislabeled" in points else None
        panels.append((f"step {row.step}: score {row.structure_score:.3f}",
                       points[["umap_1", "umap_2"]].to_numpy(), points[colour].to_numpy(),
                       marked))
    plotting.save_figure(plotting.plot_embedding_grid(
        panels, f"{experiment}: UMAP of R at each checkpoint (colour = {colour})",
        marked_name="mislabeled"), umap_figure, record)


def taxonomy(task: str, knn_k: int, *, correlation_path: PathLike, lift_path: PathLike,
             metrics_path: PathLike, record: Record) -> None:
    """The taxonomic lift of R's ``knn_k``-nearest neighbours, same-class edges removed.

    Per WordNet depth d (``lift_path``): ``lift(d) = P_edges[depth(LCA) ≥ d] /
    P_candidates[depth(LCA) ≥ d]``, the candidates being every cross-class pair (what random
    neighbours would give). Metrics: ``hierarchy_lift`` = ``edge_lca_depth`` /
    ``chance_lca_depth``, the mean LCA depth of the edges over that of the candidates.
    """
    from losskernel.experiments import get_task

    correlation = kernels.load_kernel(correlation_path)
    inputs, R = obs_table(correlation), correlation["kernel"].values
    paths = inputs["wordnet_path"].tolist()
    excluded = get_task(task).excluded_edges(inputs, "same_output")
    write_tsv(taxonomic_lift(R, paths, knn_k, excluded), lift_path, record)
    edge_depth, chance_depth, lift = hierarchy_lift(R, paths, knn_k, excluded)
    _write_metrics({"hierarchy_lift": lift, "edge_lca_depth": edge_depth,
                    "chance_lca_depth": chance_depth}, metrics_path, record)


def figure1(
    experiment: str, figure_seed: int, settings: Mapping, image_root: PathLike, *,
    correlation_path: PathLike, embedding_path: PathLike, lift_path: PathLike,
    umap_figure: PathLike, umap_3d_figure: PathLike, matrices_figure: PathLike,
    insets_figure: PathLike, lift_figure: PathLike, record: Record,
) -> None:
    """The panels of the paper's Figure 1 at the figure seed.

    UMAP of R in 2-D and 3-D coloured by place in the WordNet hierarchy; R beside the WordNet
    tree distance, both in hierarchy order; neighbourhood insets (each group's anchor image and
    its nearest neighbours under R, same-class edges removed, as thumbnails from
    ``image_root``); the taxonomic lift per depth with its chance baseline.
    ``settings``: the analysis section (``knn_k``, ``figure1.inset_neighbours``).
    """
    from losskernel import figure1 as panels
    from losskernel import plotting
    from losskernel.experiments import imagenet
    from losskernel.wordnet import INSET_GROUPS

    correlation = kernels.load_kernel(correlation_path)
    inputs, R = obs_table(correlation), correlation["kernel"].values
    positions = inputs["hierarchy_position"].to_numpy()
    groups = inputs["inset_group"].fillna("").astype(str).to_numpy()
    embedding = read_tsv(embedding_path)
    flat = embedding[embedding["embedding"] == f"seed{figure_seed}"]
    solid = embedding[embedding["embedding"] == f"seed{figure_seed}-3d"]
    for table in (flat, solid):
        if not np.array_equal(table["obs_id"].to_numpy(), inputs["obs_id"].to_numpy()):
            raise ValueError(f"{embedding_path} does not embed the inputs of {correlation_path}")
    coords = flat[["umap_1", "umap_2"]].to_numpy()
    title = f"{experiment}: UMAP of d = sqrt(2(1 - R)), same-class edges removed"
    plotting.save_figure(panels.plot_hierarchy_umap(coords, positions, title, groups=groups),
                         umap_figure, record)
    plotting.save_figure(panels.plot_hierarchy_umap_3d(
        solid[["umap_1", "umap_2", "umap_3"]].to_numpy(), positions, title), umap_3d_figure,
        record)
    order = np.lexsort((inputs["obs_id"].to_numpy(), positions))
    plotting.save_figure(panels.plot_kernel_beside_hierarchy(
        R, tree_distance_matrix(inputs["wordnet_path"].tolist()), order,
        f"{experiment}: R and WordNet tree distance, images in hierarchy order"),
        matrices_figure, record)
    excluded = imagenet.excluded_edges(inputs, "same_output")
    insets = panels.choose_insets(R, groups, settings["figure1"]["inset_neighbours"],
                                  group_order=list(INSET_GROUPS), excluded_edges=excluded)
    shown = sorted({index for inset in insets for index in (inset.anchor, *inset.neighbours)})
    thumbnails = {index: imagenet.load_image(Path(image_root) / inputs["obs_id"].iloc[index], 96)
                  .transpose(1, 2, 0) for index in shown}
    captions = {index: str(inputs["class_name"].iloc[index]) for index in shown}
    plotting.save_figure(panels.plot_neighbourhood_insets(
        coords, positions, insets, thumbnails, captions,
        f"{experiment}: nearest neighbours under R (same-class edges removed)"),
        insets_figure, record)
    plotting.save_figure(panels.plot_taxonomic_lift(
        read_tsv(lift_path), f"{experiment}: taxonomic lift of R's {settings['knn_k']} nearest "
        f"neighbours per WordNet depth"), lift_figure, record)


def _write_metrics(values: Mapping[str, float], path: PathLike, record: Record) -> None:
    write_tsv(pd.DataFrame({"metric": list(values), "value": list(values.values())}), path,
              record)
