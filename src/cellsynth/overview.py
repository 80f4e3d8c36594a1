"""Overview figures: images with coloured label outlines (middle slice for 3D)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def middle_slice(a: np.ndarray) -> np.ndarray:
    return a[a.shape[0] // 2] if a.ndim == 3 else a


def normalize_display(image: np.ndarray, lo: float = 1.0, hi: float = 99.8) -> np.ndarray:
    """Percentile-stretch to [0, 1] for display."""
    image = np.asarray(image, dtype=np.float32)
    a, b = np.percentile(image, [lo, hi])
    return np.clip((image - a) / max(b - a, 1e-6), 0, 1)


def outline_overlay(image: np.ndarray, labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """RGB (H, W, 3) float image: grey image with each object's outline in its own colour."""
    from skimage.segmentation import find_boundaries
    img = normalize_display(middle_slice(image))
    lab = middle_slice(labels)
    rgb = np.repeat(img[..., None], 3, axis=-1)
    edges = find_boundaries(lab, mode="inner")
    if edges.any():
        n = int(lab.max()) + 1
        colours = np.random.default_rng(seed).uniform(0.3, 1.0, size=(n, 3))
        colours[:, np.random.default_rng(seed + 1).integers(0, 3, n)] = 1.0
        rgb[edges] = colours[lab[edges]]
    return rgb


def save_overview(rows: Sequence[tuple[str, Sequence[tuple[np.ndarray, np.ndarray]]]], path: str | Path,
                  panel: float = 3.0) -> Path:
    """One row per title: pairs of (image, labels) shown as image | image + outlines."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ncol = 2 * max(len(s) for _, s in rows)
    fig, axes = plt.subplots(len(rows), ncol, figsize=(panel * ncol, panel * len(rows)), squeeze=False)
    for r, (title, samples) in enumerate(rows):
        for c in range(ncol):
            axes[r, c].axis("off")
        for k, (image, labels) in enumerate(samples):
            axes[r, 2 * k].imshow(normalize_display(middle_slice(image)), cmap="gray")
            axes[r, 2 * k + 1].imshow(outline_overlay(image, labels))
            dims = "×".join(str(s) for s in image.shape)
            axes[r, 2 * k].set_title(f"{title}\n{dims}" if k == 0 else dims, fontsize=8, loc="left")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
