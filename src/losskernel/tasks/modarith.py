"""Two-task modular arithmetic (paper §3): addition and division mod p on one network.

An input is the token sequence ``(a, op, b)`` with ``a, b`` in ``Z_p`` (tokens ``0..p-1``) and
``op`` one of the operation tokens ``p`` (addition) or ``p + 1`` (division); the target is
``c = a + b mod p`` or ``c = a · b⁻¹ mod p`` (``b ≠ 0``). The network predicts ``c`` from ``p``
logits.

Models:

- ``transformer``: one attention layer (query at the last position, no LayerNorm), a ReLU MLP
  and an unembedding, all with residual connections.
- ``mlp``: the three token embeddings concatenated, one ReLU hidden layer.
- ``disjoint_by_task``: two complete copies of either, each input routed by its operation token
  to its own copy, so the two tasks share no parameter (the Prop. 2 positive control).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from losskernel.tasks.defaults import *  # noqa: F403 - the default hooks of the contract
from losskernel.tasks.protocol import Figure, FigureSet, Reading
from losskernel.tasks.schema import caption, load_schema
from losskernel.tasks.splits import check_neighbour_counts, select_split

if TYPE_CHECKING:  # torch is imported where models are built: the analysis steps never need it
    import xarray as xr
    from torch import nn

    from losskernel.method.chains import TensorData

OPERATIONS: dict[str, str] = {"add": "+", "div": "/"}


def operation_result(operation: str, a: int, b: int, modulus: int) -> int:
    """``a + b`` or ``a · b⁻¹`` modulo ``modulus``."""
    if operation == "add":
        return (a + b) % modulus
    if operation == "div":
        return (a * pow(b, -1, modulus)) % modulus
    raise ValueError(f"unknown operation {operation!r}; choose from {list(OPERATIONS)}")


def is_prime(number: int) -> bool:
    return number >= 2 and all(number % d for d in range(2, math.isqrt(number) + 1))


def make_examples(modulus: int, operations: list[str]) -> pd.DataFrame:
    """Every valid example, one row each: ``obs_id, task, a, b, op_token, label``."""
    if not is_prime(modulus):
        raise ValueError(f"modulus must be prime so that division is defined, got {modulus}")
    unknown = [op for op in operations if op not in OPERATIONS]
    if unknown or not operations:
        raise ValueError(f"operations must be a non-empty subset of {list(OPERATIONS)}, "
                         f"got {operations}")
    rows = []
    for index, operation in enumerate(operations):
        for a in range(modulus):
            for b in range(1 if operation == "div" else 0, modulus):
                rows.append({
                    "obs_id": f"{operation}_{a:03d}_{b:03d}", "task": operation, "a": a, "b": b,
                    "op_token": modulus + index,
                    "label": operation_result(operation, a, b, modulus),
                })
    return pd.DataFrame(rows)


INPUT_ATTRIBUTES = ("task", "a", "b", "op_token", "label", "split")
"""Per-input columns besides ``obs_id`` (and so coordinates of traces and kernels)."""


@dataclass(frozen=True)
class ModArithData:
    """All examples with their split; ``split`` is ``train`` or ``test``."""

    examples: pd.DataFrame
    modulus: int
    operations: tuple[str, ...]

    def tensors(self, rows: pd.DataFrame) -> TensorData:
        import torch

        from losskernel.method.chains import TensorData

        inputs = torch.tensor(rows[["a", "op_token", "b"]].to_numpy(dtype=np.int64))
        targets = torch.tensor(rows["label"].to_numpy(dtype=np.int64))
        return TensorData(inputs, targets)

    def split(self, name: str) -> pd.DataFrame:
        return select_split(self.examples, name)


def make_data(settings: Mapping) -> ModArithData:
    """Examples of every task and a seeded random train/test split (config section ``data``)."""
    examples = make_examples(settings["modulus"], list(settings["operations"]))
    fraction = settings["train_fraction"]
    if not 0 < fraction < 1:
        raise ValueError(f"train_fraction must be in (0, 1), got {fraction}")
    order = np.random.default_rng(settings["split_seed"]).permutation(len(examples))
    is_train = np.zeros(len(examples), dtype=bool)
    is_train[order[: round(fraction * len(examples))]] = True
    examples = examples.assign(split=np.where(is_train, "train", "test"))
    return ModArithData(examples, settings["modulus"], tuple(settings["operations"]))


def select_kernel_inputs(data: ModArithData, settings: Mapping) -> pd.DataFrame:
    """``per_task`` seeded random examples of each task from ``split`` (``kernel_inputs``)."""
    pool = data.split(settings["split"])
    rng = np.random.default_rng(settings["seed"])
    chosen = []
    for task in data.operations:
        candidates = np.flatnonzero(pool["task"].to_numpy() == task)
        if settings["per_task"] > len(candidates):
            raise ValueError(f"kernel_inputs.per_task={settings['per_task']} exceeds the "
                             f"{len(candidates)} {task} examples in the {settings['split']} split")
        chosen.append(np.sort(rng.choice(candidates, settings["per_task"], replace=False)))
    return pool.iloc[np.concatenate(chosen)].reset_index(drop=True)


def build_model(settings: Mapping, data: ModArithData | None) -> nn.Module:
    """The network described by a ``model`` config section, initialized from ``init_seed``."""
    import torch

    from losskernel.tasks.networks import AttentionTransformer, DisjointByTask, EmbeddingMLP

    if data is None:
        raise ValueError("the modular-arithmetic networks are sized by their data; pass it")
    modulus, num_operations = data.modulus, len(data.operations)
    vocab_size = modulus + num_operations
    torch.manual_seed(settings["init_seed"])

    def one_network() -> nn.Module:
        if settings["architecture"] == "transformer":
            return AttentionTransformer(vocab_size, modulus, settings["d_model"],
                                        settings["num_heads"], settings["d_mlp"],
                                        settings["embed_std"])
        if settings["architecture"] == "mlp":
            return EmbeddingMLP(vocab_size, modulus, settings["d_model"], settings["d_mlp"],
                                settings["embed_std"])
        raise ValueError(f"model.architecture must be 'transformer' or 'mlp', "
                         f"got {settings['architecture']!r}")

    if settings["disjoint_by_task"]:
        networks = [one_network() for _ in range(num_operations)]
        op_tokens = [modulus + index for index in range(num_operations)]
        return DisjointByTask(networks, op_tokens, modulus)
    return one_network()


def evaluate(model: nn.Module, data: ModArithData) -> dict[str, float]:
    """Accuracy on each split, overall and per task: ``train_accuracy``, ``test_accuracy_add``..."""
    import torch

    metrics = {}
    with torch.inference_mode():
        for split in ("train", "test"):
            rows = data.split(split)
            if rows.empty:
                continue
            tensors = data.tensors(rows)
            correct = (model(tensors.inputs).argmax(1) == tensors.targets).numpy()
            metrics[f"{split}_accuracy"] = float(correct.mean())
            for task in data.operations:
                metrics[f"{split}_accuracy_{task}"] = float(correct[rows["task"] == task].mean())
    return metrics


def training_split(data: ModArithData) -> tuple[TensorData, np.ndarray]:
    """The SGLD/training set and its strata (the task of each example)."""
    rows = data.split("train")
    return data.tensors(rows), rows["task"].to_numpy()


def is_converged(metrics: Mapping[str, float], training_settings: Mapping) -> bool:
    """Train accuracy 1 and test accuracy of every task at least ``target_test_accuracy``."""
    target_test_accuracy = training_settings["target_test_accuracy"]
    test = [value for key, value in metrics.items() if key.startswith("test_accuracy_")]
    return metrics["train_accuracy"] == 1.0 and min(test, default=1.0) >= target_test_accuracy


def excluded_edges(inputs: pd.DataFrame, rule: str) -> np.ndarray | None:
    """Pairs of kernel inputs removed from the neighbour graph under a reading's ``rule``.

    ``none``: keep all edges; ``same_output``: drop pairs with the same answer c (they share an
    output logit, so their losses co-move under any weight noise); ``shared_token``: also drop
    pairs sharing the token a or b.
    """
    if rule == "none":
        return None
    label = inputs["label"].to_numpy()
    excluded = label[:, None] == label[None, :]
    if rule == "same_output":
        return excluded
    if rule == "shared_token":
        a, b = inputs["a"].to_numpy(), inputs["b"].to_numpy()
        return excluded | (a[:, None] == a[None, :]) | (b[:, None] == b[None, :])
    raise ValueError(f"edge rule must be 'none', 'same_output' or 'shared_token', got {rule!r}")


def structure_score(covariance: np.ndarray, correlation: np.ndarray, inputs: pd.DataFrame,
                    analysis_settings: Mapping) -> float:
    """The developmental structure score: task separation with same-output pairs not counted.

    The headline reading (``knn_k``-NN task vote under R, same-output edges removed): pairs
    with the same answer share an output logit and co-move under any weight noise, even at
    initialization, so they must not count as structure.
    """
    from losskernel.readings.separation import knn_vote_auc

    auc, _ = knn_vote_auc(correlation, inputs["task"].to_numpy(), analysis_settings["knn_k"],
                          excluded_edges(inputs, "same_output"))
    return auc


STRUCTURE_SCORE = "task-vote ROC-AUC of R, same-output edges removed"


def check_settings(settings: Mapping) -> None:
    """Checks of an experiment's settings that a schema cannot express.

    Raises ``ValueError("<key.path>: <problem and fix>")`` with the key relative to the experiment.
    """
    data, model = settings["data"], settings["model"]
    if not is_prime(data["modulus"]):
        raise ValueError(f"data.modulus: {data['modulus']} is not prime; division mod p needs a "
                         f"prime (e.g. 53 or 59)")
    if model["architecture"] == "transformer" and model["d_model"] % model["num_heads"]:
        raise ValueError(f"model.num_heads: d_model={model['d_model']} is not divisible by "
                         f"num_heads={model['num_heads']}")
    examples = make_data(data).examples
    chosen = examples if settings["kernel_inputs"]["split"] == "all" else examples[
        examples["split"] == settings["kernel_inputs"]["split"]]
    per_task = settings["kernel_inputs"]["per_task"]
    smallest = int(chosen["task"].value_counts().min())
    if per_task > smallest:
        raise ValueError(f"kernel_inputs.per_task: {per_task} exceeds the {smallest} examples of "
                         f"the smallest task in the '{settings['kernel_inputs']['split']}' split; "
                         f"lower it")
    smallest_train = int(examples[examples["split"] == "train"]["task"].value_counts().min())
    share = settings["sampling"]["batch_size"] / len(data["operations"])
    if share > smallest_train:
        raise ValueError(f"sampling.batch_size: {settings['sampling']['batch_size']} needs about "
                         f"{share:.0f} training examples per task, but the smallest task has "
                         f"{smallest_train}; lower it")
    check_neighbour_counts(settings["analysis"], per_task * len(data["operations"]),
                           "raise kernel_inputs.per_task")


def _score_separation(task, settings: Mapping, correlation: xr.Dataset,
                      traces: xr.Dataset) -> dict[str, pd.DataFrame]:
    """The separation reading of one seed: kNN task votes, pairwise AUC, block means of R and
    the cross-task covariance test (``losskernel.readings.separation.task_separation``)."""
    from losskernel.method.traces import trace_losses
    from losskernel.readings import metrics_table, obs_table
    from losskernel.readings.separation import task_separation

    losses = trace_losses(traces)
    values, scores = task_separation(correlation["kernel"].values, losses, obs_table(correlation),
                                     task.excluded_edges, settings["knn_k"],
                                     settings["standard_error_batches"])
    return {"metrics": metrics_table(values), "scores": scores}


def _draw_separation(experiment: str, task, settings: Mapping, **inputs) -> dict:
    from losskernel.plotting.figures import separation_figures

    return separation_figures(experiment, **inputs, seeds=settings["seeds"],
                              figure_seed=settings["figure_seed"], knn_k=settings["knn_k"])


SETTINGS_SCHEMA = load_schema(__file__)
DATA_FILES = ()
READINGS = (
    Reading(
        name="separation", rule="score_separation",
        inputs={"correlation": "kernel-correlation.nc", "traces": "traces.nc"},
        tables={"scores": "separation-scores.tsv"},
        metrics=("roc_auc", "roc_auc_all_edges", "roc_auc_shared_token", "roc_auc_pairwise",
                 "within_task_mean_R", "cross_task_mean_R", "cross_task_z", "cross_task_entry_z2"),
        compute=_score_separation,
        settings=("analysis.knn_k", "analysis.standard_error_batches"),
    ),
)
FIGURES = (
    FigureSet(
        name="separation", rule="plot_experiment", category="Modular arithmetic",
        figures={output: Figure(name, caption(name)) for output, name in (
            ("heatmap", "kernel_heatmap"), ("distributions", "kernel_distributions"),
            ("umap", "umap"), ("roc", "roc"))},
        inputs={"correlation": ("figure_seed", "kernel-correlation.nc"),
                "embedding": ("experiment", "umap.tsv"),
                "scores": ("every_seed", "separation-scores.tsv"),
                "metrics": ("every_seed", "separation.tsv")},
        draw=_draw_separation,
        settings=("sampling.seeds", "analysis.figure_seed", "analysis.knn_k"),
    ),
)
