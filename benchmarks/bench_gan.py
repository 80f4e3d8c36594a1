"""Mask→image GANs: realism on a held-back real volume, generation speed vs diffusion, training throughput.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_gan.py [--model DIR] [--json F] [--skip realism speed train]
        [--set nuclei3d-gonuclear|membrane3d-plant] [--steps N] [--patch Z Y X] [--plain-layers]

Realism: the shipped 3D cGAN (or --model) renders the REAL mask of the held-back
``nuclei3d-gonuclear/all`` volume ``arabidopsis_1136`` (never seen in training); the physics renderer
(preset nuclei3d-celegans' physics settings) renders the same mask. Each output and the real image are
percentile-normalised (1, 99.8 → [0, 1], clipped) and compared with NRMSE, SSIM (data range 1) and ZNCC
(``cellsynth.metrics.image``), plus the checkerboard index of each output (period-2 artefacts).
α of the positional map is varied (Eschweiler et al. 2021's quality knob).
Speed: a 64×256×256 volume from random balls, cGAN (inputs: mask encoding, specimen closing and positional
map on the renderer's coarse grid, and their difference from exact inputs; one forward pass, the default
single-pass tiling)
vs the diffusion renderer's reverse process at K = 25 with an untrained 3D diffusion U-Net of the same
channels (speed does not depend on weights; a warm step timed — the second in one retained-heap block, as
in the reverse process — × 25: the per-step cost is constant). Both keep freed memory in the heap
(``cellsynth.allocator.retained_heap``) as the renderers do.
Training: patches/s of the cGAN loop at the shipped model's settings and at the paper's 64×128×128 patch.
``--plain-layers``: every U-Net (the cGAN's and the diffusion model's) on its plain layers instead of its
CPU inference path (``cellsynth.nn.unet.inference_path``), to measure what that path changes.

``--set membrane3d-plant`` (realism only): a small 3D cGAN (U-Net 8/16/32, PatchGAN 8, cell walls as the
mask encoding, ``--steps`` × 2 patches of ``--patch``, one thread) is trained on one volume of
``membrane3d-plant/all`` and renders the masks of the other, held back (``--held-back``, never seen);
the physics renderer (preset membrane3d-meristem's physics settings, walls of the mask's cells) renders
the same masks; scored as above against the real ``ovule`` image.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchutil import emit
from cellsynth.config import load_config
from cellsynth.generative import diffusion as D
from cellsynth.generative.translate import load_translator, render_labels
from cellsynth.intensity import normalize_percentile
from cellsynth.io import read_image, read_labels
from cellsynth.metrics.image import checkerboard_index, nrmse, ssim, zncc
from cellsynth.nn.unet import UNet
from cellsynth.render import make_renderer
from cellsynth.render.gan import default_model_path
from cellsynth.scene import Scene

DATA = Path("/work/shared/data/nuclei3d-gonuclear/all")
PLANT = Path("/work/shared/data/membrane3d-plant/all")
HELD_BACK = "arabidopsis_1136.tif"
# the volumes the shipped model was trained on; 1137, 1139 and 1170 are left out everywhere: their images do
# not correlate with their masks (ZNCC 0.006-0.019, noise-like), unlike 1135/1136/plantseg (0.39-0.71)
TRAIN = ("arabidopsis_1135.tif", "arabidopsis_plantseg.tif")


def _unit(a):
    return normalize_percentile(a, 1.0, 99.8, clip=True)


def _scores(real, fake):
    r, f = _unit(real), _unit(fake)
    return {"nrmse": round(nrmse(r, f), 4), "ssim": round(ssim(r, f, data_range=1.0), 4), "zncc": round(zncc(r, f), 4),
            "checkerboard": round(checkerboard_index(f), 2)}


def realism(model_dir: Path) -> dict:
    real = read_image(DATA / "images" / HELD_BACK)
    lab = read_labels(DATA / "masks" / HELD_BACK)
    model = load_translator(model_dir)
    out = {"real image": {"checkerboard": round(checkerboard_index(_unit(real)), 2)}}
    for alpha in (10.0, 100.0, 1000.0):
        t = time.perf_counter()
        img = render_labels(model, lab, alpha=alpha)
        out[f"cgan alpha={alpha:g}"] = {**_scores(real, img), "seconds": round(time.perf_counter() - t, 1)}
    cfg = load_config("nuclei3d-celegans")
    phys = make_renderer("physics", cfg.render)
    scene = Scene(labels=lab, foreground=np.ones(lab.shape, bool), spacing=(1.0, 1.0, 1.0),
                  classes={int(k): "nucleus" for k in np.unique(lab) if k})
    out["physics (nuclei3d-celegans settings)"] = _scores(real, phys.render(scene, np.random.default_rng(0)))
    out["mask itself (binary)"] = _scores(real, (lab > 0).astype(np.float32))
    return out


def realism_membranes(steps: int, patch: list[int], held_back: str = "ovule") -> dict:
    """Train on the other plant volume, render the held-back volume's masks (cell walls), score vs its image."""
    from cellsynth.generative.cgan import CGANTrainConfig, train_cgan
    train_on = {"ovule": "plant_patch", "plant_patch": "ovule"}[held_back]
    root = Path(tempfile.mkdtemp())
    for sub in ("images", "masks"):
        (root / sub).mkdir()
        (root / sub / f"{train_on}.tif").symlink_to(PLANT / sub / f"{train_on}.tif")
    cfg = CGANTrainConfig(channels=[8, 16, 32], d_channels=8, patch_size=patch, batch_size=2, steps=steps,
                          mask_encoding="boundaries", checkpoint_every=10_000, threads=1, seed=0)
    t, c = time.perf_counter(), time.process_time()
    model_dir = train_cgan(root / "images", root / "cgan", cfg, masks=root / "masks", progress=False, device="cpu")
    train = {"on": train_on, "steps": steps, "patch": patch, "batch": 2,
             "wall_s": round(time.perf_counter() - t, 1), "cpu_s": round(time.process_time() - c, 1)}
    real = read_image(PLANT / "images" / f"{held_back}.tif")
    lab = read_labels(PLANT / "masks" / f"{held_back}.tif")
    model = load_translator(model_dir)
    out = {"training": train, "real image": {"checkerboard": round(checkerboard_index(_unit(real)), 2)}}
    out["cgan (alpha = 100)"] = _scores(real, render_labels(model, lab))
    cfg3 = load_config("membrane3d-meristem")
    phys = make_renderer("physics", cfg3.render)
    scene = Scene(labels=lab, foreground=np.ones(lab.shape, bool), spacing=tuple(cfg3.scene.spacing),
                  classes={int(k): "cell" for k in np.unique(lab) if k})
    out["physics (membrane3d-meristem settings)"] = _scores(real, phys.render(scene, np.random.default_rng(0)))
    from scipy import ndimage as ndi

    from cellsynth.simulate.encode import boundaries
    walls = boundaries(lab).astype(np.float32)
    out["the wall mask itself"] = _scores(real, walls)
    # how far the image follows its own annotation: the ceiling of any renderer of these masks
    out["the wall mask blurred (sigma 1 px)"] = _scores(real, ndi.gaussian_filter(walls, 1.0))
    return out


def plain_layers(x) -> bool:
    """Stands in for ``cellsynth.nn.unet.inference_path``: every U-Net on its plain layers."""
    return False


def balls(shape, n, rng):
    lab = np.zeros(shape, np.uint16)
    grids = np.ogrid[tuple(slice(0, s) for s in shape)]
    for i in range(n):
        c = [rng.uniform(0, s) for s in shape]
        r = rng.uniform(5, 9)
        lab[sum((g - ci) ** 2 for g, ci in zip(grids, c)) < r * r] = i + 1
    return lab


def speed(model_dir: Path) -> dict:
    shape = (64, 256, 256)
    lab = balls(shape, 150, np.random.default_rng(0))
    model = load_translator(model_dir)
    t, c = time.perf_counter(), time.process_time()
    render_labels(model, lab)
    gan = {"wall_s": round(time.perf_counter() - t, 1), "cpu_s": round(time.process_time() - c, 1)}
    # a simulated scene brings its specimen (Scene.foreground): no closing of the objects needed
    fg = np.ones(shape, bool)
    fg[:, :8] = False
    t, c = time.perf_counter(), time.process_time()
    render_labels(model, lab, foreground=fg)
    gan["with_scene_specimen_cpu_s"] = round(time.process_time() - c, 1)
    # of which: the network's inputs (mask encoding, specimen, positional map), timed alone, on the
    # renderer's coarse grid (positional_factor) and exactly (factor 1, as in training)
    from cellsynth.generative.domains import encode_mask, specimen_from_labels
    from cellsynth.generative.translate import positional_factor
    from cellsynth.simulate.encode import positional_map
    m = model.meta
    f = positional_factor(lab.size, m["alpha"], m["beta"], m["specimen_radius"])
    for name, k in (("inputs_cpu_s", f), ("inputs_exact_cpu_s", 1)):
        c = time.process_time()
        encode_mask(lab, m["mask_encoding"])
        positional_map(specimen_from_labels(lab, m["specimen_radius"], k), m["alpha"], m["beta"], factor=k)
        gan[name] = round(time.process_time() - c, 2)
    gan["positional_factor"] = f
    gan["network_cpu_s"] = round(gan["cpu_s"] - gan["inputs_cpu_s"], 1)
    # what the coarse grid changes in the image: vs the exact inputs
    exact = render_labels(model, lab, factor=1)
    fast = render_labels(model, lab)
    gan["vs_exact_inputs"] = {"max_abs": round(float(np.abs(fast - exact).max()), 4),
                              "mean_abs": round(float(np.abs(fast - exact).mean()), 5),
                              "nrmse": round(nrmse(exact, fast), 4)}
    import cellsynth.nn.unet as unet
    if unet.inference_path is not plain_layers:  # the same volume on the U-Net's plain layers
        path, unet.inference_path = unet.inference_path, plain_layers
        try:
            plain = render_labels(model, lab)
        finally:
            unet.inference_path = path
        gan["vs_plain_layers"] = {"max_abs": float(np.abs(fast - plain).max()),
                                  "mean_abs": float(np.abs(fast - plain).mean())}
    # diffusion: same U-Net channels with a time embedding, the renderer's reverse process, 1 step timed
    ch = list(model.config["channels"])
    args = {"spatial_dims": 3, "in_channels": 1, "out_channels": 1, "channels": ch, "blocks_per_level": 1,
            "time_embedding": True, "dropout": 0.0, "strides": None}
    torch.manual_seed(0)
    net = UNet(**args).eval()
    sched = D.Schedule()
    x = torch.randn(1, 1, *shape)
    from cellsynth.allocator import retained_heap
    with retained_heap():  # as the reverse process runs its steps: the second step is the warm per-step cost
        for _ in range(2):
            t, c = time.perf_counter(), time.process_time()
            D.reverse_process(lambda a, k: net(a, k), x, 400, 1, torch.Generator().manual_seed(0),
                              schedule=sched, tile=list(shape))
            step = {"wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c}
    diff = {k: round(v * 25, 1) for k, v in step.items()}
    return {"volume": list(shape), "unet_channels": ch, "cgan": gan, "diffusion_K25": diff,
            "diffusion_step": {k: round(v, 1) for k, v in step.items()},
            "speedup_cpu": round(diff["cpu_s"] / max(gan["cpu_s"], 1e-9), 1),
            "speedup_network_cpu": round(diff["cpu_s"] / max(gan["network_cpu_s"], 1e-9), 1),
            "speedup_scene_cpu": round(diff["cpu_s"] / max(gan["with_scene_specimen_cpu_s"], 1e-9), 1)}


def train_throughput() -> dict:
    from cellsynth.generative.cgan import CGANTrainConfig, train_cgan
    imgs = Path(tempfile.mkdtemp())
    (imgs / "images").mkdir()
    (imgs / "masks").mkdir()
    for name in TRAIN:
        (imgs / "images" / name).symlink_to(DATA / "images" / name)
        (imgs / "masks" / name).symlink_to(DATA / "masks" / name)
    out = {}
    for name, patch, batch, steps in (("shipped settings", [32, 48, 48], 2, 6), ("paper patch", [64, 128, 128], 1, 2)):
        cfg = CGANTrainConfig(channels=[8, 16, 32], d_channels=8, patch_size=patch, batch_size=batch, steps=steps,
                              checkpoint_every=10_000, threads=1)
        o = Path(tempfile.mkdtemp()) / "m"
        t, c = time.perf_counter(), time.process_time()
        train_cgan(imgs / "images", o, cfg, masks=imgs / "masks", progress=False, device="cpu")
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        loop = json.loads((o / "config.json").read_text())["training"]["time_s"]  # the loop alone, wall
        out[name] = {"patch": patch, "batch": batch, "steps": steps,
                     "patches_per_s_loop_wall": round(steps * batch / loop, 3),
                     "patches_per_s_incl_setup_wall": round(steps * batch / wall, 3),
                     "patches_per_s_incl_setup_cpu": round(steps * batch / cpu, 3)}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, help="cGAN model folder (default: the shipped one)")
    p.add_argument("--json", type=Path)
    p.add_argument("--skip", nargs="*", default=[], choices=["realism", "speed", "train"])
    p.add_argument("--set", choices=["nuclei3d-gonuclear", "membrane3d-plant"], default="nuclei3d-gonuclear",
                   help="realism: the shipped nuclei model on gonuclear 1136, or a cGAN trained on plant_patch "
                        "and scored on the held-back ovule")
    p.add_argument("--steps", type=int, default=300, help="membrane3d-plant: training steps")
    p.add_argument("--patch", type=int, nargs=3, default=[32, 64, 64], help="membrane3d-plant: patch ZYX")
    p.add_argument("--held-back", choices=["ovule", "plant_patch"], default="ovule",
                   help="membrane3d-plant: the scored volume (the cGAN trains on the other)")
    p.add_argument("--plain-layers", action="store_true",
                   help="run the U-Nets on their plain layers (no CPU inference path), for comparison")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.plain_layers:
        import cellsynth.nn.unet as unet
        unet.inference_path = plain_layers
    model = args.model or default_model_path("cgan")
    res = {"plain_layers": args.plain_layers}
    if "realism" not in args.skip:
        res["realism"] = (realism(model) if args.set == "nuclei3d-gonuclear"
                          else realism_membranes(args.steps, args.patch, args.held_back))
    if "speed" not in args.skip:
        res["speed"] = speed(model)
    if "train" not in args.skip:
        res["train"] = train_throughput()
    return emit(res, args.json)


if __name__ == "__main__":
    sys.exit(main())
