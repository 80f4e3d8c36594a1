"""Overview figures: images with coloured label outlines (middle slice for 3D)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .intensity import DEFAULT_PERCENTILES, normalize_percentile


def middle_slice(a: np.ndarray) -> np.ndarray:
    return a[a.shape[0] // 2] if a.ndim == 3 else a


def display(image: np.ndarray) -> np.ndarray:
    """Middle slice (3D) stretched to [0, 1] for display: 1st–99.8th percentile, clipped."""
    return normalize_percentile(middle_slice(np.asarray(image)), *DEFAULT_PERCENTILES, clip=True)


def outline_overlay(image: np.ndarray, labels: np.ndarray | None, seed: int = 0,
                    color: Sequence[float] | None = None) -> np.ndarray:
    """RGB (H, W, 3) float image: grey image with object outlines.

    Each object gets its own colour (from ``seed``) unless one RGB ``color`` is given;
    ``labels=None`` gives the grey image alone.
    """
    from .simulate.encode import boundaries
    img = display(image)
    rgb = np.repeat(img[..., None], 3, axis=-1)
    if labels is None:
        return rgb
    lab = middle_slice(labels)
    edges = boundaries(lab)
    if edges.any() and color is not None:
        rgb[edges] = color
    elif edges.any():
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
            axes[r, 2 * k].imshow(display(image), cmap="gray")
            axes[r, 2 * k + 1].imshow(outline_overlay(image, labels))
            dims = "×".join(str(s) for s in image.shape)
            axes[r, 2 * k].set_title(f"{title}\n{dims}" if k == 0 else dims, fontsize=8, loc="left")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
