"""What the task modules share: the train/test split of a table of examples."""

from __future__ import annotations

import pandas as pd

SPLITS: tuple[str, ...] = ("train", "test", "all")


def select_split(examples: pd.DataFrame, name: str) -> pd.DataFrame:
    """The rows of ``examples`` whose ``split`` column is ``name``; ``all`` keeps every row."""
    if name not in SPLITS:
        raise ValueError(f"split must be 'train', 'test' or 'all', got {name!r}")
    return examples if name == "all" else examples[examples["split"] == name]
