"""What the task modules share: the train/test split of a table of examples, label edges."""

from __future__ import annotations

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
