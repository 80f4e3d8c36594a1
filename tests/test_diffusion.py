"""DDPM schedule, training, model directories and SDEdit sampling (tiny models, seeded, CPU)."""
from __future__ import annotations

import json
import math
import re
import shutil

import numpy as np
import pytest
import tifffile
import torch

from cellsynth.cli import main
from cellsynth.errors import ConfigError, InputError
from cellsynth.generative import diffusion as D

TINY = dict(channels=[8, 16], batch_size=2, checkpoint_every=2, seed=0, threads=1)


def _blobs(shape, rng, n=4):
    """A fluorescence-like image: bright Gaussian blobs on a dim noisy background (uint8)."""
    grids = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    img = np.full(shape, 10.0)
    for _ in range(n):
        c = [rng.uniform(0, s) for s in shape]
        img += 150 * np.exp(-sum((g - ci) ** 2 for g, ci in zip(grids, c)) / (2 * 3.0 ** 2))
    return np.clip(img + rng.normal(0, 3, shape), 0, 255).astype(np.uint8)


def _image_dir(tmp_path, shapes, name="imgs"):
    d = tmp_path / name
    d.mkdir()
    rng = np.random.default_rng(1)
    for i, s in enumerate(shapes):
        tifffile.imwrite(d / f"im{i}.tif", _blobs(s, rng), photometric="minisblack")
    return d


@pytest.fixture(scope="module")
def model2d(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("m2d")
    imgs = _image_dir(tmp, [(40, 40), (32, 48), (20, 20)])
    out = D.train_diffusion(imgs, tmp / "model", D.DiffusionTrainConfig(**TINY, patch_size=[16, 16]),
                            steps=2, progress=False)
    return D.load_model(out)


# --------------------------------------------------------------------------- schedule
def test_cosine_schedule_matches_closed_form():
    T, s = 1000, 0.008
    sch = D.Schedule(T, s, 0.999)
    f = lambda t: math.cos(((t / T) + s) / (1 + s) * math.pi / 2) ** 2
    k = np.arange(T - 5)  # the last few betas are clipped at 0.999
    expected = np.array([f(t + 1) / f(0) for t in k])
    np.testing.assert_allclose(sch.alphas_cumprod[k], expected, rtol=1e-9, atol=1e-12)
    assert sch.betas.max() <= 0.999 and np.all(np.diff(sch.alphas_cumprod) < 0)
    assert sch.betas[-1] == pytest.approx(0.999)


def test_forward_noising_statistics():
    sch = D.Schedule()
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((1, 1, 256, 256), 0.6)
    for k in (10, 399, 900):
        xt = sch.q_sample(x0, k, torch.randn(x0.shape, generator=g))
        ab = sch.alphas_cumprod[k]
        assert float(xt.mean()) == pytest.approx(math.sqrt(ab) * 0.6, abs=0.01)
        assert float(xt.var()) == pytest.approx(1 - ab, rel=0.03, abs=2e-4)


def test_respaced_timesteps():
    ts = D.respaced_timesteps(400, 50)
    assert len(ts) == 50 and ts[0] == 399 and ts[-1] == 0 and np.all(np.diff(ts) < 0)
    assert np.array_equal(D.respaced_timesteps(7, 7), np.arange(6, -1, -1))
    assert np.array_equal(D.respaced_timesteps(400, 1), [399])
    with pytest.raises(ConfigError):
        D.respaced_timesteps(10, 11)


def test_respaced_coefficients_keep_marginals():
    """Skipped stretches are exact: ∏(1 − β'_i) over the kept steps reproduces ᾱ at each kept index."""
    sch = D.Schedule()
    ts = D.respaced_timesteps(400, 13)
    co = D.respaced_coefficients(sch.alphas_cumprod, ts)
    prod_from_zero = np.cumprod((1 - co["beta"])[::-1])[::-1]
    np.testing.assert_allclose(prod_from_zero, sch.alphas_cumprod[ts], rtol=1e-10)
    assert np.all(co["var"] >= 0) and co["var"][-1] == 0


def _reference_full_chain(eps_fn, sch, x, t_start, gen, clip=1.0):
    """Plain DDPM ancestral sampling with the original betas (Ho et al. eq. 6–7), no respacing code."""
    ab, betas = sch.alphas_cumprod, sch.betas
    for k in range(t_start - 1, -1, -1):
        eps = eps_fn(x, torch.full((x.shape[0],), float(k)))
        x0 = ((x - math.sqrt(1 - ab[k]) * eps) / math.sqrt(ab[k])).clamp(-clip, clip)
        ab_prev = ab[k - 1] if k > 0 else 1.0
        mean = (betas[k] * math.sqrt(ab_prev) / (1 - ab[k])) * x0 + \
               ((1 - ab_prev) * math.sqrt(1 - betas[k]) / (1 - ab[k])) * x
        if k > 0:
            mean = mean + math.sqrt(betas[k] * (1 - ab_prev) / (1 - ab[k])) * torch.randn(x.shape, generator=gen)
        x = mean
    return x


def test_respaced_sampler_with_k_equal_t_start_is_full_chain(model2d):
    net = model2d.net
    eps_fn = lambda x, k: net(x, k)
    x_t = torch.randn((1, 1, 16, 16), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = _reference_full_chain(eps_fn, model2d.schedule, x_t.clone(), 30, torch.Generator().manual_seed(5))
    out = D.reverse_process(model2d, x_t.clone(), 30, 30, torch.Generator().manual_seed(5))
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    again = D.reverse_process(model2d, x_t.clone(), 30, 30, torch.Generator().manual_seed(5))
    assert torch.equal(out, again)


def test_sdedit_repeats_and_differs_by_seed(model2d):
    sk = np.zeros((24, 24), np.float32)
    sk[6:14, 8:18] = 0.8
    a = D.sdedit(model2d, sk, t_start=50, steps=5, seed=1)
    b = D.sdedit(model2d, sk, t_start=50, steps=5, generator=torch.Generator().manual_seed(1))
    c = D.sdedit(model2d, sk, t_start=50, steps=5, seed=2)
    assert a.shape == sk.shape and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_sdedit_tiled_equals_untiled_when_image_fits_one_tile(model2d):
    sk = np.random.default_rng(0).random((20, 28)).astype(np.float32)  # padded to 32 (divisor 2)
    a = D.sdedit(model2d, sk, t_start=40, steps=4, seed=0, tile=None)
    b = D.sdedit(model2d, sk, t_start=40, steps=4, seed=0, tile=[64, 64])
    assert np.array_equal(a, b)


def test_sdedit_small_odd_image_and_tiling(model2d):
    sk = np.random.default_rng(0).random((9, 47)).astype(np.float32)
    out = D.sdedit(model2d, sk, t_start=20, steps=3, seed=0, tile=[16, 16], overlap=0.5)
    assert out.shape == (9, 47) and np.isfinite(out).all()


def test_sdedit_at_t_start_1_returns_mapped_blurred_sketch(model2d):
    """At t_start = 1 the chain is one deterministic step: the output stays close to the sketch."""
    sk = np.zeros((16, 16), np.float32)
    sk[4:12, 4:12] = 1.0
    out = D.sdedit(model2d, sk, t_start=1, steps=1, sigma=0, seed=0, output="model")
    bg = model2d.intensity["background"]
    assert abs(float(out[0, 0]) - bg) < 0.05
    assert abs(float(out[8, 8]) - model2d.intensity["foreground_high"]) < 0.05


def test_sdedit_rejects_wrong_ndim(model2d):
    with pytest.raises(InputError, match="3D"):
        D.sdedit(model2d, np.zeros((4, 16, 16), np.float32))


def test_map_sketch_intensities():
    stats = {"background": -0.9, "foreground_low": -0.2, "foreground_high": 0.6}
    s = np.array([0.0, 0.03, 0.35, 0.6, 0.85, 1.0], np.float32)
    m = D.map_sketch_intensities(s, stats, (0.03, 0.35, 0.85))
    np.testing.assert_allclose(m[[1, 2, 4]], [-0.9, -0.2, 0.6], atol=1e-6)
    assert m[0] == pytest.approx(-0.9) and m[5] == pytest.approx(0.6)  # clamped beyond the levels
    assert -0.2 < m[3] < 0.6
    m2 = D.map_sketch_intensities(s, stats, (0.03, 0.35, 0.85), background=-1.0, foreground=(0.0, 1.0))
    np.testing.assert_allclose(m2[[1, 2, 4]], [-1.0, 0.0, 1.0], atol=1e-6)


# --------------------------------------------------------------------------- model directory
def test_save_load_round_trip(model2d, tmp_path):
    out = D.save_model(model2d.net, model2d.config, tmp_path / "copy")
    again = D.load_model(out)
    sk = np.random.default_rng(0).random((16, 16)).astype(np.float32)
    assert np.array_equal(D.sdedit(model2d, sk, t_start=30, steps=3, seed=4),
                          D.sdedit(again, sk, t_start=30, steps=3, seed=4))
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["format_version"] == D.FORMAT_VERSION and cfg["architecture"]["args"]["time_embedding"]
    assert {"cellsynth", "torch"} <= set(cfg["versions"]) and cfg["schedule"]["T"] == 1000
    assert cfg["intensity"]["background"] < cfg["intensity"]["foreground_high"]
    # portable record of the training set: 3 images, no absolute path of this machine
    assert cfg["training"]["data"]["count"] == 3 and str(tmp_path.parent) not in json.dumps(cfg)


def _bad_copy(model2d, tmp_path, name):
    d = tmp_path / name
    shutil.copytree(model2d.path, d, ignore=shutil.ignore_patterns("checkpoint"))
    return d


@pytest.mark.parametrize("damage, message", [
    ("missing_weights", "missing weights.safetensors"),
    ("missing_config", "missing config.json"),
    ("corrupt_json", "not valid JSON"),
    ("wrong_version", "format version"),
    ("wrong_format", "not 'cellsynth-diffusion'"),
    ("mismatched_weights", "do not match"),
    ("corrupt_weights", "unreadable"),
    ("not_a_dir", "not a folder"),
])
def test_bad_model_directories_rejected(model2d, tmp_path, damage, message):
    d = _bad_copy(model2d, tmp_path, damage)
    cfg_file = d / "config.json"
    cfg = json.loads(cfg_file.read_text())
    if damage == "missing_weights":
        (d / "weights.safetensors").unlink()
    elif damage == "missing_config":
        cfg_file.unlink()
    elif damage == "corrupt_json":
        cfg_file.write_text('{"format": "cellsynth-diffusion", ')
    elif damage == "wrong_version":
        cfg["format_version"] = 99
        cfg_file.write_text(json.dumps(cfg))
    elif damage == "wrong_format":
        cfg["format"] = "something-else"
        cfg_file.write_text(json.dumps(cfg))
    elif damage == "mismatched_weights":
        cfg["architecture"]["args"]["channels"] = [8, 24]
        cfg_file.write_text(json.dumps(cfg))
    elif damage == "corrupt_weights":
        (d / "weights.safetensors").write_bytes(b"\x00garbage" * 10)
    elif damage == "not_a_dir":
        shutil.rmtree(d)
    with pytest.raises(InputError, match=message) as e:
        D.load_model(d)
    assert str(d) in str(e.value) and "\n" not in str(e.value)


# --------------------------------------------------------------------------- training
def test_train_2d_resume_is_identical_to_straight_run(tmp_path):
    imgs = _image_dir(tmp_path, [(40, 40), (24, 36)])
    cfg = D.DiffusionTrainConfig(**TINY, patch_size=[16, 16])
    straight = D.train_diffusion(imgs, tmp_path / "a", cfg, steps=4, progress=False)
    D.train_diffusion(imgs, tmp_path / "b", cfg, steps=2, progress=False)
    with pytest.raises(InputError, match="already holds a model"):
        D.train_diffusion(imgs, tmp_path / "b", cfg, steps=4, progress=False)
    resumed = D.train_diffusion(imgs, tmp_path / "b", cfg, steps=4, resume=True, progress=False)
    a, b = D.load_model(straight), D.load_model(resumed)
    assert b.config["training"]["steps"] == 4
    for (ka, va), (kb, vb) in zip(a.net.state_dict().items(), b.net.state_dict().items()):
        assert ka == kb and torch.equal(va, vb), ka


def test_train_3d_anisotropic(tmp_path):
    imgs = _image_dir(tmp_path, [(10, 32, 32), (6, 24, 40)])
    cfg = D.DiffusionTrainConfig(**{**TINY, "channels": [8, 16, 16]}, patch_size=[8, 16, 16],
                                 strides=[[1, 2, 2], [2, 2, 2]])
    out = D.train_diffusion(imgs, tmp_path / "m3", cfg, steps=2, progress=False)
    m = D.load_model(out)
    assert m.ndim == 3 and m.net.divisor == [2, 4, 4]
    sk = np.zeros((5, 20, 30), np.float32)
    sk[1:4, 5:12, 8:20] = 0.7
    a = D.sdedit(m, sk, t_start=20, steps=3, seed=0, tile=[4, 16, 16])
    b = D.sdedit(m, sk, t_start=20, steps=3, seed=0, tile=[4, 16, 16])
    assert a.shape == sk.shape and np.array_equal(a, b) and np.isfinite(a).all()


def test_train_rejects_mixed_dimensions_and_bad_patch(tmp_path):
    imgs = _image_dir(tmp_path, [(24, 24)])
    tifffile.imwrite(imgs / "z3d.tif", _blobs((4, 24, 24), np.random.default_rng(0)), photometric="minisblack")
    with pytest.raises(InputError, match="same number of dimensions"):
        D.train_diffusion(imgs, tmp_path / "m", D.DiffusionTrainConfig(**TINY), steps=1, progress=False)
    imgs2 = _image_dir(tmp_path, [(24, 24)], name="two")
    with pytest.raises(ConfigError, match="multiple of the U-Net divisor"):
        D.train_diffusion(imgs2, tmp_path / "m", D.DiffusionTrainConfig(**TINY, patch_size=[15, 16]),
                          steps=1, progress=False)
    with pytest.raises(ConfigError, match="2D"):
        D.train_diffusion(imgs2, tmp_path / "m", D.DiffusionTrainConfig(**TINY, patch_size=[8, 16, 16]),
                          steps=1, progress=False)
    assert not (tmp_path / "m").exists()


def test_cli_train_diffusion(tmp_path, capsys):
    imgs = _image_dir(tmp_path, [(32, 32), (32, 40)])
    cfg = tmp_path / "train.yaml"
    cfg.write_text("channels: [8, 16]\npatch_size: [16, 16]\nbatch_size: 2\ncheckpoint_every: 1\n")
    rc = main(["train", "diffusion", "--images", str(imgs), "--out", str(tmp_path / "m"), "--config", str(cfg),
               "--steps", "2", "--device", "cpu", "--threads", "1", "--no-progress"])
    assert rc == 0 and D.load_model(tmp_path / "m").config["training"]["steps"] == 2
    rc = main(["train", "diffusion", "--images", str(imgs), "--out", str(tmp_path / "m"), "--config", str(cfg),
               "--steps", "3", "--resume", "--no-progress"])
    assert rc == 0 and D.load_model(tmp_path / "m").config["training"]["steps"] == 3
    rc = main(["train", "diffusion", "--images", str(tmp_path / "nope"), "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert rc == 2 and "does not exist" in err
    cfg.write_text("chanels: [8]\n")
    rc = main(["train", "diffusion", "--images", str(imgs), "--out", str(tmp_path / "y"), "--config", str(cfg)])
    assert rc == 2 and "chanels" in capsys.readouterr().err


# --------------------------------------------------------------------------- renderer
def test_diffusion_renderer_from_scene(model2d):
    from cellsynth.config import DiffusionRenderConfig, SketchConfig
    from cellsynth.render.diffusion import DiffusionRenderer
    from cellsynth.scene import Scene
    labels = np.zeros((24, 32), np.uint16)
    labels[4:12, 4:14] = 1
    labels[14:22, 18:28] = 2
    scene = Scene(labels=labels, foreground=np.ones_like(labels, bool), spacing=(1.0, 1.0),
                  classes={1: "nucleus", 2: "nucleus"})
    before = torch.get_num_threads()
    try:
        r = DiffusionRenderer(DiffusionRenderConfig(model=model2d.path, t_start=30, steps=3, threads=1),
                              SketchConfig())
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    a = r.render(scene, np.random.default_rng(0))
    b = r.render(scene, np.random.default_rng(0))
    assert a.shape == labels.shape and a.dtype == np.float32 and np.array_equal(a, b)
    d = r.describe()
    assert d["renderer"] == "diffusion" and d["t_start"] == 30 and d["model"] == str(model2d.path)
    with pytest.raises(InputError, match="3D"):
        r.render(Scene(labels=np.zeros((4, 8, 8), np.uint16), foreground=np.ones((4, 8, 8), bool),
                       spacing=(1, 1, 1)), np.random.default_rng(0))


def test_default_model_path_points_at_shipped_model():
    from cellsynth.render.diffusion import default_model_path
    p = default_model_path()  # the shipped model is part of the package: missing = failure
    m = D.load_model(p)
    assert m.ndim == 2 and p.name == "nuclei2d-dsb"
    # the training data are recorded portably, never by a path of the training machine
    assert set(m.config["training"]["data"]) == {"folder", "count", "sha256"}
    assert "/" not in json.dumps(m.config["training"])


def test_shipped_model_training_data_is_the_dsb_train_set(shared_data):
    from cellsynth.io import list_images
    from cellsynth.modelfolder import describe_training_data
    from cellsynth.render.diffusion import default_model_path
    d = shared_data / "nuclei2d-dsb2018" / "train" / "images"
    assert D.load_model(default_model_path()).config["training"]["data"] == describe_training_data(list_images(d), d)


def test_cli_generate_with_diffusion_renderer(model2d, tmp_path):
    """End to end: simulated scenes → sketch → SDEdit, written as an image/mask dataset."""
    from cellsynth.io import read_image, read_labels
    out = tmp_path / "ds"
    rc = main(["generate", "--preset", "nuclei2d-dsb", "--renderer", "diffusion", "--model", str(model2d.path),
               "--n", "1", "--seed", "0", "--out", str(out), "--no-progress",
               "--set", "scene.shape=[48,40]", "--set", "render.diffusion.steps=3",
               "--set", "render.diffusion.t_start=30"])
    assert rc == 0
    img = read_image(next((out / "images").glob("*.tif")))
    lab = read_labels(next((out / "masks").glob("*.tif")))
    assert img.shape == lab.shape == (48, 40) and np.isfinite(img).all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert "diffusion" in json.dumps(manifest)


@pytest.fixture(scope="module")
def model_t1200(tmp_path_factory):
    """A tiny model with T = 1200 (above the former hard-coded bound of 1000)."""
    tmp = tmp_path_factory.mktemp("t1200")
    imgs = _image_dir(tmp, [(24, 24), (20, 20)])
    return D.train_diffusion(imgs, tmp / "model", D.DiffusionTrainConfig(**TINY, patch_size=[16, 16], T=1200),
                             steps=1, progress=False)


@pytest.mark.parametrize("settings, message", [
    (["render.diffusion.t_start=1201", "render.diffusion.steps=2"], r"t_start = 1201: must be in 1\.\.1200"),
    (["render.diffusion.t_start=10", "render.diffusion.steps=11"], "steps = 11: must be between 1 and"),
])
def test_generate_refuses_sampling_settings_beyond_the_models_T_before_writing(model_t1200, tmp_path, capsys,
                                                                               settings, message):
    out = tmp_path / "ds"
    args = ["generate", "--preset", "nuclei2d-dsb", "--renderer", "diffusion", "--model", str(model_t1200),
            "--n", "1", "--seed", "0", "--out", str(out), "--no-progress", "--set", "scene.shape=[16,16]"]
    for s in settings:
        args += ["--set", s]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(message, err[0]) and "render.diffusion." in err[0]
    assert not out.exists()  # nothing written, not even the folder or manifest


def test_t_start_up_to_the_models_own_T_is_accepted(model_t1200, tmp_path):
    from cellsynth.config import DiffusionRenderConfig
    from cellsynth.render.diffusion import DiffusionRenderer
    from cellsynth.scene import Scene
    r = DiffusionRenderer(DiffusionRenderConfig(model=model_t1200, t_start=1200, steps=2, device="cpu"))
    labels = np.zeros((16, 16), np.uint16)
    labels[4:10, 5:12] = 1
    img = r.render(Scene(labels=labels, foreground=np.ones((16, 16), bool), spacing=(1, 1)),
                   np.random.default_rng(0))
    assert img.shape == (16, 16) and np.isfinite(img).all()
