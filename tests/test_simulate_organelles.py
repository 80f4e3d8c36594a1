"""Nucleus–Golgi pairs (Rosa et al.) in 2D and 3D."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from cellsynth.config import OrganelleConfig, validate
from cellsynth.errors import ConfigError
from cellsynth.simulate.organelles import nucleus_golgi

SMALL = dict(n_pairs=(4, 6), golgi_radius=(2, 3), nucleus_axes=[(6, 8), (3, 4), (3, 4)],
             golgi_offset=(-1, 1), elastic=0.5)


def oc(**kw) -> OrganelleConfig:
    return validate(OrganelleConfig, {**SMALL, **kw})


@pytest.mark.parametrize("shape", [(64, 64), (32, 64, 64)])
def test_pairs_classes_and_adjacency(shape, rng):
    fg = np.ones(shape, bool)
    labels, classes = nucleus_golgi(fg, oc(), rng)
    n = labels.max()
    assert n % 2 == 0 and 2 * 4 <= n <= 2 * 6
    assert set(np.unique(labels)[1:]) == set(range(1, n + 1)) == set(classes)
    for i in range(1, n, 2):
        assert classes[i] == "nucleus" and classes[i + 1] == "golgi"
        nuc, golgi = labels == i, labels == i + 1
        # the Golgi sits on its nucleus (offset -1..1 px from the surface)
        assert (ndimage.binary_dilation(golgi, iterations=2) & nuc).any()
    sizes = np.bincount(labels.ravel())[1:]
    nd = len(shape)
    golgi_max = np.pi * 3.5 ** 2 if nd == 2 else 4 / 3 * np.pi * 3.5 ** 3
    assert sizes[1::2].max() <= golgi_max
    assert sizes[0::2].min() > sizes[1::2].min()  # nuclei are the bigger structures


def test_2d_uses_last_two_axes(rng):
    cfg = oc(nucleus_axes=[(20, 20), (3, 3), (3, 3)], golgi_radius=(1, 1), elastic=0, n_pairs=(3, 3))
    labels, classes = nucleus_golgi(np.ones((64, 64), bool), cfg, rng)
    nuc = [np.bincount(labels.ravel())[i] for i, c in classes.items() if c == "nucleus"]
    assert max(nuc) <= np.pi * 3.5 ** 2  # the 20-px Z axis is dropped in 2D


def test_crowded_scene_places_fewer_and_never_overlaps(rng):
    labels, classes = nucleus_golgi(np.ones((40, 40), bool), oc(n_pairs=(50, 50)), rng)
    assert 1 <= labels.max() // 2 < 50
    assert len(classes) == labels.max()


def test_inside_foreground_and_deterministic():
    fg = np.zeros((24, 48, 48), bool)
    fg[4:20, 8:40, 8:40] = True
    a, ca = nucleus_golgi(fg, oc(), np.random.default_rng(5))
    b, cb = nucleus_golgi(fg, oc(), np.random.default_rng(5))
    assert not a[~fg].any()
    assert np.array_equal(a, b) and ca == cb


def test_config_errors_one_line():
    for bad in [dict(n_pairs=(5, 2)), dict(golgi_radius=(-1, 2)), dict(nucleus_axes=[(1, 2)]),
                dict(nucleus_axes=[(0, 2), (1, 2)]), dict(rotation_deg=(90, 0))]:
        with pytest.raises(ConfigError) as e:
            oc(**bad)
        assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="boolean"):
        nucleus_golgi(np.ones((8, 8), np.uint8), oc(), np.random.default_rng(0))


@pytest.mark.parametrize("ndim", [2, 3])
def test_golgi_never_sealed_inside_its_nucleus(ndim):
    shape = (64, 64) if ndim == 2 else (32, 48, 48)
    cfg = oc(golgi_offset=(-6, -6), golgi_radius=(2, 2), nucleus_axes=[(8, 8), (8, 8), (8, 8)],
             elastic=0, n_pairs=(4, 4))
    labels, classes = nucleus_golgi(np.ones(shape, bool), cfg, np.random.default_rng(0))
    assert labels.max() >= 2
    bg = labels == 0
    for i, c in classes.items():
        if c == "golgi":  # every Golgi touches the background (it pokes out of the nucleus)
            assert (ndimage.binary_dilation(labels == i) & bg).any()
