"""Segmenter backends for the Syn2Real benchmark: cellsynth's U-Net, StarDist and Cellpose 3.

Every benchmark arm trains one segmenter through the same interface,
``backend.train(datasets, out, settings, predict_images) -> predictor``, where the
predictor maps an image (numpy) to instance labels. Three backends:

- ``unet``: :func:`cellsynth.segment.unet.train_segmenter` in this process;
- ``stardist`` (Schmidt et al. 2018) and ``cellpose`` (Stringer et al. 2021; Cellpose 3): their own
  Python APIs in their own virtual environments (TensorFlow, numpy < 2.1 do not fit cellsynth's),
  trained FROM SCRATCH (no pretrained weights, nothing downloaded). The arm's datasets are
  exported with cellsynth's exporters (:mod:`cellsynth.export.stardist`,
  :mod:`cellsynth.export.cellpose`), a driver script shipped in ``segment/drivers/`` (it imports
  only the consumer's package, numpy and tifffile) trains in the consumer's python and writes
  one label TIFF per image to predict; the predictor reads them back (an image it was not given
  runs the driver again, in predict mode, on the saved model).

The consumer's python: ``settings.python``, else ``$CELLSYNTH_STARDIST_PYTHON`` /
``$CELLSYNTH_CELLPOSE_PYTHON``, else ``.venv-stardist/bin/python`` / ``.venv-cellpose/bin/python``
beside the repository (``make ecosystem-envs``) or in the working folder. A missing or unusable
environment is one :class:`~cellsynth.errors.InputError` line from :meth:`Backend.check`, which
the benchmark calls before it writes anything. External backends are 2D only.

**Time budget** (``settings.budget_s``): the same wall-clock budget for every backend, spent in
the training loop (gradient steps, augmentation and the framework's own in-loop validation).
One-off preparation (reading, targets/flows, building the graph, a timing probe) and StarDist's
threshold optimisation are not counted and are reported beside it. Backends whose learning-rate
schedule depends on its length (U-Net: cosine over the steps; Cellpose: warm-up and final decay)
first time a probe of ``PROBE_STEPS`` steps (its weights are discarded), then train from scratch
for as many steps as the budget holds at that speed; StarDist (learning rate reduced on plateau)
trains until the budget is spent. Each arm's record gives the seconds its loop really took.
Without a budget every backend trains ``settings.steps`` gradient steps.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, InputError

log = logging.getLogger(__name__)

SEGMENTERS = ("unet", "stardist", "cellpose")
DRIVERS = Path(__file__).resolve().parent / "drivers"
REPO = Path(__file__).resolve().parents[3]  # src/cellsynth/segment -> repository root (source checkout)
PROBE_STEPS = 3  # steps of the timing probe of the backends whose schedule length must be fixed first

Predictor = Callable[[np.ndarray], np.ndarray]


@dataclass
class TrainSettings:
    """How one arm's segmenter is trained (the same for every arm of a benchmark).

    Parameters
    ----------
    steps : gradient steps when there is no time budget (every backend).
    budget_s : wall-clock seconds of training loop per arm (None = train ``steps`` steps).
    patch, batch : training patch ((Z)YX) and batch size; None = each framework's default
        (U-Net 128² × 8, StarDist 256² × 4, Cellpose 224² × 8).
    seed : seed of the network initialisation and patch sampling.
    device : torch device of the U-Net ("auto", "cpu", "cuda"); the external backends run on CPU.
    threads : CPU threads of the external framework (None = its choice).
    python : the consumer environment's python (external backends); None = the default search.
    unet : :class:`~cellsynth.segment.unet.SegmenterConfig` keys of the U-Net (a preset's ``segmenter``
        section); the steps, seed, patch and batch above take precedence.
    """

    steps: int = 600
    budget_s: float | None = None
    patch: Sequence[int] | None = None
    batch: int | None = None
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    progress: bool = True
    python: Path | None = None
    unet: dict = field(default_factory=dict)


class Backend:
    """One segmenter framework: ``check`` (before any output), then ``train`` per arm."""

    name = ""

    def check(self, ndim: int, settings: TrainSettings) -> None:
        """Refuse what this backend cannot do (one-line InputError/ConfigError), writing nothing."""
        if settings.budget_s is not None and settings.budget_s <= 0:
            raise ConfigError(f"--segmenter-minutes must be > 0, got {settings.budget_s / 60:g}")
        if settings.steps < 1:
            raise ConfigError(f"--steps {settings.steps}: need at least 1 training step")

    def train(self, datasets: Sequence[Path], out: Path, settings: TrainSettings,
              predict_images: Sequence[Path] = ()) -> tuple[Predictor, dict]:
        """Train on dataset folders (``images/``, ``masks/``) into ``out``; return (predictor, record).

        ``predict_images``: image files the caller will segment (predicted now where that is cheaper);
        ``record``: what was trained (steps, seconds in the loop, preparation seconds, budget).
        """
        raise NotImplementedError


# --------------------------------------------------------------------------- U-Net
class UNetBackend(Backend):
    """cellsynth's 3-class U-Net (:mod:`cellsynth.segment.unet`), trained in this process."""

    name = "unet"

    def check(self, ndim, settings):
        super().check(ndim, settings)
        from ..config import validate
        from .unet import SegmenterConfig
        validate(SegmenterConfig, dict(settings.unet), prefix="segmenter.")

    def _train(self, datasets, out, settings: TrainSettings, steps: int, probe: bool = False):
        from ..config import validate
        from .unet import SegmenterConfig, train_segmenter

        upd: dict = {**settings.unet, "steps": steps, "seed": settings.seed}
        if probe and upd.get("rescale"):  # the timing probe fits no size model: its network is thrown away
            upd["rescale"] = {**upd["rescale"], "estimate": "classical"}
        if settings.patch:
            upd["patch"] = list(settings.patch)
        if settings.batch:
            upd["batch_size"] = settings.batch
        cfg = validate(SegmenterConfig, upd)
        if out is not None and out.exists():
            shutil.rmtree(out)
        return train_segmenter([str(d) for d in datasets], out, cfg=cfg, device=settings.device,
                               progress=settings.progress)

    def train(self, datasets, out, settings, predict_images=()):
        t0 = time.time()
        probe_s = 0.0
        steps = settings.steps
        if settings.budget_s is not None:
            probe = self._train(datasets, None, settings, PROBE_STEPS, probe=True)
            probe_s = probe.config["training"]["seconds"]
            steps = max(1, int(settings.budget_s / (probe_s / PROBE_STEPS)))
        seg = self._train(datasets, out, settings, steps)
        loop_s = seg.config["training"]["seconds"]
        rec = {"segmenter": self.name, "steps": steps, "train_loop_s": round(loop_s, 1),
               "probe_s": round(probe_s, 1), "prep_s": round(time.time() - t0 - loop_s - probe_s, 1),
               "budget_s": settings.budget_s}
        return seg.predict, rec


# --------------------------------------------------------------------------- external frameworks
class ExternalBackend(Backend):
    """A framework in its own virtual environment, driven through ``segment/drivers/<name>_driver.py``."""

    package = ""
    export_format = ""
    val_fraction = 0.0  # share of each dataset exported as the framework's validation split

    @property
    def env_var(self) -> str:
        return f"CELLSYNTH_{self.name.upper()}_PYTHON"

    def python(self, settings: TrainSettings) -> Path:
        """The consumer environment's python: option, environment variable, ``.venv-<name>`` beside the repo."""
        if settings.python is not None:
            return Path(settings.python)
        if os.environ.get(self.env_var):
            return Path(os.environ[self.env_var])
        for root in (REPO, Path.cwd()):
            cand = root / f".venv-{self.name}" / "bin" / "python"
            if cand.exists():
                return cand
        return REPO / f".venv-{self.name}" / "bin" / "python"

    def check(self, ndim, settings):
        super().check(ndim, settings)
        if ndim != 2:
            raise ConfigError(f"{self.name} segmenter: 2D only (the images are {ndim}D); use --segmenter unet")
        if settings.patch is not None and len(settings.patch) != 2:
            raise ConfigError(f"{self.name} segmenter: the patch needs 2 sizes, got {list(settings.patch)}")
        py = self.python(settings)
        how = (f"set --segmenter-python, ${self.env_var}, or create .venv-{self.name} with "
               f"`make .venv-{self.name}/.ok`")
        if not py.is_file() or not os.access(py, os.X_OK):
            raise InputError(f"{self.name} environment: python '{py}' does not exist or is not executable; {how}")
        code = (f"import importlib.util, sys; sys.exit(0 if all(importlib.util.find_spec(m) for m in "
                f"({self.package!r}, 'numpy', 'tifffile')) else 3)")
        try:
            r = subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise InputError(f"{self.name} environment: python '{py}' does not run ({e}); {how}") from None
        if r.returncode != 0:
            raise InputError(f"{self.name} environment: python '{py}' cannot import {self.package}, numpy and "
                             f"tifffile; {how}")

    def options(self, settings: TrainSettings) -> dict[str, Any]:
        return {}

    def run_driver(self, job: dict, folder: Path, settings: TrainSettings) -> dict:
        """Write ``job.json`` into ``folder``, run the driver on it, return its ``result.json``."""
        from ..io import read_json, write_json

        write_json(folder / "job.json", job)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        if settings.threads:
            env.update(OMP_NUM_THREADS=str(settings.threads), MKL_NUM_THREADS=str(settings.threads),
                       TF_NUM_INTRAOP_THREADS=str(settings.threads), TF_NUM_INTEROP_THREADS="1")
        env.update(TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", MPLBACKEND="Agg")
        cmd = [str(self.python(settings)), str(DRIVERS / f"{self.name}_driver.py"), str(folder / "job.json")]
        log.info("running %s", " ".join(cmd))
        result = folder / "result.json"
        if result.exists():
            result.unlink()
        with open(folder / "driver.log", "a") as logf:
            r = subprocess.run(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env)
        if r.returncode != 0 or not result.is_file():
            tail = (folder / "driver.log").read_text(errors="replace").strip().splitlines()[-15:]
            raise RuntimeError(f"{self.name} driver failed (exit {r.returncode}); end of {folder / 'driver.log'}:\n"
                               + "\n".join(tail))
        return read_json(result, f"{self.name} driver result")

    def train(self, datasets, out, settings, predict_images=()):
        from ..export import export_dataset

        out = Path(out)
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        t0 = time.time()
        exports = []
        for i, d in enumerate(datasets):
            dst = out / "export" / str(i)
            export_dataset(d, self.export_format, dst, test_fraction=self.val_fraction, split_seed=settings.seed,
                           progress_bar=False)
            exports.append(str(dst))
        export_s = time.time() - t0
        pred = ExternalPredictor(self, out, settings)
        job = {"mode": "train", "exports": exports, "model": str(out / "model"), "steps": settings.steps,
               "budget_s": settings.budget_s, "probe_steps": PROBE_STEPS, "seed": settings.seed,
               "threads": settings.threads, "patch": list(settings.patch) if settings.patch else None,
               "batch": settings.batch, "predict": pred.plan(predict_images), **self.options(settings)}
        res = self.run_driver(job, out, settings)
        pred.add(res.get("predicted", {}))
        rec = {"segmenter": self.name, "export_s": round(export_s, 1), "budget_s": settings.budget_s,
               **{k: v for k, v in res.items() if k != "predicted"}}
        return pred, rec


class ExternalPredictor:
    """Image -> labels from an external backend's label TIFFs, matched by image content.

    Images given at training time were predicted by the training run; any other image is
    written to ``out/extra/`` and predicted by the driver in predict mode on the saved model.
    """

    def __init__(self, backend: ExternalBackend, out: Path, settings: TrainSettings):
        self.backend, self.out, self.settings = backend, Path(out), settings
        self.labels: dict[str, Path] = {}
        self._pending: dict[str, str] = {}

    @staticmethod
    def key(image: np.ndarray) -> str:
        a = np.ascontiguousarray(image)
        return hashlib.sha1(f"{a.shape}{a.dtype}".encode() + a.tobytes()).hexdigest()

    def plan(self, images: Sequence[Path]) -> list[list[str]]:
        """(image file, label file) pairs for the driver; the predictor remembers each image's content key."""
        from ..io import read_image

        pairs = []
        for i, p in enumerate(images):
            dst = self.out / "predictions" / f"{i:05d}_{Path(p).stem}.tif"
            self._pending[str(dst)] = self.key(read_image(p))
            pairs.append([str(Path(p).resolve()), str(dst)])
        return pairs

    def add(self, predicted: dict[str, str] | list[str]) -> None:
        for dst in predicted:
            if dst in self._pending:
                self.labels[self._pending.pop(dst)] = Path(dst)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        from ..io import read_labels, write_tiff

        k = self.key(image)
        if k not in self.labels:
            src = self.out / "extra" / f"{k[:16]}.tif"
            write_tiff(src, np.asarray(image))
            pairs = self.plan([src])
            res = self.backend.run_driver({"mode": "predict", "model": str(self.out / "model"), "predict": pairs,
                                           "threads": self.settings.threads}, self.out / "extra",
                                          self.settings)
            self.add(res.get("predicted", {}))
        lab = read_labels(self.labels[k])
        if lab.shape != np.shape(image):
            raise RuntimeError(f"{self.backend.name} prediction '{self.labels[k]}' has shape {lab.shape}, "
                               f"the image {np.shape(image)}")
        return lab


class StarDistBackend(ExternalBackend):
    """StarDist 2D (Schmidt et al. 2018): star-convex polygons, from scratch, its own TensorFlow env."""

    name, package, export_format = "stardist", "stardist", "stardist"
    val_fraction = 0.1  # StarDist trains with a validation split (learning rate on plateau, best weights)


class CellposeBackend(ExternalBackend):
    """Cellpose 3 (Stringer et al. 2021): flows + cell probability, from scratch, its own env."""

    name, package, export_format = "cellpose", "cellpose", "cellpose"

    def check(self, ndim, settings):
        if settings.patch is not None and len(set(settings.patch)) != 1:
            raise ConfigError(f"cellpose segmenter: its training patch is square, got {list(settings.patch)}")
        super().check(ndim, settings)


BACKENDS: dict[str, type[Backend]] = {"unet": UNetBackend, "stardist": StarDistBackend, "cellpose": CellposeBackend}


def get_backend(name: str) -> Backend:
    """The backend called ``name`` (one of :data:`SEGMENTERS`).

    >>> get_backend("stardist").env_var
    'CELLSYNTH_STARDIST_PYTHON'
    >>> get_backend("maskrcnn")
    Traceback (most recent call last):
    ...
    cellsynth.errors.ConfigError: unknown segmenter 'maskrcnn'; choose from unet, stardist, cellpose
    """
    if name not in BACKENDS:
        raise ConfigError(f"unknown segmenter '{name}'; choose from {', '.join(SEGMENTERS)}")
    return BACKENDS[name]()


def describe(backend: Backend, settings: TrainSettings) -> dict:
    """What the report says about the segmenter (no absolute paths beyond the consumer's python)."""
    d: dict[str, Any] = {"name": backend.name, "budget_s": settings.budget_s,
                         "steps": None if settings.budget_s is not None else settings.steps}
    if isinstance(backend, ExternalBackend):
        py = backend.python(settings)
        d["python"] = str(py)
        try:
            code = f"import importlib.metadata as m; print(m.version({backend.package!r}))"
            r = subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=120)
            d["version"] = r.stdout.strip() or None
        except (OSError, subprocess.TimeoutExpired):
            d["version"] = None
    return d


__all__ = ["SEGMENTERS", "Backend", "TrainSettings", "UNetBackend", "StarDistBackend", "CellposeBackend",
           "ExternalPredictor", "get_backend", "describe"]
