"""Layer choice by ``spatial_dims`` (MONAI style): one place that maps 2/3 to Conv2d/Conv3d and norms.

Normalisation and tiling: a norm whose statistics are computed per input
(InstanceNorm, GroupNorm) gives every tile of a tiled generation its own
statistics, so neighbouring tiles differ in brightness/contrast and seams appear.
``"batch"`` (BatchNorm: batch statistics in training, fixed running statistics
at inference) and ``"none"`` make the output at a voxel depend only on its
receptive field, so tiled and untiled generation agree away from tile borders.
"""
from __future__ import annotations

from torch import nn

NORMS = ("batch", "group", "instance", "none")
# norms whose inference output does not depend on the tile it is computed in
TILE_SAFE_NORMS = ("batch", "none")


def conv_class(spatial_dims: int) -> type:
    """``nn.Conv2d`` or ``nn.Conv3d``."""
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
    return (nn.Conv2d, nn.Conv3d)[spatial_dims - 2]


def norm_layer(kind: str, spatial_dims: int, channels: int) -> nn.Module:
    """A normalisation layer over ``channels`` feature maps: batch, group, instance or none."""
    if kind == "batch":
        return (nn.BatchNorm2d, nn.BatchNorm3d)[spatial_dims - 2](channels)
    if kind == "instance":
        return (nn.InstanceNorm2d, nn.InstanceNorm3d)[spatial_dims - 2](channels, affine=True)
    if kind == "group":
        g = next(g for g in (8, 4, 2, 1) if channels % g == 0)
        return nn.GroupNorm(g, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm '{kind}': choose one of {', '.join(NORMS)}")


def stride_product(strides, spatial_dims: int) -> list[int]:
    """Per-axis product of a network's down-sampling strides: input sizes must be multiples of it.

    >>> stride_product([(2, 2, 2), (1, 2, 2)], 3)
    [2, 4, 4]
    """
    d = [1] * spatial_dims
    for s in strides:
        d = [a * b for a, b in zip(d, s)]
    return d
