"""How much the objects' brightness varies within one image, real vs synthetic.

Per image with at least 5 objects: each object's mean intensity above the background (median of the
pixels more than 5 px from every object), then the ratio of its 10th to 90th percentile, the 90th
percentile over the median and the brightest object over the median. Medians (and 10–90 %) over images.
A segmenter trained where every nucleus in a field is about equally bright learns to miss dim nuclei
beside bright ones (percentile normalisation puts them near the background).

    .venv/bin/python benchmarks/bench_object_brightness.py \\
        --set real=../shared/data/nuclei2d-dsb2018/train --set physics=/tmp/syn --n 100
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from benchutil import commit, labelled_pairs, parse_labelled_sets


def spread(image: np.ndarray, labels: np.ndarray) -> tuple[float, float, float] | None:
    """(p10 / p90, p90 / p50, max / p50) of the objects' mean brightness above the background."""
    img, n = np.asarray(image, float), int(labels.max())
    if n < 5:
        return None
    far = ~ndi.binary_dilation(labels > 0, iterations=5)
    bg = float(np.median(img[far])) if far.any() else 0.0
    area = np.bincount(labels.ravel(), None, n + 1)[1:]
    total = np.bincount(labels.ravel(), img.ravel(), n + 1)[1:]
    m = np.maximum(total[area > 0] / area[area > 0] - bg, 1e-6)
    p10, p50, p90 = np.percentile(m, [10, 50, 90])
    return p10 / p90, p90 / p50, m.max() / p50


def main() -> None:
    args = parse_labelled_sets(__doc__)
    print(f"## Object brightness within an image ({commit()})\n\nCommand: `bench_object_brightness.py "
          f"{args.command}`\n")
    print("| set | images | p10 / p90 (10–90 %) | p90 / median | max / median (90 %) |")
    print("|---|---|---|---|---|")
    for spec in args.set:
        name, folder = spec.split("=", 1)
        rows = []
        for img, labels in labelled_pairs(folder, args.n):
            if img.ndim == 3 and img.shape[-1] <= 4:  # RGB(A) stored images: the first channel
                img = img[..., 0]
            s = spread(img, labels)
            if s is not None:
                rows.append(s)
        a = np.asarray(rows)
        print(f"| {name} | {len(a)} | {np.median(a[:, 0]):.3f} ({np.percentile(a[:, 0], 10):.2f}–"
              f"{np.percentile(a[:, 0], 90):.2f}) | {np.median(a[:, 1]):.2f} | {np.median(a[:, 2]):.2f} "
              f"({np.percentile(a[:, 2], 90):.2f}) |")

if __name__ == "__main__":
    main()
