"""Train Cellpose 3 from scratch on cellsynth's Cellpose exports and segment images (Stringer et al. 2021).

Run by :mod:`cellsynth.segment.backends` in the Cellpose environment: ``python cellpose_driver.py JOB.json``.
Train mode loads every export's ``train/`` with Cellpose's own loader (``io.load_train_test_data``,
``NAME.tif`` + ``NAME_masks.tif``), normalises the images and computes the flows once (Cellpose's
``normalize_img`` / ``labels_to_flows``), then trains ``CellposeModel(pretrained_model=False,
model_type=None)`` — no weights loaded, nothing downloaded — with ``train.train_seg`` (its defaults:
AdamW, learning rate 0.005, 224² patches, batch 8, random rotation/rescaling to the mean diameter).
One batch per epoch (``nimg_per_epoch`` = batch size), so ``n_epochs`` counts gradient steps and
Cellpose's warm-up / final decay of the learning rate spans the run. Every image with at least one
object trains (``min_train_masks=1``). With a time budget a probe of a few steps (weights discarded,
reported apart) times one step, then a fresh network trains as many steps as the budget holds.
Images are segmented at the mean object diameter of the training masks (the model's ``diam_labels``).
Imports only Cellpose (+ torch), numpy and tifffile.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from driver_io import predict_all, read_job, write_result


def _setup(job):
    import torch
    if job.get("threads"):
        torch.set_num_threads(int(job["threads"]))


def _new_model():
    from cellpose import models
    return models.CellposeModel(gpu=False, pretrained_model=False, model_type=None)  # from scratch


def _predictor(model, diameter):
    def predict(img):
        masks = model.eval(img, channels=[0, 0], diameter=diameter)[0]
        return masks
    return predict


def train(job, folder):
    from importlib.metadata import version

    import torch
    from cellpose import dynamics, io, models, train, transforms

    t_prep = time.time()
    images, labels = [], []
    for e in job["exports"]:
        imgs, labs, _names, *_ = io.load_train_test_data(str(Path(e) / "train"), None, mask_filter="_masks")
        images += imgs
        labels += labs
    # once, outside the timed loop: channel layout + Cellpose's percentile normalisation, and the flows
    images = [transforms.normalize_img(transforms.convert_image(np.asarray(im, np.float32), channels=[0, 0])
                                       .transpose(2, 0, 1), normalize=dict(models.normalize_default), axis=0)
              for im in images]
    flows = dynamics.labels_to_flows([np.asarray(lb).astype(np.int32) for lb in labels], device=torch.device("cpu"))
    batch = int(job.get("batch") or 8)
    bsize = int(job["patch"][0]) if job.get("patch") else 224
    seed = int(job["seed"])
    prep_s = time.time() - t_prep
    save = Path(job["model"]).parent

    def run(n_steps, name):
        torch.manual_seed(seed)  # the network's initial weights
        model = _new_model()
        t = time.time()
        path = train.train_seg(model.net, train_data=images, train_labels=flows, channels=None, normalize=False,
                               batch_size=batch, n_epochs=n_steps, nimg_per_epoch=batch, bsize=bsize,
                               min_train_masks=1, save_path=str(save), model_name=name)
        return model, time.time() - t, path[0] if isinstance(path, tuple) else path

    steps, probe_s = int(job["steps"]), 0.0
    if job.get("budget_s"):
        k = int(job["probe_steps"])
        _, probe_s, probe_path = run(k, "probe")
        Path(probe_path).unlink(missing_ok=True)
        steps = max(1, int(float(job["budget_s"]) / (probe_s / k)))
    model, loop_s, path = run(steps, Path(job["model"]).name)
    diameter = float(model.net.diam_labels.item())
    # the saved weights (with diam_labels) are what predict mode loads
    Path(job["model"]).with_suffix(".json").write_text(f'{{"weights": "{path}", "diameter": {diameter}}}')
    predicted = predict_all(job.get("predict", []), _predictor(model, diameter))
    write_result(folder, {"steps": steps, "train_loop_s": round(loop_s, 1), "probe_s": round(probe_s, 1),
                          "prep_s": round(prep_s, 1), "n_train": len(images), "batch": batch, "bsize": bsize,
                          "diameter": round(diameter, 2),
                          "versions": {"cellpose": version("cellpose"), "torch": torch.__version__},
                          "predicted": predicted})


def predict(job, folder):
    import json

    from cellpose import models
    rec = json.loads(Path(job["model"]).with_suffix(".json").read_text())
    model = models.CellposeModel(gpu=False, pretrained_model=rec["weights"], model_type=None)
    write_result(folder, {"predicted": predict_all(job["predict"], _predictor(model, rec["diameter"]))})


if __name__ == "__main__":
    job, folder = read_job()
    _setup(job)
    (train if job["mode"] == "train" else predict)(job, folder)
