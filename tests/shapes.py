"""Test scenes shared by several test modules (imported as ``from shapes import ...``)."""
from __future__ import annotations

import numpy as np


def ball_labels(shape, radius: float, n: int, rng: np.random.Generator, tries: int = 3000) -> np.ndarray:
    """Up to ``n`` non-touching balls of one radius (2D or 3D), labels 1..n in drawing order (uint16)."""
    grids = np.ogrid[tuple(slice(0, s) for s in shape)]
    labels = np.zeros(shape, np.uint16)
    centres = []
    for _ in range(tries):
        c = rng.uniform(radius + 1, np.array(shape) - radius - 1)
        if all(np.linalg.norm(c - o) > 2 * radius + 3 for o in centres):
            centres.append(c)
        if len(centres) == n:
            break
    for i, c in enumerate(centres, 1):
        labels[sum((g - ci) ** 2 for g, ci in zip(grids, c)) <= radius ** 2] = i
    return labels
