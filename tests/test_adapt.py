"""`cellsynth adapt` (fit → diffusion → generate → segmenter → predict → report), its resume,
its input checks, and the domain statistic (tiny 2D and 3D images, seeded, CPU)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cellsynth import adapt as A
from cellsynth.cli import main
from cellsynth.errors import InputError
from cellsynth.io import read_json, read_labels, write_tiff
from cellsynth.metrics.domain import FEATURES, domain_record, domain_shift, image_features
from cellsynth.render.diffusion import default_model_path


def _blobs(shape, radius, n, rng, bg=10.0, fg=120.0):
    """Poisson image of n separated balls (2D or 3D) and its labels."""
    labels = np.zeros(shape, np.uint16)
    grid = np.indices(shape)
    centres: list[np.ndarray] = []
    for _ in range(10000):
        if len(centres) == n:
            break
        c = rng.uniform(radius + 1, np.array(shape) - radius - 1)
        if all(np.linalg.norm(c - o) > 2 * radius + 3 for o in centres):
            centres.append(c)
    assert len(centres) == n, "test scene too crowded"
    for i, c in enumerate(centres, 1):
        labels[sum((g - ci) ** 2 for g, ci in zip(grid, c)) <= radius ** 2] = i
    return rng.poisson(np.where(labels > 0, fg, bg)).astype(np.uint16), labels


def _lab(root, shape=(64, 64), n_images=3, radius=5.0, n=4):
    rng = np.random.default_rng(0)
    for i in range(n_images):
        img, lab = _blobs(shape, radius, n, rng)
        write_tiff(root / "images" / f"im{i}.tif", img)
        write_tiff(root / "masks" / f"im{i}.tif", lab)
    return root


TINY_2D = {"diffusion": {"batch_size": 2, "patch_size": [32, 32]},
           "segmenter": {"channels": [8, 16], "patch": [32, 32], "batch_size": 2},
           "render": {"t_start": 50, "steps": 2}}


def _cli(lab, out, *extra):
    cfg = lab / "adapt.json"
    cfg.write_text(json.dumps(TINY_2D))
    return main(["adapt", "--images", str(lab / "images"), "--out", str(out), "--budget", "0.2", "--n", "3",
                 "--diffusion-steps", "6", "--segmenter-steps", "4", "--config", str(cfg), "--threads", "1",
                 "--device", "cpu", "--no-progress", *extra])


# --------------------------------------------------------------------------- domain statistic
def test_domain_features_2d_and_3d():
    rng = np.random.default_rng(0)
    for shape in ((32, 32), (8, 16, 16)):
        f = image_features(rng.normal(10, 1, shape))
        assert f.shape == (len(FEATURES),) and np.all(np.isfinite(f))
        assert f[0] == pytest.approx(np.log10(np.prod(shape)))
    with pytest.raises(InputError, match="2D or 3D"):
        image_features(np.zeros(5))


@pytest.mark.parametrize("shape", [(48, 48), (16, 32, 32)])
def test_domain_shift_separates_an_unseen_type(shape):
    rng = np.random.default_rng(1)
    dim = [_blobs(shape, 2.5, 2, rng, bg=5, fg=40)[0] for _ in range(6)]     # sparse, dim
    dense = [_blobs(shape, 2.5, 7, rng, bg=5, fg=200)[0] for _ in range(4)]  # crowded, bright
    rec = domain_record(dim)
    assert json.loads(json.dumps(rec)) == rec  # stored in config.json as it is
    same = domain_shift(rec, [_blobs(shape, 2.5, 2, rng, bg=5, fg=40)[0] for _ in range(3)])
    other = domain_shift(rec, dense)
    assert not same["differs"] and other["differs"]
    assert other["value"] > 1 >= same["value"] and other["statistic"] == "median nearest-neighbour distance ratio"
    # a training set that holds both types covers both
    assert not domain_shift(domain_record(dim + dense), dense)["differs"]


def test_domain_shift_refuses_a_bad_record():
    with pytest.raises(InputError, match="domain record"):
        domain_shift({"version": 1, "features": ["x"]}, [np.ones((8, 8))])


def test_shipped_model_records_its_training_images():
    cfg = read_json(default_model_path() / "config.json")
    dom = cfg["domain"]
    assert cfg["format_version"] == 1 and dom["features"] == list(FEATURES)
    assert len(dom["values"]) == cfg["training"]["data"]["count"] == 395


# --------------------------------------------------------------------------- adapt, end to end and resumed
@pytest.mark.slow
def test_adapt_2d_end_to_end_then_resume_after_interrupt(tmp_path, monkeypatch, capsys):
    lab = _lab(tmp_path / "lab")
    out = tmp_path / "project"
    real_segmenter = A._stage_segmenter

    def interrupted(s, renderer):
        raise KeyboardInterrupt
    monkeypatch.setattr(A, "_stage_segmenter", interrupted)
    assert _cli(lab, out, "--masks", str(lab / "masks")) == 130  # stopped between generate and segmenter
    for stage in ("fit", "diffusion", "renderer", "generate"):
        assert (out / "stages" / f"{stage}.json").is_file()
    assert not (out / "stages" / "segmenter.json").exists() and not (out / "report.json").exists()
    weights = out / "models" / "diffusion" / "weights.safetensors"
    chosen = read_json(out / "stages" / "renderer.json")["renderer"]
    dataset = out / "datasets" / chosen
    before = {p: p.stat().st_mtime_ns for p in [weights, *sorted((dataset / "images").glob("*.tif"))]}

    monkeypatch.setattr(A, "_stage_segmenter", real_segmenter)
    capsys.readouterr()
    assert _cli(lab, out, "--masks", str(lab / "masks")) == 0
    assert "AP@0.5" in capsys.readouterr().out
    # finished stages were not redone
    assert {p: p.stat().st_mtime_ns for p in before} == before
    rep = read_json(out / "report.json")
    st = rep["stages"]
    # the shipped model was fine-tuned (its weights loaded, its network kept), not trained from scratch
    model_cfg = read_json(out / "models" / "diffusion" / "config.json")
    assert st["diffusion"]["mode"] == "finetune" and model_cfg["training"]["init"]["folder"] == "nuclei2d-dsb"
    assert model_cfg["architecture"]["args"]["channels"] == [16, 32, 64] and "domain" in model_cfg
    assert 1 <= st["diffusion"]["steps"] <= 6
    # tiny Poisson blobs do not look like DSB nuclei images: the report says so and by which statistic
    assert rep["domain"]["differs"] is True and rep["domain"]["value"] > 1
    # the renderer was chosen without labels from the first samples of each candidate
    assert set(st["renderer"]["scores"]) == {"diffusion", "physics"} and st["renderer"]["renderer"] == chosen
    for r in ("diffusion", "physics"):
        assert len(list((out / "datasets" / r / "images").glob("*.tif"))) >= 3
    assert st["generate"]["n"] == 3 and len(list((dataset / "images").glob("*.tif"))) == 3
    assert 1 <= st["segmenter"]["steps"] <= 4
    for i in range(3):
        assert read_labels(out / "predictions" / f"im{i}.tif").shape == (64, 64)
    assert set(rep["scores"]["per_image"]) == {"im0", "im1", "im2"}
    assert 0 <= rep["scores"]["ap50"] <= 1 and 0 <= rep["scores"]["dice"] <= 1
    per = [v["ap50"] for v in rep["scores"]["per_image"].values()]
    assert rep["scores"]["ap50_mean"] == pytest.approx(sum(per) / len(per))
    md = (out / "report.md").read_text()
    assert "median nearest-neighbour distance ratio" in md and "AP@0.5" in md
    assert (out / "config.yaml").is_file()
    # a rerun of a finished project changes nothing but the report
    assert _cli(lab, out, "--masks", str(lab / "masks")) == 0
    assert {p: p.stat().st_mtime_ns for p in before} == before


@pytest.mark.slow
def test_adapt_diffusion_training_resumes_within_its_budget(tmp_path):
    lab = _lab(tmp_path / "lab")
    model = tmp_path / "m"
    over = {"batch_size": 2, "patch_size": [32, 32], "checkpoint_every": 2}
    first = A.train_adapted_diffusion(lab / "images", model, "finetune", default_model_path(), budget_s=1e-6,
                                      max_steps=50, overrides=over, device="cpu", progress=False)
    assert first["steps"] == 1  # stopped by the wall clock after its first step, saved there
    again = A.train_adapted_diffusion(lab / "images", model, "finetune", default_model_path(), budget_s=1e-6,
                                      max_steps=50, overrides=over, device="cpu", progress=False)
    assert again["steps"] == 1  # the budget is spent: nothing more
    more = A.train_adapted_diffusion(lab / "images", model, "finetune", default_model_path(), budget_s=600,
                                     max_steps=5, overrides=over, device="cpu", progress=False)
    assert more["steps"] == 5  # resumed from the checkpoint up to the step cap
    assert read_json(model / "config.json")["training"]["steps"] == 5


@pytest.mark.slow
def test_adapt_3d_trains_from_scratch(tmp_path):
    """The shipped model is 2D: 3D images get a model of its size trained from scratch."""
    lab = _lab(tmp_path / "lab", shape=(16, 32, 32), n_images=2, radius=4.0, n=3)
    cfg = {"diffusion": {"channels": [8, 16], "batch_size": 2, "patch_size": [8, 16, 16]},
           "segmenter": {"channels": [8, 16], "patch": [8, 16, 16], "batch_size": 2},
           "render": {"t_start": 20, "steps": 2}}
    s = A.AdaptSettings(images=lab / "images", out=tmp_path / "p3", masks=lab / "masks", budget_min=0.1,
                        preset="nuclei3d-celegans", n=2, diffusion_steps=3, segmenter_steps=2, config=cfg,
                        device="cpu", threads=1, progress=False)
    rep = A.run_adapt(s)
    assert rep["stages"]["diffusion"]["mode"] == "scratch"
    assert read_json(tmp_path / "p3" / "models" / "diffusion" / "config.json")["architecture"]["args"][
        "spatial_dims"] == 3
    assert read_labels(tmp_path / "p3" / "predictions" / "im0.tif").shape == (16, 32, 32)
    assert rep["scores"]["n_images"] == 2


# --------------------------------------------------------------------------- bad input: one line, nothing written
def test_adapt_bad_inputs(tmp_path, capsys):
    lab = _lab(tmp_path / "lab", n_images=2)
    out = tmp_path / "project"

    def err(*extra, images=lab / "images"):
        capsys.readouterr()
        assert main(["adapt", "--images", str(images), "--out", str(out), "--no-progress", *extra]) == 2
        msg = capsys.readouterr().err.strip()
        assert len(msg.splitlines()) == 1 and not out.exists()
        return msg

    assert "--budget 0" in err("--budget", "0")
    assert "empty" in err(images=tmp_path / "empty")
    write_tiff(tmp_path / "badmasks" / "im0.tif", np.zeros((8, 8), np.uint16))
    write_tiff(tmp_path / "badmasks" / "im1.tif", np.zeros((8, 8), np.uint16))
    assert "shape" in err("--masks", str(tmp_path / "badmasks"))
    (tmp_path / "badmasks" / "im1.tif").unlink()
    write_tiff(tmp_path / "badmasks" / "im0.tif", np.zeros((64, 64), np.uint16))
    assert "no mask" in err("--masks", str(tmp_path / "badmasks"))
    # a 3D folder cannot use the 2D shipped model as it is
    write_tiff(tmp_path / "vol" / "v.tif", np.ones((4, 16, 16), np.uint16))
    assert "2D model" in err("--no-train", images=tmp_path / "vol")
    nan = tmp_path / "nan"
    write_tiff(nan / "a.tif", np.full((16, 16), np.nan, np.float32))
    assert "NaN" in err(images=nan)
    assert "base diffusion model" in err("--base-model", str(tmp_path / "lab"))
    (tmp_path / "c.yaml").write_text("segmenter: {bogus: 1}\n")
    assert "bogus" in err("--config", str(tmp_path / "c.yaml"))


def test_adapt_refuses_a_project_of_other_settings(tmp_path):
    lab = _lab(tmp_path / "lab", n_images=2)
    out = tmp_path / "project"
    s = A.AdaptSettings(images=lab / "images", out=out, progress=False)
    A._open_project(s, A.validate_settings(s))
    other = A.AdaptSettings(images=lab / "images", out=out, n=7, progress=False)
    with pytest.raises(InputError, match="other settings"):
        A._open_project(other, A.validate_settings(other))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    s3 = A.AdaptSettings(images=lab / "images", out=tmp_path / "full", progress=False)
    with pytest.raises(InputError, match="not empty"):
        A._open_project(s3, A.validate_settings(s3))
