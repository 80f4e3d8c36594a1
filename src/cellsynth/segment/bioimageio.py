"""Export a trained 3-class U-Net segmenter as a BioImage Model Zoo package (model spec 0.5).

The package holds the network as TorchScript (image in, class probabilities of
background / boundary / interior out), the percentile normalisation as the spec's
``scale_range`` preprocessing, a test input and the matching output, a README that
documents the seeded watershed (cellsynth's post-processing, outside the model) and the
cellsynth model configuration. It is written without the bioimageio packages (they pin
pydantic below the version cellsynth uses); ``bioimageio.core.test_model`` validates it
in the test environment (``make test-ecosystem``).
"""
from __future__ import annotations

import datetime
import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import torch
import yaml

from .. import __version__
from ..errors import InputError
from ..io import atomic_path, check_writable, read_image
from .unet import CLASSES, load_segmenter

FORMAT_VERSION = "0.5.4"
CITATION = {"text": "Eschweiler D, et al. 3D fluorescence microscopy data synthesis for segmentation and "
                    "benchmarking. PLOS ONE 16(12): e0260509, 2021.", "doi": "10.1371/journal.pone.0260509"}


class _Probabilities(torch.nn.Module):
    """The U-Net followed by the softmax over classes: what the package's weights compute."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x)[:, :3], dim=1)  # a distance head, if any, is not exported


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def default_test_image(ndim: int, size: list[int]) -> np.ndarray:
    """A simulated, sketch-rendered nuclei scene of ``size`` (seed 0) for the package's test tensors."""
    from ..config import load_config
    from ..dataset import sample_generators
    from ..render import make_renderer
    from ..simulate import simulate_scene
    preset = "nuclei2d-dsb" if ndim == 2 else "nuclei3d-celegans"
    cfg = load_config(preset, overrides=[f"scene.shape={list(size)}"])
    scene_rng, render_rng = sample_generators(0, 0)
    return make_renderer("sketch", cfg.render).render(simulate_scene(cfg.scene, scene_rng), render_rng)


def export_bioimageio(model: str | Path, out: str | Path, test_image: str | Path | None = None,
                      name: str | None = None) -> Path:
    """Write the segmenter folder ``model`` as a BioImage Model Zoo zip ``out``.

    Parameters
    ----------
    model : cellsynth segmenter folder (``segment train`` output).
    out : the ``.zip`` to write (atomically; refused if it exists).
    test_image : 2D/3D TIFF for the test tensors; each side is cropped to a multiple of the
        network's divisor. Default: a simulated nuclei scene, 64² (2D) or 16×64² (3D).
    name : model name in the package (default from the folder name).

    Returns
    -------
    Path of the zip.
    """
    seg = load_segmenter(model)
    out = Path(out)
    if out.suffix.lower() != ".zip":
        raise InputError(f"output '{out}' must end in .zip")
    if out.exists():
        raise InputError(f"output '{out}' exists; choose another --out")
    check_writable(out, folder=False)
    nd, div = seg.spatial_dims, [int(d) for d in seg.net.divisor]
    if test_image is not None:
        img = read_image(test_image)
        if img.ndim != nd:
            raise InputError(f"test image '{test_image}' is {img.ndim}D but the segmenter is {nd}D")
        crop = tuple(slice(0, (s // d) * d) for s, d in zip(img.shape, div))
        img = img[crop]
        if min(img.shape) == 0:
            raise InputError(f"test image '{test_image}' is smaller than the network's divisor {div}")
    else:
        size = [max(d, 16) for d in div[:-2]] + [max(64, d) for d in div[-2:]]
        img = default_test_image(nd, size)
    lo_p, hi_p = seg.percentiles
    axes_ids = list("zyx"[-nd:])

    # test tensors: raw input, and the model's output after the spec's scale_range preprocessing
    x = img.astype(np.float32)[None, None]
    lo, hi = np.percentile(x, [lo_p, hi_p], axis=tuple(range(2, 2 + nd)), keepdims=True)
    x_norm = ((x - lo) / (hi - lo + 1e-6)).astype(np.float32)
    wrapped = _Probabilities(seg.net.cpu().eval())
    with torch.no_grad():
        traced = torch.jit.trace(wrapped, torch.from_numpy(x_norm), check_trace=False)
        # the test output is what the shipped TorchScript computes (the U-Net's plain layers; cellsynth's
        # own inference path agrees to float rounding, tests/test_nn_inference.py)
        y = traced(torch.from_numpy(x_norm)).numpy().astype(np.float32)
    buf = io.BytesIO()
    torch.jit.save(traced, buf)
    files = {"weights.pt": buf.getvalue(), "test_input.npy": _npy(x), "test_output.npy": _npy(y),
             "cellsynth_config.json": json.dumps(seg.config, indent=2, default=str).encode()}
    pp = seg.config["postprocess"]
    rs = seg.config["inference"].get("rescale")
    files["README.md"] = _readme(name or Path(model).name, nd, lo_p, hi_p, pp, rs).encode()

    space_in = [{"type": "space", "id": a, "size": {"min": d, "step": d}} for a, d in zip(axes_ids, div)]
    space_out = [{"type": "space", "id": a, "size": {"tensor_id": "raw", "axis_id": a}} for a in axes_ids]
    rdf = {
        "type": "model", "format_version": FORMAT_VERSION,
        "name": name or f"cellsynth 3-class U-Net {nd}D {Path(model).name}",
        "description": f"{nd}D 3-class U-Net (background / boundary / interior probabilities) trained with cellsynth; "
                       f"instances by seeded watershed (see README)",
        "authors": [{"name": "cellsynth developers"}], "cite": [CITATION], "license": "BSD-3-Clause",
        "documentation": "README.md", "tags": ["cellsynth", "unet", "instance-segmentation", f"{nd}d", "nuclei"],
        "timestamp": datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat(),
        "attachments": [{"source": "cellsynth_config.json", "sha256": _sha256(files["cellsynth_config.json"])}],
        "inputs": [{
            "id": "raw", "description": "single-channel fluorescence image",
            "axes": [{"type": "batch"}, {"type": "channel", "channel_names": ["raw"]}, *space_in],
            "test_tensor": {"source": "test_input.npy", "sha256": _sha256(files["test_input.npy"])},
            "data": {"type": "float32"},
            "preprocessing": [{"id": "scale_range", "kwargs": {
                "axes": axes_ids, "min_percentile": float(lo_p), "max_percentile": float(hi_p), "eps": 1e-6}}],
        }],
        "outputs": [{
            "id": "probabilities", "description": "softmax over background, boundary, interior",
            "axes": [{"type": "batch"}, {"type": "channel", "channel_names": list(CLASSES)}, *space_out],
            "test_tensor": {"source": "test_output.npy", "sha256": _sha256(files["test_output.npy"])},
            "data": {"type": "float32"},
        }],
        "weights": {"torchscript": {"source": "weights.pt", "sha256": _sha256(files["weights.pt"]),
                                    "pytorch_version": torch.__version__.split("+")[0]}},
        "config": {"cellsynth": {"version": __version__, "postprocess": pp, "rescale": rs}},
    }
    files["rdf.yaml"] = yaml.safe_dump(rdf, sort_keys=False).encode()
    with atomic_path(out) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for fname, data in files.items():
                z.writestr(fname, data)
    return out


def _readme(name: str, nd: int, lo: float, hi: float, pp: dict, rs: dict | None = None) -> str:
    rescale = "" if rs is None else (
        f"\n\n## Scale\nThe model was trained on images resized so that their median object diameter is "
        f"{rs['target_diameter']} px; resize each image by {rs['target_diameter']} / (its median object diameter), "
        f"within {list(rs['limits'])}, before the model, and the probabilities back before the watershed. "
        f"cellsynth estimates the diameter of an unannotated image with the `size_model` of "
        f"`cellsynth_config.json` when there is one (ridge weights over the mean and standard deviation of every "
        f"channel of every level of the network's contracting path, Stringer et al. 2021), else from the "
        f"median connected component of the image's Otsu foreground.")
    return f"""# {name}

A {nd}D U-Net trained with cellsynth to predict, per pixel, the
probabilities of **background**, **object boundary** and **object interior** (Eschweiler et al. 2019, 2021).

- Input `raw`: one channel, normalised by the package's `scale_range` preprocessing to its
  ({lo}, {hi}) percentiles (as cellsynth does).
- Output `probabilities`: the softmax over the three classes, same size as the input.

## Post-processing to instances (not part of the model)
cellsynth turns the probabilities into instance labels with a seeded watershed: seeds are the
connected components of P(interior) > {pp.get('seed_threshold')} with at least {pp.get('min_seed_size')}
pixels; they are flooded ({pp.get('flood')}) inside the foreground 1 − P(background) >
{pp.get('foreground_threshold')}; objects under {pp.get('min_size')} pixels are removed. With cellsynth:
`cellsynth segment predict --model FOLDER ...` (the original model folder, config in
`cellsynth_config.json`).{rescale}

Licence: BSD-3-Clause.
"""
