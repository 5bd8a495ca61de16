"""Figures. Each function draws one figure from plain arrays and returns it; saving is separate.

- ``basic``: heatmaps, histograms, embeddings, ROC curves, matrices and line plots.
- ``hierarchy``: the panels of Figure 1, the kernel against a class taxonomy (WordNet).
- ``figures``: assembles the figures of each workflow rule from loaded data, as
  ``{output name: Figure}``.

``save_figure`` writes one figure with its provenance record.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from losskernel.provenance import atomic_path


def save_figure(figure: Figure, path: str | os.PathLike, record: Mapping[str, str | int]) -> None:
    """Save as PNG (or PDF) with the provenance record in the file's metadata, whole or not at
    all (``atomic_path``)."""
    path = Path(path)
    if path.suffix == ".png":
        metadata = {f"losskernel:{key}": str(value) for key, value in record.items()}
        metadata["Software"] = "losskernel"
    else:  # PDF metadata keys are fixed; keep the record in the Subject field
        metadata = {"Subject": "; ".join(f"{k}={v}" for k, v in record.items()),
                    "Creator": "losskernel", "CreationDate": None}
    with atomic_path(path) as partial:
        figure.savefig(partial, dpi=150, bbox_inches="tight", metadata=metadata)
    plt.close(figure)
