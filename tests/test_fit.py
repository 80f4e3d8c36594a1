"""Fitting the simulation to unannotated images (cellsynth.fit, cellsynth fit)."""
from __future__ import annotations

import numpy as np
import pytest
import yaml
from scipy import ndimage as ndi

from cellsynth import fit
from cellsynth.cli import main
from cellsynth.config import Config, load_config
from cellsynth.errors import InputError
from cellsynth.io import write_tiff
from shapes import ball_labels


def _blobs(shape, radius, n, rng, bg=10.0, fg=120.0):
    """Non-overlapping balls of one radius, Poisson noise: (image uint16, labels)."""
    labels = ball_labels(shape, radius, n, rng)
    image = rng.poisson(np.where(labels > 0, fg, bg)).astype(np.uint16)
    return image, labels


def test_detect_and_stats_2d(rng):
    img, lab = _blobs((96, 96), 6.0, 8, rng)
    det = fit.detect_objects(img)
    assert det.max() == lab.max()
    st = fit.object_stats(det, img)
    assert st["radius"] == pytest.approx(6.0, rel=0.12)
    assert np.all(st["axis_ratio"] > 0.8)  # discs are round
    assert st["density"] == pytest.approx(lab.max() / img.size)
    assert st["intensity"].min() > 5 * st["background"]


def test_fit_recovers_radius_2d(tmp_path, rng):
    d = tmp_path / "images"
    for i in range(3):
        img, _ = _blobs((96, 96), 7.0, 6, rng)
        write_tiff(d / f"im{i}.tif", img)
    overlay, summary, cfg = fit.fit_config(d, "nuclei2d-dsb", progress=False)
    assert summary["radius_p50"] == pytest.approx(7.0, rel=0.1)
    lo, hi = overlay["scene"]["nuclei"]["radius"]
    assert 5.5 <= lo <= 7.0 <= hi <= 8.5
    assert overlay["scene"]["shape"] == [96, 96]
    n_lo, n_hi = overlay["scene"]["placement"]["n_points"]
    assert 4 <= n_lo <= n_hi <= 7
    assert isinstance(cfg, Config) and cfg.scene.shape == [96, 96]
    # physics: photon transfer of pure Poisson counts gives gain ≈ 1
    assert overlay["render"]["physics"]["gain"] == pytest.approx(1.0, rel=0.35)


def test_fit_recovers_radius_3d(tmp_path, rng):
    d = tmp_path / "vols"
    for i in range(2):
        img, _ = _blobs((32, 40, 40), 5.0, 4, rng)
        write_tiff(d / f"v{i}.tif", img)
    overlay, summary, cfg = fit.fit_config(d, "nuclei3d-celegans", progress=False)
    assert summary["ndim"] == 3
    assert summary["radius_p50"] == pytest.approx(5.0, rel=0.12)
    assert len(overlay["scene"]["nuclei"]["axis_scale"]) == 3
    assert cfg.scene.shape == [32, 40, 40]


def test_cli_fit_writes_loadable_yaml(tmp_path, rng, capsys):
    d, m = tmp_path / "images", tmp_path / "masks"
    for i in range(2):
        img, lab = _blobs((80, 80), 6.0, 5, rng)
        write_tiff(d / f"a{i}.tif", img)
        write_tiff(m / f"a{i}.tif", lab)
    out = tmp_path / "fit.yaml"
    assert main(["fit", "--images", str(d), "--masks", str(m), "--preset", "nuclei2d-dsb",
                 "--out", str(out), "--no-progress"]) == 0
    data = yaml.safe_load(out.read_text())
    assert set(data) <= set(Config.model_fields)
    cfg = load_config("nuclei2d-dsb", out)
    assert cfg.scene.nuclei.radius[0] <= 6.0 <= cfg.scene.nuclei.radius[1]
    assert "radius_p50" in capsys.readouterr().out  # the comparison with the masks
    # a missing mask: one line, before anything is written
    (m / "a1.tif").unlink()
    out2 = tmp_path / "fit2.yaml"
    assert main(["fit", "--images", str(d), "--masks", str(m), "--preset", "nuclei2d-dsb",
                 "--out", str(out2), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "lacks 1 mask(s)" in err and "a1.tif" in err and len(err.strip().splitlines()) == 1
    assert not out2.exists()


def test_fit_bad_inputs(tmp_path, rng, capsys):
    assert main(["fit", "--images", str(tmp_path / "nope"), "--preset", "nuclei2d-dsb",
                 "--out", str(tmp_path / "o.yaml")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.yaml").exists()
    d = tmp_path / "im"
    write_tiff(d / "a.tif", np.zeros((32, 32), np.uint16))  # nothing to detect
    with pytest.raises(InputError, match="no objects"):
        fit.fit_config(d, "nuclei2d-dsb", progress=False)
    img, _ = _blobs((48, 48), 5.0, 3, rng)
    write_tiff(d / "a.tif", img)
    assert main(["fit", "--images", str(d), "--preset", "no-such-preset", "--out", str(tmp_path / "o.yaml")]) == 2
    assert main(["fit", "--images", str(d), "--preset", "nuclei2d-dsb", "--out", str(tmp_path / "o.txt")]) == 2
    assert not list(tmp_path.glob("o.*"))


@pytest.mark.shared_data
def test_fit_vs_real_masks(shared_data):
    """On real DSB images, the fit from detections lands near the statistics of the real masks."""
    split = shared_data / "nuclei2d-dsb2018" / "train"
    imgs = fit.subsample(sorted((split / "images").glob("*.tif")), 8)
    a = fit.measure(imgs, progress=False)
    b = fit.measure(imgs, [split / "masks" / p.name for p in imgs], progress=False)
    assert a["radius_p50"] == pytest.approx(b["radius_p50"], rel=0.3)
    assert a["objects_per_image_p50"] == pytest.approx(b["objects_per_image_p50"], rel=0.4)


@pytest.mark.parametrize("ndim", [2, 3])
def test_detect_splits_touching_nuclei(rng, ndim):
    """Clumps of touching nuclei are counted one by one (the fit's density is not biased low)."""
    shape = (64, 64) if ndim == 2 else (24, 48, 48)
    radius = 5.0
    grid = np.indices(shape).reshape(ndim, -1).T
    # chains of 3 touching balls (centres 2r - 1 apart) plus isolated ones
    mid = [s // 2 for s in shape[:-2]]
    centres = [mid + [12, 10 + 9 * k] for k in range(3)] + [mid + [40, 12 + 9 * k] for k in range(3)]
    centres += [mid + [26, 40]]
    labels = np.zeros(shape, np.uint16)
    for i, c in enumerate(centres, 1):
        inside = ((grid - np.asarray(c, float)) ** 2).sum(1) <= radius ** 2
        labels.reshape(-1)[inside & (labels.reshape(-1) == 0)] = i
    assert ndi.label(labels > 0)[1] == 3  # two clumps of three and one isolated nucleus
    img = rng.poisson(np.where(labels > 0, 120.0, 10.0)).astype(np.uint16)
    det = fit.detect_objects(img)
    assert det.max() == len(centres)
    st = fit.object_stats(det, img)
    assert st["n_objects"] == len(centres)

