"""What the task modules share: the train/test split of a table of examples, label edges, and
the check of neighbour counts against the number of kernel inputs."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

SPLITS: tuple[str, ...] = ("train", "test", "all")


def select_split(examples: pd.DataFrame, name: str) -> pd.DataFrame:
    """The rows of ``examples`` whose ``split`` column is ``name``; ``all`` keeps every row."""
    if name not in SPLITS:
        raise ValueError(f"split must be 'train', 'test' or 'all', got {name!r}")
    return examples if name == "all" else examples[examples["split"] == name]


def same_label_edges(inputs: pd.DataFrame, rule: str, task: str) -> np.ndarray | None:
    """``none`` keeps every edge; ``same_output`` drops pairs with the same (training) label:
    they share an output logit, so their losses co-move under any weight noise."""
    if rule == "none":
        return None
    if rule == "same_output":
        label = inputs["label"].to_numpy()
        return label[:, None] == label[None, :]
    raise ValueError(f"edge rule must be 'none' or 'same_output' for {task}, got {rule!r}")


def check_neighbour_counts(analysis: Mapping, num_inputs: int, more_inputs: str) -> None:
    """``analysis.knn_k`` and ``analysis.gamma_sweep.knn_k`` are below the number of kernel
    inputs (with as many neighbours as other inputs every input is everyone's neighbour, and the
    reading says nothing). Raises ``ValueError`` as ``check_settings`` does, naming the key;
    ``more_inputs`` says how to get more inputs (``raise kernel_inputs.per_task``)."""
    counts = {"analysis.knn_k": analysis.get("knn_k"),
              "analysis.gamma_sweep.knn_k": (analysis.get("gamma_sweep") or {}).get("knn_k")}
    for key, knn_k in counts.items():
        if knn_k is not None and knn_k >= num_inputs:
            raise ValueError(f"{key}: {knn_k} must be smaller than the {num_inputs} kernel "
                             f"inputs; lower it or {more_inputs}")
