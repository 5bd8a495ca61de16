"""Figure 1 of the paper for any task whose classes are WordNet nouns (ImageNet, Fashion-MNIST).

A task that uses it has the per-input columns :data:`HIERARCHY_COLUMNS` (from
``losskernel.tasks.wordnet.hierarchy_table``), declares :data:`HIERARCHY_READING` and the figure
set :data:`FIGURE_SET`, defines ``thumbnails(data_settings, obs_ids)`` (the images the
insets show), and may take its hooks ``excluded_edges`` and ``structure_score`` from here.
Both tasks run the same code from here on.

The hierarchy reading compares several similarities of the same inputs against the tree, each
with the same numbers (``losskernel.readings.hierarchy.hierarchy_tests``): the loss kernel's
R, ``|R|`` and K, and the cheap baselines that need no SGLD, the cosine similarity of the pixels,
of the network's penultimate activations and of its output probabilities
(``losskernel.method.features``). Why ``|R|``: two inputs whose losses move in opposite directions
under the same weight moves (a sneaker and an ankle boot competing for one logit) are tied as
strongly as two that move together; R counts them as far apart, ``|R|`` as close.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from losskernel.tasks.protocol import DataFile, Figure, FigureSet, Reading
from losskernel.tasks.schema import caption

if TYPE_CHECKING:
    import xarray as xr
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

HIERARCHY_COLUMNS = ("wordnet_path", "depth", "hierarchy_position", "inset_group")
KERNEL_SIMILARITIES = ("R", "absR", "K")
BASELINE_SIMILARITIES = ("pixels", "activations", "probabilities")
SIMILARITIES = (*KERNEL_SIMILARITIES, *BASELINE_SIMILARITIES)
"""Every similarity the hierarchy reading scores (``absR`` is ``|R|``)."""
TESTED_METRICS = ("hierarchy_lift", "hierarchy_lift_p", "depth_lift", "depth_lift_p",
                  "rank_correlation", "rank_correlation_p")
CLASS_METRICS = ("within_branch", "across_branch", "confusion_correlation")
"""Class-level readings of each similarity (``losskernel.readings.hierarchy``): its mean between
classes of one branch at ``analysis.hierarchy.depth`` and between branches
(``branch_contrast``), and its rank correlation with the model's confusions
(``confusion_correlation``)."""
CKA_METRICS = tuple(f"cka_{kernel}_{baseline}" for kernel in KERNEL_SIMILARITIES
                    for baseline in BASELINE_SIMILARITIES)
"""Linear CKA between each kernel similarity and each cheap one: how much of the kernel the
activations, outputs or pixels already hold."""
METRICS = (*TESTED_METRICS, "edge_lca_depth", "chance_lca_depth",
           *(f"{metric}_{name}" for name in SIMILARITIES for metric in TESTED_METRICS),
           *(f"{metric}_{name}" for name in SIMILARITIES for metric in CLASS_METRICS),
           *CKA_METRICS)
"""The hierarchy reading's metrics: unsuffixed for the headline similarity
(``analysis.hierarchy.similarity``), suffixed ``_<similarity>`` for each of them, then the class
readings of each similarity and the CKAs."""
STRUCTURE_SCORE = "WordNet hierarchy lift of the headline similarity"


def wordnet_table(settings: Mapping, classes: Callable[[WordNetCorpusReader], pd.DataFrame],
                  inset_groups: Mapping[str, str] | None) -> tuple[pd.DataFrame, dict[str, str]]:
    """The place of the task's ``classes(reader)`` (label, wnid, name) in WordNet
    (``losskernel.tasks.wordnet.hierarchy_table``, with the task's ``inset_groups``, ImageNet's
    when None), from nltk's corpus or Debian's files (config section ``wordnet``); the notes
    name which, and WordNet's version."""
    from losskernel.tasks.wordnet import INSET_GROUPS, hierarchy_table, load_wordnet

    wordnet = settings["wordnet"]
    reader, source = load_wordnet(Path(wordnet["nltk_data"]), Path(wordnet["debian_dir"]))
    notes = {"wordnet_source": source, "wordnet_version": reader.get_version()}
    return hierarchy_table(reader, classes(reader), inset_groups or INSET_GROUPS), notes


def hierarchy_data_file(path: str, rule: str,
                        classes: Callable[[WordNetCorpusReader], pd.DataFrame],
                        inset_groups: Mapping[str, str] | None = None) -> DataFile:
    """The task's WordNet table (:func:`wordnet_table`) as the data file ``hierarchy`` at
    ``path``, made by the workflow rule ``rule``."""
    return DataFile(key="hierarchy", path=path, rule=rule, config_keys=("wordnet",),
                    make=functools.partial(wordnet_table, classes=classes,
                                           inset_groups=inset_groups),
                    sources="losskernel.tasks.wordnet:wordnet_sources")


def similarities(correlation: np.ndarray, covariance: np.ndarray,
                 features: xr.Dataset | None) -> dict[str, np.ndarray]:
    """Each similarity of :data:`SIMILARITIES` (the baselines only when ``features`` is given)."""
    from losskernel.readings.similarity import cosine_similarity

    found = {"R": correlation, "absR": np.abs(correlation), "K": covariance}
    if features is not None:
        found |= {name: cosine_similarity(features[name].values)
                  for name in BASELINE_SIMILARITIES}
    return found


def score_hierarchy(task, settings: Mapping, correlation: xr.Dataset, covariance: xr.Dataset,
                    features: xr.Dataset) -> dict[str, pd.DataFrame]:
    """Every similarity against WordNet (``losskernel.readings.hierarchy``): the metrics of
    :data:`METRICS` and the lift per depth (``lift``, with a ``similarity`` column). The
    model's confusions are those of its output probabilities on the kernel inputs
    (``soft_confusion``)."""
    from losskernel.readings import metrics_table, obs_table
    from losskernel.readings.hierarchy import (
        branch_contrast,
        confusion_correlation,
        hierarchy_tests,
        soft_confusion,
        taxonomic_lift,
    )
    from losskernel.readings.similarity import linear_cka

    inputs, options = obs_table(correlation), settings["hierarchy"]
    if not np.array_equal(features["obs_id"].values, inputs["obs_id"].to_numpy()):
        raise ValueError("the input features are not of the kernel's inputs (in its order); "
                         "make them again (rule input_features)")
    paths, excluded = inputs["wordnet_path"].tolist(), task.excluded_edges(inputs, "same_output")
    labels = inputs["label"].to_numpy()
    probabilities = features["probabilities"].values
    confusion = soft_confusion(probabilities, labels, probabilities.shape[1])
    values: dict[str, float] = {}
    lifts = []
    found = similarities(correlation["kernel"].values, covariance["kernel"].values, features)
    for name, similarity in found.items():
        tests = hierarchy_tests(similarity, paths, settings["knn_k"], excluded, options["depth"],
                                options["permutations"], options["seed"])
        if name == options["similarity"]:
            values |= tests
        values |= {f"{metric}_{name}": tests[metric] for metric in TESTED_METRICS}
        within, across = branch_contrast(similarity, paths, options["depth"])
        values |= {f"within_branch_{name}": within, f"across_branch_{name}": across,
                   f"confusion_correlation_{name}": confusion_correlation(similarity, labels,
                                                                          confusion)}
        lifts.append(taxonomic_lift(similarity, paths, settings["knn_k"], excluded)
                     .assign(similarity=name))
    values |= {f"cka_{kernel}_{baseline}": linear_cka(found[kernel], found[baseline])
               for kernel in KERNEL_SIMILARITIES for baseline in BASELINE_SIMILARITIES}
    ordered = {metric: values[metric] for metric in METRICS}
    return {"metrics": metrics_table(ordered), "lift": pd.concat(lifts, ignore_index=True)}


def excluded_edges(inputs: pd.DataFrame, rule: str) -> np.ndarray | None:
    """Pairs of one class (``same_output``, the paper's neighbour graph) or none (``none``)."""
    from losskernel.tasks.splits import same_label_edges

    return same_label_edges(inputs, rule, "a WordNet task")


def structure_score(covariance: np.ndarray, correlation: np.ndarray, inputs: pd.DataFrame,
                    analysis_settings: Mapping) -> float:
    """The WordNet hierarchy lift (``losskernel.readings.hierarchy.hierarchy_lift``) of the
    ``knn_k``-nearest neighbours under the headline similarity, same-class edges removed."""
    from losskernel.readings.hierarchy import hierarchy_lift

    name = analysis_settings["hierarchy"]["similarity"]
    similarity = similarities(correlation, covariance, None).get(name)
    if similarity is None:
        raise ValueError(f"analysis.hierarchy.similarity: the trajectory scores a kernel "
                         f"similarity ({', '.join(KERNEL_SIMILARITIES)}), not {name!r}")
    _, _, lift = hierarchy_lift(similarity, inputs["wordnet_path"].tolist(),
                                analysis_settings["knn_k"], excluded_edges(inputs, "same_output"))
    return float(lift)


def draw_figure1(experiment: str, task, settings: Mapping, correlation: xr.Dataset,
                 embedding: pd.DataFrame, lift: pd.DataFrame,
                 metrics: Sequence[pd.DataFrame]) -> dict:
    """The Figure 1 panels (UMAP and insets under ``analysis.umap.similarity``, the paper's R
    unless set; the matrix and the lift panel of R), with the task's thumbnails and the inset
    groups in hierarchy order, and every similarity's hierarchy numbers side by side
    (``similarities``)."""
    from losskernel.plotting.figures import figure1_figures, hierarchy_similarity_figure

    def thumbnails(obs_ids: Sequence[str]) -> list[np.ndarray]:
        return task.thumbnails(settings["data"], obs_ids)

    from losskernel.readings import obs_table

    inputs = obs_table(correlation).sort_values("hierarchy_position", kind="stable")
    groups = [group for group in dict.fromkeys(inputs["inset_group"].fillna("")) if group]
    figures = figure1_figures(experiment, settings["figure_seed"], correlation, embedding,
                              lift[lift["similarity"] == "R"], knn_k=settings["knn_k"],
                              inset_neighbours=settings["figure1"]["inset_neighbours"],
                              inset_groups=groups, similarity=settings["umap"]["similarity"],
                              excluded_edges=task.excluded_edges, thumbnails=thumbnails)
    figures["similarities"] = hierarchy_similarity_figure(
        experiment, lift, metrics, settings["hierarchy"]["depth"], settings["knn_k"])
    return figures


HIERARCHY_READING = Reading(
    name="hierarchy", rule="score_hierarchy",
    inputs={"correlation": "kernel-correlation.nc", "covariance": "kernel-covariance.nc"},
    experiment_inputs={"features": "input-features.nc"},
    tables={"lift": "taxonomic-lift.tsv"}, metrics=METRICS, compute=score_hierarchy,
    settings=("analysis.knn_k", "analysis.hierarchy"),
)


FIGURE_SET = FigureSet(
    name="figure1", rule="plot_figure1", category="Figure 1 (WordNet)",
    figures={output: Figure(name, caption(name)) for output, name in (
        ("umap", "umap_hierarchy"), ("umap_3d", "umap_hierarchy_3d"),
        ("matrices", "kernel_vs_wordnet"), ("insets", "neighbourhood_insets"),
        ("lift", "taxonomic_lift"), ("similarities", "hierarchy_similarities"))},
    inputs={"correlation": ("figure_seed", "kernel-correlation.nc"),
            "embedding": ("experiment", "umap.tsv"),
            "lift": ("figure_seed", "taxonomic-lift.tsv"),
            "metrics": ("every_seed", "hierarchy.tsv")},
    draw="losskernel.tasks.figure1:draw_figure1",
    settings=("analysis.figure_seed", "analysis.knn_k", "analysis.figure1",
              "analysis.hierarchy", "analysis.umap", "data"),
)
"""Figure 1's panels (rule ``plot_figure1``), one figure set for every WordNet task."""
