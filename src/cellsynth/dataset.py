"""Generate many samples: per-sample seeds, parallel workers, resumable, atomic writes.

Layout (StarDist's, and ``../shared/data``'s)::

    DATASET/images/<name>.tif     rendered image
    DATASET/masks/<name>.tif      instance labels (uint16; uint32 past 65535 objects)
    DATASET/layers/<name>.tif     where objects overlap: every object whole, (L, (Z)YX) label layers
    DATASET/manifest.json         per sample: seed, preset, renderer, model, parameters, spacing
    DATASET/.cellsynth/<name>.json  per-sample record (assembled into the manifest)

Sample i is fully determined by (seed, i): its generators come from
``SeedSequence(seed, spawn_key=(i,))``, so serial and parallel runs write the same
bytes. A sample is complete once its image exists: the mask and the record are
written first, each to a temporary name renamed into place, so a rerun after an
interruption keeps completed samples and redoes only the rest.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .config import Config, config_to_dict
from .errors import ConfigError, InputError
from .io import (
    atomic_path,
    check_writable,
    list_images,
    read_json,
    read_labels,
    read_spacing,
    remove_partials,
    write_json,
    write_tiff,
)
from .scene import Scene

MANIFEST = "manifest.json"
RECORDS = ".cellsynth"
MANIFEST_FORMAT = 1
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def sample_name(i: int) -> str:
    return f"sample_{i:05d}"


def sample_generators(seed: int, i: int) -> tuple[np.random.Generator, np.random.Generator]:
    """(scene_rng, render_rng) for sample i: independent streams fixed by (seed, i) alone."""
    ss = np.random.SeedSequence(int(seed), spawn_key=(int(i),))
    a, b = ss.spawn(2)
    return np.random.default_rng(a), np.random.default_rng(b)


def read_pairs(folder: str | Path, require_masks: bool = True) -> list[tuple[str, Path, Path | None]]:
    """(name, image_path, mask_path) for a folder with ``images/`` and ``masks/`` paired by file name."""
    folder = Path(folder)
    images = list_images(folder / "images", what="images")
    masks_dir = folder / "masks"
    if require_masks and not masks_dir.is_dir():
        raise InputError(f"dataset '{folder}' has no masks/ folder")
    out = []
    for img in images:
        m = masks_dir / img.name
        if not m.is_file():
            alt = [masks_dir / (img.stem + s) for s in (".tif", ".tiff")]
            m = next((a for a in alt if a.is_file()), None)
        if m is None and require_masks:
            raise InputError(f"image '{img}' has no mask of the same name in '{masks_dir}'")
        out.append((img.stem, img, m))
    return out


# --------------------------------------------------------------------------- one sample
class _Job:
    """Everything a worker needs to make samples; built once per process."""

    def __init__(self, cfg: Config, renderer: str | None, seed: int, out: Path,
                 labels_files: list[Path] | None, threads: int | None):
        self.cfg = cfg
        self.renderer_name = renderer
        self.seed = seed
        self.out = out
        self.labels_files = labels_files
        self.threads = threads
        self._renderer = None

    def renderer(self):
        if self._renderer is None and self.renderer_name:
            from .render import make_renderer
            self._renderer = make_renderer(self.renderer_name, self.cfg.render)
        return self._renderer

    def scene(self, i: int, rng: np.random.Generator) -> Scene:
        if self.labels_files is None:
            from .simulate import simulate_scene
            return simulate_scene(self.cfg.scene, rng)
        return scene_from_labels(self.labels_files[i], self.cfg)

    def name(self, i: int) -> str:
        return self.labels_files[i].stem if self.labels_files is not None else sample_name(i)

    def make(self, i: int) -> dict:
        name = self.name(i)
        scene_rng, render_rng = sample_generators(self.seed, i)
        scene = self.scene(i, scene_rng)
        r = self.renderer()
        image = r.render(scene, render_rng) if r is not None else None
        mask_path = self.out / "masks" / f"{name}.tif"
        if self.labels_files is not None:
            _copy_atomic(self.labels_files[i], mask_path)  # user's masks pass through unchanged
        else:
            write_tiff(mask_path, scene.labels, scene.spacing)
            if scene.layers is not None:  # overlapping objects kept whole (Scene.layers), same ids
                write_tiff(self.out / "layers" / f"{name}.tif", scene.layers)
        if self.labels_files is None and self.renderer_name is None:
            write_tiff(self.out / "foreground" / f"{name}.tif", scene.foreground.astype(np.uint8), scene.spacing)
        record = {
            "name": name, "index": i, "seed": self.seed, "preset": self.cfg.name,
            "renderer": self.renderer_name, "model": _model_of(r),
            "source": str(self.labels_files[i]) if self.labels_files is not None else "simulated",
            "shape": list(scene.shape), "spacing": list(scene.spacing), "n_objects": scene.n_objects,
            "layers": None if scene.layers is None else int(len(scene.layers)),
            "classes": {str(k): v for k, v in scene.classes.items()},
            "scene_params": scene.params,
            "render_params": r.describe() if r is not None else None,
            "image_dtype": str(image.dtype) if image is not None else None,
        }
        write_json(self.out / RECORDS / f"{name}.json", record)
        if image is not None:
            write_tiff(self.out / "images" / f"{name}.tif", image, scene.spacing)  # written last: marks done
        return record


def _model_of(r) -> str | None:
    d = r.describe() if r is not None else {}
    return d.get("model") if isinstance(d, dict) else None


def _copy_atomic(src: Path, dst: Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def scene_from_labels(path: Path, cfg: Config) -> Scene:
    """A Scene from an existing instance mask (real annotation, a user's drawing, another tool).

    The specimen foreground is taken as the whole field (a mask holds no specimen
    outline); spacing comes from the TIFF's voxel size, else the config's when the
    dimensions agree, else 1 µm.
    """
    labels = read_labels(path)
    spacing = read_spacing(path, labels.ndim)
    if spacing is None or any(s <= 0 for s in spacing):
        spacing = tuple(cfg.scene.spacing) if len(cfg.scene.spacing) == labels.ndim else (1.0,) * labels.ndim
    ids = np.unique(labels)
    ids = ids[ids > 0]
    return Scene(labels=labels, foreground=np.ones(labels.shape, bool), spacing=spacing,
                 classes={int(k): "object" for k in ids}, params={"source": str(path)},
                 wall_thickness=cfg.scene.membranes.wall_thickness)


_WORKER_JOB: _Job | None = None


def _worker_init(job: _Job) -> None:
    global _WORKER_JOB
    _WORKER_JOB = job
    if job.threads:
        try:
            import torch
            torch.set_num_threads(job.threads)
        except ImportError:
            pass


def _worker_make(i: int) -> dict:
    assert _WORKER_JOB is not None
    return _WORKER_JOB.make(i)


# --------------------------------------------------------------------------- the dataset
def _settings(cfg: Config, renderer: str | None, seed: int, labels_dir: Path | None) -> dict:
    return {"config": config_to_dict(cfg), "renderer": renderer, "seed": int(seed),
            "labels": str(labels_dir) if labels_dir else None}


def done_samples(out: Path, names: list[str], with_images: bool) -> set[str]:
    """Names whose files are all in place (the image is written last)."""
    done = set()
    for n in names:
        last = out / ("images" if with_images else "masks") / f"{n}.tif"
        if last.is_file() and (out / "masks" / f"{n}.tif").is_file() and (out / RECORDS / f"{n}.json").is_file():
            done.add(n)
    return done


def generate_dataset(cfg: Config, renderer: str | None, n: int | None, seed: int, out: str | Path,
                     workers: int = 1, labels_dir: str | Path | None = None,
                     progress: bool = True, scheduler: str | None = None) -> Path:
    """Write ``n`` samples (scene + rendered image) to ``out``; resume what is already there.

    Parameters
    ----------
    cfg : Config
        Scene and render configuration (a preset, possibly overridden).
    renderer : "physics" | "sketch" | "diffusion" | None
        None writes scenes only (masks + foreground), as ``cellsynth simulate`` does.
    n : int or None
        Number of samples; with ``labels_dir``, None renders every mask there.
    seed : int
        Dataset seed; sample i depends on (seed, i) only.
    labels_dir : folder of instance masks to render instead of simulated scenes.
    workers : parallel processes (1 = serial in this process).
    scheduler : "local:N" or "tcp://HOST:PORT": run samples as tasks on a Dask cluster
        (:mod:`cellsynth.cluster`); same bytes as serial. Excludes ``workers`` > 1.
    """
    out = Path(out)
    labels_files = None
    if labels_dir is not None:
        labels_files = list_images(labels_dir, what="labels")
        for f in labels_files:  # validate every input before any output
            read_labels(f)
        if n is not None:
            labels_files = labels_files[:n]
        n = len(labels_files)
    if n is None or n < 1:
        raise ConfigError(f"--n must be >= 1, got {n}")
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {seed}")
    if scheduler is not None:
        from .cluster import check_scheduler
        check_scheduler(scheduler)
        if workers > 1:
            raise ConfigError("give --workers or --scheduler, not both")
    job = _Job(cfg, renderer, seed, out, labels_files, threads=None)
    r = job.renderer()  # builds (and validates, e.g. loads the model) before anything is written
    model_dims = getattr(r, "spatial_dims", None)  # learned renderers are 2D or 3D
    if model_dims is not None:
        scene_dims = read_labels(labels_files[0]).ndim if labels_files else len(cfg.scene.shape)
        if scene_dims != model_dims:
            raise InputError(f"the scenes are {scene_dims}D but the {renderer} renderer's model "
                             f"'{getattr(r, 'model_path', '')}' is {model_dims}D")
    check_writable(out, "output folder")

    settings = _settings(cfg, renderer, seed, Path(labels_dir) if labels_dir else None)
    manifest_path = out / MANIFEST
    if manifest_path.is_file():
        old = read_json(manifest_path, "manifest")
        if old.get("settings") != settings:
            raise InputError(f"output folder '{out}' holds a dataset made with other settings "
                             f"(preset, renderer, seed or parameters differ); choose another --out")
    elif out.exists() and any(out.iterdir()):
        raise InputError(f"output folder '{out}' exists, is not empty and holds no cellsynth manifest")
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("images", "masks", RECORDS, "foreground", "layers"):
        remove_partials(out / sub)
    names = [job.name(i) for i in range(n)]
    manifest = {"format": MANIFEST_FORMAT, "cellsynth": __version__, "settings": settings,
                "n": n, "complete": False, "samples": []}
    write_json(manifest_path, manifest)

    done = done_samples(out, names, with_images=renderer is not None)
    todo = [i for i in range(n) if names[i] not in done]
    bar = _progress(total=n, initial=n - len(todo), desc=f"generate {cfg.name}/{renderer or 'scenes'}",
                    enabled=progress)
    try:
        if scheduler is not None and todo:
            from .cluster import connect, run_samples
            with connect(scheduler) as client:
                run_samples(client, _Job(cfg, renderer, seed, out, labels_files, threads=1), todo, bar)
        elif workers == 1 or len(todo) <= 1:
            for i in todo:
                job.make(i)
                bar.update(1)
        else:
            job_w = _Job(cfg, renderer, seed, out, labels_files, threads=max(1, (os.cpu_count() or 1) // workers))
            ctx = get_context("spawn")  # torch and threads do not survive fork safely
            # one BLAS/OpenMP thread per worker: the workers already fill the cores, and nested
            # thread pools would oversubscribe them (spawned children inherit the environment)
            saved = {k: os.environ.get(k) for k in _THREAD_VARS}
            os.environ.update({k: str(job_w.threads) for k in _THREAD_VARS})
            try:
                pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init,
                                           initargs=(job_w,))
                futures = [pool.submit(_worker_make, i) for i in todo]  # starts the workers
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
            with pool:
                for f in as_completed(futures):
                    f.result()
                    bar.update(1)
    finally:
        bar.close()
    for sub in ("images", "masks", RECORDS, "foreground", "layers"):
        remove_partials(out / sub)  # what a task killed mid-write left (its retry wrote the file again)
    manifest["samples"] = [read_json(out / RECORDS / f"{nm}.json") for nm in names]
    manifest["complete"] = True
    write_json(manifest_path, manifest)
    return out


def generate_stylegan_dataset(model: str | Path, n: int, seed: int, out: str | Path, truncation: float = 1.0,
                              progress: bool = True) -> Path:
    """Write ``n`` image + instance-mask pairs drawn by a trained StyleGAN (Lesmes-Leon et al. 2025).

    Same layout, records, manifest and resume rules as :func:`generate_dataset`; sample i
    depends on (seed, i) and the model only. ``truncation`` is ψ (1 = none).
    """
    from .generative.stylegan import load_stylegan, sample_pairs
    out = Path(out)
    if n is None or n < 1:
        raise ConfigError(f"--n must be >= 1, got {n}")
    if seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {seed}")
    if not np.isfinite(truncation):
        raise ConfigError(f"--truncation {truncation}: must be a finite number")
    check_writable(out, "output folder")
    net = load_stylegan(model)  # validated before anything is written
    settings = {"renderer": "stylegan", "model": Path(model).name, "seed": int(seed), "truncation": float(truncation),
                "model_config": {k: net.meta.get(k) for k in ("training_data", "training", "area_range", "max_labels")}}
    manifest_path = out / MANIFEST
    if manifest_path.is_file():
        if read_json(manifest_path, "manifest").get("settings") != settings:
            raise InputError(f"output folder '{out}' holds a dataset made with other settings "
                             f"(model, seed or truncation differ); choose another --out")
    elif out.exists() and any(out.iterdir()):
        raise InputError(f"output folder '{out}' exists, is not empty and holds no cellsynth manifest")
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("images", "masks", RECORDS):
        remove_partials(out / sub)
    names = [sample_name(i) for i in range(n)]
    manifest = {"format": MANIFEST_FORMAT, "cellsynth": __version__, "settings": settings,
                "n": n, "complete": False, "samples": []}
    write_json(manifest_path, manifest)
    done = done_samples(out, names, with_images=True)
    bar = _progress(total=n, initial=len(done), desc="generate stylegan", enabled=progress)
    for i, name in enumerate(names):
        if name in done:
            continue
        s = int(np.random.SeedSequence(int(seed), spawn_key=(i,)).generate_state(1)[0])
        image, labels = next(iter(sample_pairs(net, 1, seed=s, truncation=truncation)))
        write_tiff(out / "masks" / f"{name}.tif", labels)
        write_json(out / RECORDS / f"{name}.json", {
            "name": name, "index": i, "seed": int(seed), "sample_seed": s, "renderer": "stylegan",
            "model": Path(model).name, "truncation": float(truncation), "shape": list(labels.shape),
            "n_objects": int(labels.max()), "image_dtype": str(image.dtype)})
        write_tiff(out / "images" / f"{name}.tif", image)  # written last: marks done
        bar.update(1)
    bar.close()
    manifest["samples"] = [read_json(out / RECORDS / f"{nm}.json") for nm in names]
    manifest["complete"] = True
    write_json(manifest_path, manifest)
    return out


def _progress(total: int, initial: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, desc=desc, disable=not enabled, unit="sample")


def iter_dataset(folder: str | Path) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Yield (name, image, labels) of a dataset folder."""
    from .io import read_image
    for name, ip, mp in read_pairs(folder):
        yield name, read_image(ip), read_labels(mp)


def load_manifest(folder: str | Path) -> dict[str, Any]:
    return read_json(Path(folder) / MANIFEST, "manifest")
