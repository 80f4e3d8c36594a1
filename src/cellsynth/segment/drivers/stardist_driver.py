"""Train StarDist 2D from scratch on cellsynth's StarDist exports and segment images (Schmidt et al. 2018).

Run by :mod:`cellsynth.segment.backends` in the StarDist environment: ``python stardist_driver.py JOB.json``.
Train mode reads ``EXPORT/train/{images,masks}`` (and ``EXPORT/test/`` as the validation split) of every
export, normalises each image to its (1, 99.8) percentiles (csbdeep ``normalize``, as StarDist's examples),
trains a ``Config2D`` network (32 rays, grid 2×2 as in StarDist's 2D example, other settings StarDist's
defaults) with flips/rotations/intensity augmentation until the step count or the time budget is reached,
optimises the probability / NMS thresholds on up to 8 validation images, saves the model and segments
the images of ``job["predict"]``. Predict mode loads the saved model and segments only.
Imports only StarDist (+ csbdeep, TensorFlow), numpy and tifffile.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import tifffile
from driver_io import StopRule, predict_all, read_image, read_job, write_result

N_VAL_THRESHOLDS = 8  # validation images for optimize_thresholds (it predicts each whole image)


def _pairs(folder: Path):
    names = sorted(p.name for p in (folder / "images").glob("*.tif")) if (folder / "images").is_dir() else []
    return ([read_image(folder / "images" / n) for n in names],
            [tifffile.imread(folder / "masks" / n).astype(np.int32) for n in names])


def _augment(rng):
    def aug(x, y):
        # random flips and 90° rotations (square patches) + intensity scaling, as in StarDist's example
        k = rng.integers(4) if x.shape[0] == x.shape[1] else 0
        x, y = np.rot90(x, k), np.rot90(y, k)
        for ax in (0, 1):
            if rng.random() < 0.5:
                x, y = np.flip(x, ax), np.flip(y, ax)
        x = x * rng.uniform(0.6, 2.0) + rng.uniform(-0.2, 0.2)
        return np.ascontiguousarray(x), np.ascontiguousarray(y)
    return aug


def _setup(job):
    import tensorflow as tf
    if job.get("threads"):
        tf.config.threading.set_intra_op_parallelism_threads(int(job["threads"]))
        tf.config.threading.set_inter_op_parallelism_threads(1)


def _predictor(model):
    from csbdeep.utils import normalize

    def predict(img):
        labels, _ = model.predict_instances(normalize(img, 1, 99.8, axis=(0, 1)),
                                            n_tiles=model._guess_n_tiles(img), show_tile_progress=False)
        return labels
    return predict


def train(job, folder):
    import keras
    import stardist
    import tensorflow as tf
    from csbdeep.utils import normalize
    from stardist.models import Config2D, StarDist2D

    t_prep = time.time()
    X, Y, Xv, Yv = [], [], [], []
    for e in job["exports"]:
        x, y = _pairs(Path(e) / "train")
        X += x
        Y += y
        x, y = _pairs(Path(e) / "test")
        Xv += x
        Yv += y
    if not Xv:  # a one-image dataset has no validation split: validate on the training images
        Xv, Yv = X[:N_VAL_THRESHOLDS], Y[:N_VAL_THRESHOLDS]
    X = [normalize(x, 1, 99.8, axis=(0, 1)) for x in X]
    Xv = [normalize(x, 1, 99.8, axis=(0, 1)) for x in Xv]
    seed = int(job["seed"])
    keras.utils.set_random_seed(seed)
    smallest = np.min([x.shape for x in X + Xv], axis=0)
    if job.get("patch"):
        patch = tuple(int(p) for p in job["patch"])
    else:  # StarDist's default 256², within the smallest image, a multiple of 16 (U-Net depth 3 x grid 2)
        patch = tuple(int(min(256, s) // 16 * 16) for s in smallest)
    conf = Config2D(n_rays=32, grid=(2, 2), n_channel_in=1, train_patch_size=patch, use_gpu=False,
                    train_tensorboard=False, **({"train_batch_size": int(job["batch"])} if job.get("batch") else {}))
    model = StarDist2D(conf, name=Path(job["model"]).name, basedir=str(Path(job["model"]).parent))
    budget = job.get("budget_s")
    rule = StopRule(None if budget else int(job["steps"]), budget)
    spe = conf.train_steps_per_epoch if budget else min(conf.train_steps_per_epoch, int(job["steps"]))
    epochs = 10**6 if budget else math.ceil(int(job["steps"]) / spe)

    class Stop(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            rule.start()

        def on_train_batch_end(self, batch, logs=None):
            if rule.step():
                self.model.stop_training = True

    model.prepare_for_training()
    model.callbacks.append(Stop())
    prep_s = time.time() - t_prep
    t0 = time.time()
    model.train(X, Y, validation_data=(Xv, Yv), augmenter=_augment(np.random.default_rng(seed)), seed=seed,
                epochs=epochs, steps_per_epoch=spe)
    loop_s = time.time() - t0
    t1 = time.time()
    idx = np.unique(np.linspace(0, len(Xv) - 1, min(len(Xv), N_VAL_THRESHOLDS)).round().astype(int))
    model.optimize_thresholds([Xv[i] for i in idx], [Yv[i] for i in idx])
    calibrate_s = time.time() - t1
    predicted = predict_all(job.get("predict", []), _predictor(model))
    write_result(folder, {"steps": rule.steps, "train_loop_s": round(loop_s, 1), "prep_s": round(prep_s, 1),
                          "calibrate_s": round(calibrate_s, 1), "n_train": len(X), "n_val": len(Xv),
                          "patch": list(patch), "batch": conf.train_batch_size, "n_rays": conf.n_rays,
                          "grid": list(conf.grid), "thresholds": dict(model.thresholds._asdict()),
                          "versions": {"stardist": stardist.__version__, "tensorflow": tf.__version__},
                          "predicted": predicted})


def predict(job, folder):
    from stardist.models import StarDist2D
    model = StarDist2D(None, name=Path(job["model"]).name, basedir=str(Path(job["model"]).parent))
    write_result(folder, {"predicted": predict_all(job["predict"], _predictor(model))})


if __name__ == "__main__":
    job, folder = read_job()
    _setup(job)
    (train if job["mode"] == "train" else predict)(job, folder)
