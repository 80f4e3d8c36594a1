"""Training under DistributedDataParallel: 2 CPU processes, gloo (what torchrun launches); segmenter and DDPM."""
from __future__ import annotations

import json
import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from cellsynth.io import write_tiff

pytestmark = pytest.mark.slow


def _worker(rank: int, world: int, port: int, data: str, out: str, results: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    import cellsynth.segment.unet as unet
    from cellsynth import ddp
    ddp.setup(torch.device("cpu"))
    # gradients are averaged: rank r feeds (r + 1) * ones to the same linear layer
    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 1)
    wrapped = ddp.wrap(lin, torch.device("cpu"))  # kept alive: its reducer averages during backward
    wrapped(torch.full((1, 3), float(rank + 1))).sum().backward()
    saves = []
    original = unet.Segmenter.save

    def counting_save(self, folder):
        saves.append(rank)
        return original(self, folder)
    unet.Segmenter.save = counting_save
    seg = unet.train_segmenter([data], out, unet.SegmenterConfig(channels=[4, 8], patch=[16, 16], batch_size=1,
                                                                   steps=3), device="cpu", progress=False)
    weights = torch.cat([p.detach().flatten() for p in seg.net.parameters()]).numpy()
    np.save(os.path.join(results, f"w{rank}.npy"), weights)
    with open(os.path.join(results, f"r{rank}.json"), "w") as f:
        json.dump({"grad": lin.weight.grad.flatten().tolist(), "saves": len(saves),
                   "processes": seg.config["training"]["processes"]}, f)
    torch.distributed.destroy_process_group()


def test_two_processes_average_gradients_and_save_once(tmp_path):
    rng = np.random.default_rng(0)
    lab = np.zeros((32, 32), np.uint16)
    lab[4:12, 4:12], lab[18:28, 16:26] = 1, 2
    write_tiff(tmp_path / "d" / "images" / "a.tif", (lab > 0) * 100 + rng.random((32, 32)).astype(np.float32) * 30)
    write_tiff(tmp_path / "d" / "masks" / "a.tif", lab)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "r").mkdir()
    mp.spawn(_worker, args=(2, port, str(tmp_path / "d"), str(tmp_path / "m"), str(tmp_path / "r")), nprocs=2)
    r = [json.loads((tmp_path / "r" / f"r{k}.json").read_text()) for k in (0, 1)]
    assert r[0]["grad"] == r[1]["grad"] == pytest.approx([1.5, 1.5, 1.5])  # mean of 1 and 2
    assert [x["saves"] for x in r] == [1, 0] and r[0]["processes"] == 2
    w0, w1 = np.load(tmp_path / "r" / "w0.npy"), np.load(tmp_path / "r" / "w1.npy")
    np.testing.assert_array_equal(w0, w1)  # different patches per process, one model
    from cellsynth.segment.unet import load_segmenter
    saved = torch.cat([p.detach().flatten() for p in load_segmenter(tmp_path / "m").net.parameters()]).numpy()
    np.testing.assert_array_equal(saved, w0)


def _diffusion_worker(rank: int, world: int, port: int, images: str, out: str, results: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from cellsynth.generative import diffusion as D
    cfg = D.DiffusionTrainConfig(channels=[8, 16], batch_size=2, seed=0, threads=1, patch_size=[16, 16],
                                 checkpoint_every=2)
    writes = []
    original = D.save_model

    def counting_save(*a, **kw):
        writes.append(rank)
        return original(*a, **kw)
    D.save_model = counting_save
    D.train_diffusion(images, out, cfg, steps=3, progress=False)
    with open(os.path.join(results, f"d{rank}.json"), "w") as f:
        json.dump({"writes": len(writes)}, f)
    torch.distributed.destroy_process_group()


def test_diffusion_two_processes_write_once(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(2):
        write_tiff(tmp_path / "imgs" / f"{i}.tif", (rng.random((32, 32)) * 200).astype(np.uint8))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "r").mkdir()
    mp.spawn(_diffusion_worker, args=(2, port, str(tmp_path / "imgs"), str(tmp_path / "m"), str(tmp_path / "r")),
             nprocs=2)
    writes = [json.loads((tmp_path / "r" / f"d{k}.json").read_text())["writes"] for k in (0, 1)]
    assert writes == [2, 0]  # checkpoints at steps 2 and 3, by rank 0 only
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert json.dumps(cfg).count('"processes": 2') == 1
