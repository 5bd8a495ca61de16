"""When training saves its checkpoints: log-spaced steps.

numpy only, so that planning counts a model's checkpoints without importing torch.
"""

from __future__ import annotations

import numpy as np


def log_spaced_steps(max_steps: int, num: int) -> list[int]:
    """At most ``num`` distinct integer steps from 0 to ``max_steps``, roughly log-spaced (0
    and ``max_steps`` included). Fewer when ``max_steps`` is small: rounded steps collide."""
    if num < 2:
        return [0, max_steps][: max(num, 0)]
    steps = np.unique(np.round(np.geomspace(1, max_steps + 1, num - 1)).astype(int) - 1)
    return sorted({0, *steps.tolist(), max_steps})
