"""Segmenters trained on synthetic data: the 2D/3D U-Net with seeded watershed, its augmentation,
and the classical (Otsu + distance watershed) baseline."""
