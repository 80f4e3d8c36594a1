"""Image + mask StyleGAN2 training (generative/stylegan.py) on the shared adversarial loop: R1 against
autograd, DiffAugment, a few finite steps with every augmentation, save/load/resume, generation
through the CLI, bad inputs refused in one line. Tiny: 16², 8 channels, CPU, seeded."""
from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
import torch

from cellsynth.cli import main as cli_main
from cellsynth.config import validate
from cellsynth.errors import ConfigError, InputError
from cellsynth.generative.diffaugment import diff_augment
from cellsynth.generative.stylegan import (
    StyleGAN,
    StyleGANTrainConfig,
    load_stylegan,
    r1_penalty,
    sample_pairs,
    train_stylegan,
)

TINY = dict(resolution=16, batch_size=4, channel_base=64, channel_max=8, z_dim=8, w_dim=8, r1_interval=2,
            checkpoint_every=2, threads=1, steps=4)


@pytest.fixture
def pairs(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    yy, xx = np.mgrid[:40, :48]
    for i in range(4):
        lab = np.zeros((40, 48), np.uint16)
        for k in range(1, 6):
            cy, cx = rng.uniform(5, 35), rng.uniform(5, 43)
            lab[((yy - cy) ** 2 + (xx - cx) ** 2 < 25) & (lab == 0)] = k
        img = (lab > 0) * 150 + rng.normal(20, 5, lab.shape)
        tifffile.imwrite(tmp_path / "images" / f"im{i}.tif", img.astype(np.uint8))
        tifffile.imwrite(tmp_path / "masks" / f"im{i}.tif", lab)
    return tmp_path


def test_r1_matches_autograd_per_sample():
    torch.manual_seed(0)
    a = torch.randn(1, 2, 3, 3)
    x = torch.randn(4, 2, 3, 3, requires_grad=True)
    d = (a * x ** 2).sum(dim=(1, 2, 3)) + (x[:, 0] * x[:, 1]).sum(dim=(1, 2))
    # analytic gradient of each sample's score
    g = 2 * a * x.detach()
    g[:, 0] += x.detach()[:, 1]
    g[:, 1] += x.detach()[:, 0]
    expected = g.pow(2).sum(dim=(1, 2, 3)).mean()
    assert torch.allclose(r1_penalty(d, x), expected, rtol=1e-5)
    # and against autograd's Jacobian on the real discriminator, one sample at a time
    model = StyleGAN(resolution=8, channel_base=32, channel_max=4, z_dim=4, w_dim=4, mbstd_group=1)
    xs = torch.randn(3, 2, 8, 8, requires_grad=True)
    pen = r1_penalty(model.D(xs), xs)
    per = [torch.autograd.functional.jacobian(lambda v: model.D(v[None]).sum(), xs[i].detach()).pow(2).sum()
           for i in range(3)]
    assert torch.allclose(pen, torch.stack(per).mean(), rtol=1e-4)
    pen.backward()  # create_graph: the penalty itself trains D
    assert model.D.from_input.weight.grad is not None


def test_diffaugment_keeps_mask_levels_and_geometry_consistent():
    g = torch.Generator().manual_seed(0)
    img = torch.rand(3, 1, 16, 16) * 2 - 1
    mask = torch.where(img > 0, 1.0, -1.0)        # mask aligned with the image
    x = torch.cat([img, mask], 1).requires_grad_(True)
    y = diff_augment(x, ["color"], g)
    assert torch.equal(y[:, 1], mask[:, 0]) and not torch.allclose(y[:, 0], img[:, 0])
    y = diff_augment(x, ["translation", "cutout"], torch.Generator().manual_seed(1))
    # translation and cutout move / blank image and mask together: the mask still marks img > 0
    # wherever the image was not blanked or padded (-1 fill)
    moved = y[:, 0] > -1
    assert torch.equal(y[:, 1][moved] > 0, y[:, 0][moved] > 0)
    assert set(torch.unique(y[:, 1].detach()).tolist()) <= {-1.0, 1.0}
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    a = diff_augment(x.detach(), ["color", "translation", "cutout"], torch.Generator().manual_seed(5))
    b = diff_augment(x.detach(), ["color", "translation", "cutout"], torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="policy"):
        diff_augment(x, ["rotate"], g)


@pytest.mark.parametrize("aug", [dict(), dict(diffaugment=["color", "translation", "cutout"]), dict(ada=True),
                                 dict(apa=True, ada_interval=1, pl_weight=1.0, pl_interval=2)])
def test_few_steps_finite_with_each_augmentation(pairs, tmp_path, aug):
    out = tmp_path / "m"
    train_stylegan(pairs / "images", pairs / "masks", out, StyleGANTrainConfig(**TINY, **aug), device="cpu",
                   progress=False)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["format"] == "cellsynth-stylegan" and cfg["training"]["steps"] == 4
    assert cfg["max_labels"] == 4 and cfg["area_range"][0] <= cfg["area_range"][1]
    m = load_stylegan(out)
    assert all(torch.isfinite(p).all() for p in m.parameters())
    assert m.G.w_avg.abs().sum() > 0       # the mean w is tracked for truncation
    if aug.get("apa"):
        assert 0 <= m.apa_p < 1
    pairs_out = list(sample_pairs(m, 2, seed=0, truncation=0.5))
    for image, labels in pairs_out:
        assert image.shape == labels.shape == (16, 16) and 0 <= image.min() and image.max() <= 1
        assert labels.dtype == np.uint16


def test_resume_is_identical_to_one_run(pairs, tmp_path):
    cfg = StyleGANTrainConfig(**{**TINY, "steps": 4}, diffaugment=["translation"], apa=True, ada_interval=1)
    train_stylegan(pairs / "images", pairs / "masks", tmp_path / "a", cfg, device="cpu", progress=False)
    train_stylegan(pairs / "images", pairs / "masks", tmp_path / "b", cfg, steps=2, device="cpu", progress=False)
    with pytest.raises(InputError, match="already holds a model"):
        train_stylegan(pairs / "images", pairs / "masks", tmp_path / "b", cfg, device="cpu", progress=False)
    train_stylegan(pairs / "images", pairs / "masks", tmp_path / "b", None, steps=4, resume=True, device="cpu",
                   progress=False)
    a, b = load_stylegan(tmp_path / "a"), load_stylegan(tmp_path / "b")
    for (k, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(va, vb), k
    assert np.array_equal(a.generate(2, seed=3), b.generate(2, seed=3))


def test_class_conditioning(pairs, tmp_path):
    cls = tmp_path / "classes.csv"
    cls.write_text("im0.tif,A\nim1,B\nim2,A\nim3,B\n")
    train_stylegan(pairs / "images", pairs / "masks", tmp_path / "m", StyleGANTrainConfig(**{**TINY, "steps": 2}),
                   classes=cls, device="cpu", progress=False)
    m = load_stylegan(tmp_path / "m")
    assert m.n_classes == 2 and m.meta["class_names"] == ["A", "B"]
    assert not np.allclose(m.generate(1, seed=0, classes=[0]), m.generate(1, seed=0, classes=[1]))
    cls.write_text("im0,A\n")
    with pytest.raises(InputError, match="no class for image 'im1'"):
        train_stylegan(pairs / "images", pairs / "masks", tmp_path / "m2", StyleGANTrainConfig(**TINY),
                       classes=cls, device="cpu", progress=False)


def test_cli_train_generate_resume(pairs, tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("\n".join(f"{k}: {v}" for k, v in TINY.items() if k != "steps") + "\n")
    model, data = tmp_path / "model", tmp_path / "gen"
    assert cli_main(["train", "stylegan", "--images", str(pairs / "images"), "--masks", str(pairs / "masks"),
                     "--out", str(model), "--config", str(cfg), "--steps", "2", "--device", "cpu",
                     "--no-progress"]) == 0
    args = ["generate", "--renderer", "stylegan", "--model", str(model), "--n", "3", "--truncation", "0.7",
            "--seed", "1", "--out", str(data), "--no-progress"]
    assert cli_main(args) == 0
    first = tifffile.imread(data / "images" / "sample_00002.tif")
    man = json.loads((data / "manifest.json").read_text())
    assert man["complete"] and man["n"] == 3 and man["settings"]["truncation"] == 0.7
    (data / "images" / "sample_00002.tif").unlink()          # interrupted: resume redoes only that one
    assert cli_main(args) == 0
    assert np.array_equal(tifffile.imread(data / "images" / "sample_00002.tif"), first)
    labels = tifffile.imread(data / "masks" / "sample_00000.tif")
    assert labels.shape == first.shape == (16, 16)
    capsys.readouterr()
    assert cli_main(args[:8] + ["0.5", "--seed", "1", "--out", str(data), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "other settings" in err and len(err.splitlines()) == 1


def cli_error(args, capsys) -> str:
    capsys.readouterr()
    assert cli_main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    return err


def test_bad_inputs_one_line(pairs, tmp_path, capsys):
    cfg = StyleGANTrainConfig(**TINY)
    (pairs / "masks" / "im3.tif").unlink()
    with pytest.raises(InputError, match="'im3.tif' has no mask"):
        train_stylegan(pairs / "images", pairs / "masks", tmp_path / "m", cfg, device="cpu", progress=False)
    tifffile.imwrite(pairs / "masks" / "im3.tif", np.zeros((10, 10), np.uint16))
    with pytest.raises(InputError, match="shape"):
        train_stylegan(pairs / "images", pairs / "masks", tmp_path / "m", cfg, device="cpu", progress=False)
    tifffile.imwrite(pairs / "images" / "im3.tif", np.zeros((4, 10, 10), np.uint8), photometric="minisblack")
    with pytest.raises(InputError, match="3D"):
        train_stylegan(pairs / "images", pairs / "masks", tmp_path / "m", cfg, device="cpu", progress=False)
    assert not (tmp_path / "m").exists()                     # nothing written before the inputs check out
    with pytest.raises(InputError, match="does not exist"):
        train_stylegan(tmp_path / "nope", pairs / "masks", tmp_path / "m", cfg, device="cpu", progress=False)
    with pytest.raises(ConfigError, match="resolution"):
        validate(StyleGANTrainConfig, {"resolution": 4}, prefix="")
    with pytest.raises(ConfigError, match="power of two"):
        train_stylegan(pairs / "images", pairs / "masks", tmp_path / "m", StyleGANTrainConfig(resolution=24))
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"format": "cellsynth-diffusion", "format_version": 1}))
    (other / "weights.safetensors").write_bytes(b"")
    with pytest.raises(InputError, match="not 'cellsynth-stylegan'"):
        load_stylegan(other)
    with pytest.raises(InputError, match="not a folder"):
        load_stylegan(tmp_path / "missing")
    assert "needs --model" in cli_error(["generate", "--renderer", "stylegan", "--n", "1", "--out",
                                         str(tmp_path / "g")], capsys)
    assert "--preset does not apply" in cli_error(["generate", "--renderer", "stylegan", "--model", str(other),
                                                   "--preset", "nuclei2d-dsb", "--out", str(tmp_path / "g")], capsys)
    assert "not 'cellsynth-stylegan'" in cli_error(["generate", "--renderer", "stylegan", "--model", str(other),
                                                    "--out", str(tmp_path / "g")], capsys)
    assert "truncation" in cli_error(["generate", "--preset", "nuclei2d-dsb", "--truncation", "0.5", "--out",
                                      str(tmp_path / "g")], capsys)
    assert "one process" in cli_error(["generate", "--renderer", "stylegan", "--model", str(other), "--scheduler",
                                       "local:2", "--out", str(tmp_path / "g")], capsys)
    assert "cannot be created" in cli_error(["generate", "--renderer", "stylegan", "--model", str(other),
                                             "--out", "/proc/cellsynth-x"], capsys)
    with pytest.raises(InputError, match="cannot be created"):
        train_stylegan(pairs / "images", pairs / "masks", "/proc/cellsynth-x", cfg, device="cpu", progress=False)
    assert not (tmp_path / "g").exists()


def test_overlapping_dataset_layers_written_and_used(tmp_path):
    """generate writes layers/ for overlapping presets; StyleGAN training encodes whole objects from them."""
    from cellsynth.generative.stylegan import PairData
    from cellsynth.io import read_labels
    out = tmp_path / "ov"
    assert cli_main(["generate", "--preset", "cells2d-overlapping", "--renderer", "sketch", "--n", "2", "--seed", "0",
                     "--set", "scene.shape=[48,48]", "--set", "scene.placement.n_points=[8,8]",
                     "--set", "scene.placement.min_distance=6", "--out", str(out), "--no-progress"]) == 0
    lab, layers = read_labels(out / "masks" / "sample_00000.tif"), read_labels(out / "layers" / "sample_00000.tif")
    assert layers.ndim == 3 and layers.shape[1:] == lab.shape and len(layers) >= 2
    assert np.array_equal(np.unique(layers), np.unique(lab)) and ((layers > 0).sum(0) >= 2).any()
    data = PairData(out / "images", out / "masks", StyleGANTrainConfig(**{**TINY, "resolution": 32}))
    assert all(x is not None for x in data.layers)
    img, objects = data.crop(0, np.random.default_rng(0))
    assert objects.shape == (len(data.layers[0]), 32, 32) and img.shape == (32, 32)
    gray = data.encode(objects, np.random.default_rng(0))
    levels = np.array([0, 64, 128, 191, 255], np.float32) / np.float32(127.5) - 1
    assert gray.shape == (32, 32) and np.isin(np.unique(gray), levels).all()
