"""GAN machinery (nets, loop, ADA, tiling) and the CycleGAN / cGAN translators on tiny 2D and 3D data."""
from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch

from cellsynth.errors import ConfigError, InputError
from cellsynth.generative import adversarial as A
from cellsynth.generative.augment import ADA, augment
from cellsynth.generative.cgan import CGANTrainConfig, ConditionalGAN, train_cgan
from cellsynth.generative.cyclegan import CycleGAN, CycleGANTrainConfig, train_cyclegan
from cellsynth.generative.domains import Domains, distance_weight, encode_mask
from cellsynth.generative.translate import load_translator, render_labels, segment_image
from cellsynth.nn.patchgan import PatchDiscriminator
from cellsynth.nn.resnet import ResnetGenerator
from cellsynth.nn.unet import UNet
from cellsynth.simulate.encode import boundaries
from cellsynth.tiling import tiled_generate

SHAPES = {2: (32, 32), 3: (16, 32, 32)}


def _data(tmp_path, nd, n=2):
    """Two blob images with their masks (same names), 2D or 3D."""
    shape = SHAPES[nd]
    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir(exist_ok=True)
    (tmp_path / "masks").mkdir(exist_ok=True)
    for k in range(n):
        lab = np.zeros(shape, np.uint16)
        lab[(slice(2 + k, 10),) * nd] = 1
        lab[(slice(12, 15),) * nd] = 2
        img = (lab > 0) * 100.0 + rng.normal(10, 3, shape)
        tifffile.imwrite(tmp_path / "images" / f"v{k}.tif", img.astype(np.float32))
        tifffile.imwrite(tmp_path / "masks" / f"v{k}.tif", lab)
    return tmp_path / "images", tmp_path / "masks"


def _cyc_cfg(nd, **kw):
    return CycleGANTrainConfig(**{**dict(channels=4, n_blocks=1, d_channels=4, d_layers=2, patch_size=[16] * nd,
                                         steps=3, checkpoint_every=2, pool_size=2, batch_size=2), **kw})


def _cgan_cfg(nd, **kw):
    return CGANTrainConfig(**{**dict(channels=[4, 8], d_channels=4, d_layers=2, patch_size=[16] * nd, steps=3,
                                     checkpoint_every=2, batch_size=2), **kw})


# --------------------------------------------------------------------------- networks
@pytest.mark.parametrize("nd", [2, 3])
def test_networks_shapes(nd):
    x = torch.zeros(2, 1, *([16] * nd))
    assert ResnetGenerator(nd, 1, 2, channels=4, n_blocks=1)(x).shape == (2, 2, *([16] * nd))
    assert PatchDiscriminator(nd, 1, channels=4, n_layers=2)(x).shape[:2] == (2, 1)
    u = UNet(nd, 2, 1, (4, 8), norm="batch")
    assert u(torch.zeros(1, 2, *([8] * nd))).shape == (1, 1, *([8] * nd))
    assert not any(isinstance(m, torch.nn.GroupNorm) for m in u.modules())


def test_anisotropic_resnet_strides():
    g = ResnetGenerator(3, 1, 1, channels=4, n_blocks=1, strides=[[1, 2, 2], [2, 2, 2]])
    assert g.divisor == [2, 4, 4]
    assert g(torch.zeros(1, 1, 4, 8, 8)).shape == (1, 1, 4, 8, 8)


# --------------------------------------------------------------------------- losses
def test_gan_loss_values():
    p = torch.tensor([0.0, 2.0])
    assert float(A.gan_loss(p, True, "lsgan")) == pytest.approx((1 + 1) / 2)
    assert float(A.gan_loss(p, False, "lsgan")) == pytest.approx((0 + 4) / 2)
    sp = lambda v: float(np.log1p(np.exp(v)))
    assert float(A.gan_loss(p, True, "nonsaturating")) == pytest.approx((sp(0) + sp(-2)) / 2, rel=1e-6)
    assert float(A.gan_loss(p, False, "nonsaturating")) == pytest.approx((sp(0) + sp(2)) / 2, rel=1e-6)
    with pytest.raises(ConfigError, match="gan_mode"):
        A.gan_loss(p, True, "wgan")


def test_distance_weighted_cycle_loss_hand_computed():
    # one "cell" at px 1..5 of a 1×7 image: its inner boundary is px 1 and 5
    lab = np.array([[0, 1, 1, 1, 1, 1, 0]], np.uint16)
    b = boundaries(lab)
    assert b[0].tolist() == [False, True, False, False, False, True, False]
    w = distance_weight(b, saturation=2.0, minimum=0.0)
    # distance to the nearest boundary px: 1 0 1 2 1 0 1 → min(d/2, 1)
    assert w[0].tolist() == [0.5, 0.0, 0.5, 1.0, 0.5, 0.0, 0.5]
    target = torch.from_numpy(encode_mask(lab, "foreground"))[None]  # (1, 1, 1, 7)
    pred = target.clone()
    pred[0, 0, 0, 1] = -1.0  # error 2 on a boundary px: costs nothing
    pred[0, 0, 0, 3] = 0.0   # error 1 at the cell centre: full weight
    wt = torch.from_numpy(w)[None, None]
    assert float(A.weighted_l1(pred, target, wt)) == pytest.approx((0 * 2 + 1 * 1) / 7)
    assert float(A.weighted_l1(pred, target)) == pytest.approx((2 + 1) / 7)  # plain L1
    two = torch.cat([pred, pred], 1)
    tt = torch.cat([target, target], 1)
    assert float(A.weighted_l1(two, tt, wt, class_weights=[1.0, 3.5])) == pytest.approx((1 + 3.5) / 14)


# --------------------------------------------------------------------------- ADA and augmentations
def test_ada_update_and_clamping():
    ada = ADA(target=0.6, delta=0.3, interval=2)
    ada.accumulate(torch.ones(10), centre=0.0)  # r = 1 > 0.6: D overfits → more augmentation
    assert ada.update(1) == 0.0  # not an update step
    assert ada.update(2) == pytest.approx(0.3) and ada.last_r == 1.0
    for s in (4, 6, 8, 10):
        ada.accumulate(torch.ones(3), centre=0.0)
        ada.update(s)
    assert ada.p == pytest.approx(0.95) and ada.p < 1  # clamped below 1
    for s in range(12, 40, 2):
        ada.accumulate(-torch.ones(3), centre=0.0)  # r = −1 < 0.6 → less
        ada.update(s)
    assert ada.p == 0.0  # clamped at 0
    ada.accumulate(torch.tensor([0.7, 0.2]), centre=0.5)  # LSGAN centre: signs +1, −1 → r = 0
    ada.update(40)
    assert ada.last_r == 0.0 and ada.p == 0.0
    with pytest.raises(ValueError):
        ADA(p_max=1.0)


@pytest.mark.parametrize("nd", [2, 3])
def test_augmentations_identical_on_real_and_fake(nd):
    x = torch.rand(3, 2, *([30] * nd)) * 2 - 1
    real, fake = x.clone(), x.clone()
    a = augment(real, 0.7, torch.Generator().manual_seed(5))
    b = augment(fake, 0.7, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)  # same generator state → the same transformation
    assert not torch.equal(a[:, 0], x[:, 0])  # the image channel changed
    assert torch.equal(a[:, 1], x[:, 1])  # the conditioning channel did not
    assert torch.equal(augment(x, 0.0, torch.Generator().manual_seed(5)), x)  # p = 0: identity
    # the number of random draws does not depend on p (resume-safe)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    augment(x, 0.0, g1), augment(x, 1.0, g2)
    assert torch.equal(g1.get_state(), g2.get_state())


def test_image_pool():
    pool = A.ImagePool(2, torch.Generator().manual_seed(0))
    a = pool.query(torch.zeros(2, 1, 4))
    assert torch.equal(a, torch.zeros(2, 1, 4)) and len(pool.images) == 2
    out = pool.query(torch.ones(8, 1, 4))
    assert len(pool.images) == 2 and out.shape == (8, 1, 4)
    assert 0 < float(out.mean()) < 1  # some old fakes came back
    assert torch.equal(A.ImagePool(0, torch.Generator()).query(torch.ones(1, 1)), torch.ones(1, 1))


# --------------------------------------------------------------------------- tiling
@pytest.mark.parametrize("nd", [2, 3])
def test_tiled_equals_untiled_when_one_tile_covers(nd):
    torch.manual_seed(0)
    net = ConditionalGAN(spatial_dims=nd, channels=(4, 8), d_channels=4, d_layers=2).eval()
    x = np.random.default_rng(0).random((2, *([12] * nd))).astype(np.float32)
    y = tiled_generate(x, net.generate, [16] * nd, [2] * nd, [2] * nd, net.divisor)
    with torch.no_grad():
        pad = np.pad(x, [(0, 0)] + [(0, 0)] * nd, mode="symmetric")
        ref = net.generate(torch.from_numpy(pad)[None])[0].numpy()
    np.testing.assert_array_equal(y, ref)


@pytest.mark.parametrize("nd", [2, 3])
def test_tiled_blending_is_seamless(nd):
    # a 3-wide convolution (receptive radius 1) with crop 2: every voxel comes from a core far from the
    # tile border, so the tiled result equals the whole-image result exactly; blending is normalised
    conv = (torch.nn.Conv2d, torch.nn.Conv3d)[nd - 2](1, 1, 3, padding=1)
    x = np.random.default_rng(1).random((1, *([37] * nd))).astype(np.float32)
    with torch.no_grad():
        whole = conv(torch.from_numpy(np.pad(x, [(0, 0)] + [(1, 1)] * nd, mode="symmetric"))[None])[0]
        whole = whole[(slice(None), *[slice(1, -1)] * nd)].numpy()
        y = tiled_generate(x, conv, [16] * nd, [4] * nd, [2] * nd, [1] * nd)
    assert y.shape == x.shape
    np.testing.assert_allclose(y, whole, rtol=1e-5, atol=1e-5)
    const = tiled_generate(np.ones((1, *([37] * nd)), np.float32), lambda t: t * 0 + 3, [16] * nd, [4] * nd,
                           [2] * nd, [1] * nd)
    np.testing.assert_allclose(const, 3.0)
    with pytest.raises(ValueError, match="exceed"):
        tiled_generate(x, conv, [8] * nd, [4] * nd, [2] * nd, [1] * nd)


# --------------------------------------------------------------------------- training
@pytest.mark.parametrize("nd", [2, 3])
def test_cyclegan_trains_renders_and_segments(tmp_path, nd):
    imgs, masks = _data(tmp_path, nd)
    for weighting in ("distance", "plain"):
        out = train_cyclegan(imgs, tmp_path / weighting, _cyc_cfg(nd, cycle_weighting=weighting, ada=True),
                             masks=masks, progress=False, device="cpu")
        m = CycleGAN.from_folder(out)
        assert m.meta["training"]["steps"] == 3 and 0 <= m.meta["training"]["ada_p"] < 1
    lab = tifffile.imread(masks / "v0.tif")
    img = render_labels(m, lab)
    assert img.shape == lab.shape and img.dtype == np.float32 and np.isfinite(img).all()
    assert 0 <= img.min() and img.max() <= 1
    seg = segment_image(m, tifffile.imread(imgs / "v0.tif"))
    assert seg.shape == (1, *lab.shape) and seg.dtype == bool


@pytest.mark.parametrize("mode", ["lsgan", "nonsaturating"])
@pytest.mark.parametrize("nd", [2, 3])
def test_one_step_each_gan_mode(nd, mode):
    rng = np.random.default_rng(0)
    batch = {k: torch.from_numpy(rng.uniform(-1, 1, (2, 1, *([16] * nd))).astype(np.float32))
             for k in ("image", "mask", "image_pos", "mask_pos")}
    for model in (ConditionalGAN(spatial_dims=nd, channels=(4, 8), d_channels=4, d_layers=2, gan_mode=mode),
                  CycleGAN(spatial_dims=nd, channels=4, n_blocks=1, d_channels=4, d_layers=2, gan_mode=mode)):
        model.setup_training(_cgan_cfg(nd, ada=True), torch.Generator().manual_seed(0), torch.device("cpu"))
        before = [p.detach().clone() for p in model.parameters()]
        model.set_input(batch)
        losses = model.optimize_step()
        assert set(losses) == set(model.loss_names) and all(np.isfinite(v) for v in losses.values())
        assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()) if a.dim() > 1)


def test_cyclegan_losses_finite_and_distance_weight_used(tmp_path):
    imgs, masks = _data(tmp_path, 2)
    from cellsynth.generative.domains import prepare_domains
    d = prepare_domains(imgs, masks, cycle_weight={"saturation": 5.0, "minimum": 0.1}, encoding="boundaries")
    batch = d.sampler([16, 16], 2)(np.random.default_rng(0))
    assert set(batch) == {"image", "mask", "mask_weight"} and batch["mask_weight"].min() == pytest.approx(0.1)
    torch.manual_seed(0)
    m = CycleGAN(spatial_dims=2, channels=4, n_blocks=1, d_channels=4, d_layers=2)
    m.setup_training(_cyc_cfg(2), torch.Generator().manual_seed(0), torch.device("cpu"))
    m.set_input({k: torch.from_numpy(v) for k, v in batch.items()})
    losses = m.optimize_step()
    assert set(losses) == set(m.loss_names) and all(np.isfinite(v) for v in losses.values())


@pytest.mark.parametrize("nd", [2, 3])
def test_cgan_trains_and_renders_with_alpha(tmp_path, nd):
    imgs, masks = _data(tmp_path, nd)
    out = train_cgan(imgs, tmp_path / "m", _cgan_cfg(nd), masks=masks, progress=False, device="cpu")
    m = load_translator(out)
    assert isinstance(m, ConditionalGAN) and m.meta["alpha"] == 100.0
    lab = tifffile.imread(masks / "v1.tif")
    a = render_labels(m, lab)
    b = render_labels(m, lab, alpha=10.0)
    assert a.shape == lab.shape and np.isfinite(a).all() and not np.array_equal(a, b)  # α acts
    t = render_labels(m, lab, tile=[16] * nd, overlap=[2] * nd, crop=[2] * nd)  # several tiles, blended
    assert t.shape == lab.shape and np.isfinite(t).all()
    # the coarse-grid specimen + positional map (large volumes) changes the image little
    c = render_labels(m, lab, factor=2)
    assert np.abs(c - a).mean() < 0.02 and not np.array_equal(c, a)


@pytest.mark.parametrize("nd", [2, 3])
def test_close_specimen_on_a_coarser_grid(nd):
    from cellsynth.generative.domains import close_specimen
    shape = (37,) * nd
    mask = np.zeros(shape, bool)
    mask[(slice(5, 12),) * nd] = True
    mask[(slice(17, 30),) * nd] = True      # two blocks 5 px apart: closing by 4 px bridges them
    exact = close_specimen(mask, 4.0)
    coarse = close_specimen(mask, 4.0, factor=2)
    assert coarse.shape == shape and (coarse >= mask).all()
    assert (exact != coarse).mean() < 0.05   # differs only at the surface
    assert not close_specimen(np.zeros(shape, bool), 4.0, factor=2).any()


@pytest.mark.parametrize("kind", ["cgan", "cyclegan"])
def test_resume_is_bit_identical(tmp_path, kind, monkeypatch):
    imgs, masks = _data(tmp_path, 2)
    train, cfg = (train_cgan, _cgan_cfg(2, steps=4)) if kind == "cgan" else \
        (train_cyclegan, _cyc_cfg(2, steps=4, ada=True, ada_interval=1))
    straight = train(imgs, tmp_path / "a", cfg, masks=masks, progress=False, device="cpu")
    original = Domains.sampler

    def interrupted(self, patch, batch_size):  # the 3rd batch is never drawn: killed after step 2's checkpoint
        inner, calls = original(self, patch, batch_size), []

        def sample(rng):
            calls.append(1)
            if len(calls) == 3:
                raise KeyboardInterrupt
            return inner(rng)
        return sample

    monkeypatch.setattr(Domains, "sampler", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(imgs, tmp_path / "b", cfg, masks=masks, progress=False, device="cpu")
    monkeypatch.setattr(Domains, "sampler", original)
    with pytest.raises(InputError, match="already holds a model"):
        train(imgs, tmp_path / "b", cfg, masks=masks, progress=False, device="cpu")
    resumed = train(imgs, tmp_path / "b", None, masks=masks, progress=False, device="cpu", resume=True)
    a, b = load_translator(straight), load_translator(resumed)
    assert b.meta["training"]["steps"] == 4
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb), ka
    sa, ta = A.read_checkpoint(straight)
    sb, tb = A.read_checkpoint(resumed)
    assert sa["numpy_rng"] == sb["numpy_rng"] and sa["ada"] == sb["ada"]
    assert all(torch.equal(ta[k], tb[k]) for k in ta)


def test_lr_decays_linearly():
    assert A._lr_factor(5, 10, 0.5) == 1.0
    assert A._lr_factor(6, 10, 0.5) == pytest.approx(1 - 1 / 6)
    assert A._lr_factor(10, 10, 0.5) == pytest.approx(1 / 6)
    assert A._lr_factor(1, 10, 0.0) == pytest.approx(1 - 1 / 11)


# --------------------------------------------------------------------------- bad inputs
def test_bad_inputs_refused_before_writing(tmp_path):
    imgs, masks = _data(tmp_path, 2)
    bad = tmp_path / "badmasks"
    bad.mkdir()
    tifffile.imwrite(bad / "v0.tif", np.ones((20, 20), np.uint16))  # same name as an image, other shape
    with pytest.raises(InputError, match="shape"):
        train_cgan(imgs, tmp_path / "o1", _cgan_cfg(2), masks=bad, progress=False)
    assert not (tmp_path / "o1").exists()
    m3 = tmp_path / "m3"
    m3.mkdir()
    tifffile.imwrite(m3 / "x.tif", np.ones((8, 16, 16), np.uint16))
    with pytest.raises(InputError, match="3D but the training images are 2D"):
        train_cyclegan(imgs, tmp_path / "o2", _cyc_cfg(2), masks=m3, progress=False)
    with pytest.raises(ConfigError, match="exactly one"):
        train_cgan(imgs, tmp_path / "o3", _cgan_cfg(2), progress=False)
    with pytest.raises(InputError, match="no checkpoint"):
        train_cgan(imgs, tmp_path / "o4", _cgan_cfg(2), masks=masks, resume=True, progress=False)
    for o in ("o2", "o3", "o4"):
        assert not (tmp_path / o).exists()
    # a 2D model asked for 3D; a folder of another kind
    out = train_cgan(imgs, tmp_path / "m2d", _cgan_cfg(2, steps=1), masks=masks, progress=False, device="cpu")
    m = load_translator(out)
    with pytest.raises(InputError, match="3D .* but the model is 2D"):
        render_labels(m, np.ones((8, 16, 16), np.uint16))
    with pytest.raises(InputError, match="'cellsynth-cgan' folder, not 'cellsynth-cyclegan'"):
        load_translator(out, kinds=("cyclegan",))
    with pytest.raises(InputError, match="'cellsynth-cgan' checkpoint, not"):
        train_cyclegan(imgs, out, _cyc_cfg(2), masks=masks, resume=True, progress=False)
    from cellsynth.config import RenderConfig
    from cellsynth.render import make_renderer
    with pytest.raises(InputError, match="not 'cellsynth-cyclegan'"):
        make_renderer("cyclegan", RenderConfig(cyclegan={"model": str(out)}))


# --------------------------------------------------------------------------- command line
def test_cli_train_and_generate(tmp_path, capsys):
    from cellsynth.cli import main
    imgs, masks = _data(tmp_path, 3)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("channels: [4, 8]\nd_channels: 4\nd_layers: 2\npatch_size: [16, 16, 16]\ncheckpoint_every: 1\n")
    rc = main(["train", "cgan", "--images", str(imgs), "--masks", str(masks), "--out", str(tmp_path / "m"),
               "--config", str(cfg), "--steps", "1", "--device", "cpu", "--no-progress"])
    assert rc == 0 and "model written" in capsys.readouterr().out
    rc = main(["generate", "--labels", str(masks), "--renderer", "cgan", "--model", str(tmp_path / "m"),
               "--set", "render.cgan.alpha=10", "--out", str(tmp_path / "ds"), "--no-progress"])
    assert rc == 0
    img = tifffile.imread(tmp_path / "ds" / "images" / "v0.tif")
    assert img.shape == SHAPES[3] and img.dtype == np.float32
    rc = main(["generate", "--preset", "nuclei3d-celegans", "--renderer", "cgan", "--model", str(tmp_path / "m"),
               "--n", "1", "--set", "scene.shape=[16,40,40]", "--set", "scene.placement.n_points=[2,4]",
               "--set", "scene.nuclei.radius=[4,6]", "--set", "scene.placement.min_distance=8",
               "--out", str(tmp_path / "ds2"), "--no-progress"])
    assert rc == 0 and len(list((tmp_path / "ds2" / "images").glob("*.tif"))) == 1
    # a cgan folder given to the cyclegan renderer / a bad --model use: one line, nothing written
    rc = main(["generate", "--labels", str(masks), "--renderer", "cyclegan", "--model", str(tmp_path / "m"),
               "--out", str(tmp_path / "bad"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "cellsynth-cgan" in err
    assert not (tmp_path / "bad").exists()
    rc = main(["train", "cyclegan", "--images", str(imgs), "--masks", str(masks), "--out", str(tmp_path / "m"),
               "--steps", "1"])
    assert rc == 2 and "already holds a model" in capsys.readouterr().err


# --------------------------------------------------------------------------- self-supervised segmenter
def test_cyclegan_segmenter_cli(tmp_path, capsys):
    from cellsynth.cli import main
    imgs, _ = _data(tmp_path, 3)
    cfg = tmp_path / "s.yaml"
    cfg.write_text("channels: 4\nn_blocks: 1\nd_channels: 4\nd_layers: 2\nn_scenes: 2\n"
                   "scene_overrides: ['scene.shape=[16,48,48]', 'scene.organelles.n_pairs=[2,3]']\n")
    rc = main(["segment", "train", "--method", "cyclegan", "--images", str(imgs), "--preset", "nuclei-golgi3d",
               "--out", str(tmp_path / "seg"), "--config", str(cfg), "--steps", "1", "--patch", "16", "16", "16",
               "--device", "cpu", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    m = load_translator(tmp_path / "seg")
    assert m.meta["class_names"] == ["golgi", "nucleus"] and m.config["class_weights"] == [3.5, 1.0]
    assert m.meta["training_data"]["masks"]["preset"] == "nuclei-golgi3d"
    rc = main(["segment", "predict", "--model", str(tmp_path / "seg"), "--images", str(imgs),
               "--out", str(tmp_path / "pred"), "--device", "cpu", "--no-progress"])
    assert rc == 0
    lab = tifffile.imread(tmp_path / "pred" / "v0.tif")
    cls = np.stack([tifffile.imread(tmp_path / "pred" / c / "v0.tif") for c in ("golgi", "nucleus")])
    assert lab.shape == SHAPES[3] and cls.shape == (2, *SHAPES[3]) and set(np.unique(cls)) <= {0, 1}
    assert (lab > 0).sum() == (cls.max(0) > 0).sum()
    rc = main(["segment", "train", "--method", "cyclegan", "--images", str(imgs), "--out", str(tmp_path / "x")])
    assert rc == 2 and "--preset" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_cli_cyclegan_2d_train_and_generate(tmp_path, capsys):
    from cellsynth.cli import main
    imgs, masks = _data(tmp_path, 2)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("channels: 4\nn_blocks: 1\nd_channels: 4\nd_layers: 2\npatch_size: [16, 16]\n")
    rc = main(["train", "cyclegan", "--images", str(imgs), "--masks", str(masks), "--out", str(tmp_path / "m"),
               "--config", str(cfg), "--steps", "1", "--device", "cpu", "--no-progress"])
    assert rc == 0
    rc = main(["generate", "--labels", str(masks), "--renderer", "cyclegan", "--model", str(tmp_path / "m"),
               "--set", "render.cyclegan.tile=[16,16]", "--set", "render.cyclegan.crop=[2,2]",
               "--set", "render.cyclegan.overlap=[2,2]", "--out", str(tmp_path / "ds"), "--no-progress"])
    assert rc == 0
    img = tifffile.imread(tmp_path / "ds" / "images" / "v1.tif")
    assert img.shape == SHAPES[2] and np.isfinite(img).all() and 0 <= img.min() <= img.max() <= 1
    rc = main(["generate", "--preset", "nuclei3d-celegans", "--renderer", "cyclegan", "--model",
               str(tmp_path / "m"), "--n", "1", "--out", str(tmp_path / "bad"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "scenes are 3D but the cyclegan renderer's model" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "bad").exists()


def test_anisotropic_3d_patches_and_strides(tmp_path):
    imgs, masks = _data(tmp_path, 3)
    with pytest.raises(ConfigError, match="too small for the discriminator"):
        train_cgan(imgs, tmp_path / "m0", _cgan_cfg(3, patch_size=[8, 16, 24], strides=[[1, 2, 2]]), masks=masks,
                   progress=False)
    assert not (tmp_path / "m0").exists()
    cfg = _cgan_cfg(3, steps=1, patch_size=[16, 16, 24], strides=[[1, 2, 2]])
    m = load_translator(train_cgan(imgs, tmp_path / "m", cfg, masks=masks, progress=False, device="cpu"))
    assert m.divisor == [1, 2, 2] and m.meta["patch_size"] == [16, 16, 24]
    lab = tifffile.imread(masks / "v0.tif")
    out = render_labels(m, lab, tile=[8, 16, 24], overlap=[1, 2, 2], crop=[1, 2, 2])
    assert out.shape == lab.shape and np.isfinite(out).all()
    with pytest.raises(ConfigError, match="multiple of the cGAN divisor"):
        train_cgan(imgs, tmp_path / "m2", _cgan_cfg(3, patch_size=[16, 15, 16], strides=[[1, 2, 2]]), masks=masks,
                   progress=False)
