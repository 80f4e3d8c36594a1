"""The model folder: one format for every trained model (diffusion, segmenter, GANs).

A model folder holds ``config.json`` (the format name and version, every constructor
argument, the training data's normalisation and description, the library versions) and
``weights.safetensors`` (tensors only: loading never unpickles code), in the spirit of
diffusers' ``save_pretrained`` / ``from_pretrained``. Several networks (e.g. a GAN's
generator and discriminator) share one weights file under ``"<name>."`` key prefixes.

Version policy: a reader accepts format versions ``1..FORMAT_VERSION`` of its own
format; a newer version, another format or a corrupt file is refused with one
:class:`~cellsynth.errors.InputError` line naming the folder, before anything is written.

>>> import tempfile, torch
>>> net = torch.nn.Linear(2, 1)
>>> d = save_model_folder(tempfile.mkdtemp(), "cellsynth-example", 1, {"args": {"n": 2}}, {"": net})
>>> cfg = read_model_config(d, "cellsynth-example", 1)
>>> cfg["format"], cfg["args"]
('cellsynth-example', {'n': 2})
>>> load_weights(d, {"": torch.nn.Linear(2, 1)}, what="example model")  # doctest: +ELLIPSIS
{'': Linear(...)}
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from .errors import ConfigError, InputError
from .io import atomic_path, write_json

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
CHECKPOINT_DIR = "checkpoint"


def library_versions() -> dict[str, str]:
    """Versions recorded in every model folder (informational; loading does not depend on them)."""
    import numpy as np

    from . import __version__
    return {"cellsynth": __version__, "torch": torch.__version__.split("+")[0], "numpy": np.__version__}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without CUDA is a :class:`ConfigError`."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but CUDA is not available; use --device cpu or auto")
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"device '{device}': choose auto, cpu or cuda")
    return torch.device(device)


def describe_training_data(files: Sequence[str | Path], folder: str | Path | None = None) -> dict:
    """A portable description of a training set: folder name, file count, a content hash.

    Never an absolute path: a model folder moves between machines. The hash covers the
    file names and bytes, so two folders with the same content give the same hash.
    """
    h = hashlib.sha256()
    files = sorted(Path(f) for f in files)
    for f in files:
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    name = Path(folder).name if folder is not None else (files[0].parent.name if files else "")
    return {"folder": name, "count": len(files), "sha256": h.hexdigest()[:16]}


def _flatten(modules: Mapping[str, torch.nn.Module | Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name, m in modules.items():
        state = m.state_dict() if isinstance(m, torch.nn.Module) else m
        for k, v in state.items():
            out[f"{name}.{k}" if name else k] = v.detach().cpu().contiguous()
    return out


def save_tensors(path: str | Path, tensors: Mapping[str, torch.Tensor], metadata: dict | None = None) -> Path:
    """Atomic safetensors write (also used for optimizer state in checkpoints)."""
    from safetensors.torch import save_file
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp),
                  metadata={k: str(v) for k, v in (metadata or {}).items()})
    return path


def save_model_folder(folder: str | Path, format: str, format_version: int, config: dict,
                      modules: Mapping[str, torch.nn.Module | Mapping[str, torch.Tensor]]) -> Path:
    """Write ``weights.safetensors`` then ``config.json`` into ``folder`` (each atomically).

    ``config`` gets ``format``, ``format_version`` and ``versions`` added in front.
    ``modules`` maps a key prefix to a network or a state dict; ``""`` means no prefix.
    """
    folder = Path(folder)
    save_tensors(folder / WEIGHTS_FILE, _flatten(modules), {"format": format, "format_version": format_version})
    full = {"format": format, "format_version": int(format_version), "versions": library_versions()}
    full.update({k: v for k, v in config.items() if k not in full})
    write_json(folder / CONFIG_FILE, full)
    return folder


def read_model_config(folder: str | Path, format: str | Sequence[str], format_version: int,
                      what: str | None = None) -> dict:
    """Read and check ``config.json``: folder exists, JSON valid, format ours, version supported."""
    folder = Path(folder)
    formats = (format,) if isinstance(format, str) else tuple(format)
    what = what or f"model '{folder}'"
    if not folder.is_dir():
        raise InputError(f"{what}: not a folder")
    cfg_file = folder / CONFIG_FILE
    if not cfg_file.is_file():
        raise InputError(f"{what}: missing {CONFIG_FILE}")
    try:
        cfg = json.loads(cfg_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{what}: {CONFIG_FILE} is not valid JSON ({str(e).splitlines()[0]})") from None
    if not isinstance(cfg, dict) or cfg.get("format") not in formats:
        found = cfg.get("format") if isinstance(cfg, dict) else None
        raise InputError(f"{what}: {CONFIG_FILE} is a {found!r} folder, not {' or '.join(map(repr, formats))}")
    v = cfg.get("format_version")
    if not isinstance(v, int) or not 1 <= v <= format_version:
        raise InputError(f"{what}: format version {v!r} is not supported (this cellsynth reads 1..{format_version})")
    if not (folder / WEIGHTS_FILE).is_file():
        raise InputError(f"{what}: missing {WEIGHTS_FILE}")
    return cfg


def load_tensors(path: str | Path, what: str) -> dict[str, torch.Tensor]:
    """Read a safetensors file; an unreadable one is one :class:`InputError` line."""
    from safetensors.torch import load_file
    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises several types on corrupt files
        raise InputError(f"{what}: {Path(path).name} is unreadable ({type(e).__name__}: {str(e)[:80]})") from None


def load_weights(folder: str | Path, modules: Mapping[str, torch.nn.Module], what: str | None = None,
                 file: str = WEIGHTS_FILE) -> Mapping[str, torch.nn.Module]:
    """Load ``weights.safetensors`` into ``modules`` (strictly: every key, every shape)."""
    folder = Path(folder)
    what = what or f"model '{folder}'"
    state = load_tensors(folder / file, what)
    for name, m in modules.items():
        prefix = f"{name}." if name else ""
        sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        try:
            m.load_state_dict(sub, strict=True)
        except RuntimeError as e:
            lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
            first = lines[1] if len(lines) > 1 else lines[0] if lines else ""
            raise InputError(f"{what}: weights do not match the architecture in {CONFIG_FILE} "
                             f"({first[:120]})") from None
    return modules


def config_error(what: str, e: Exception) -> InputError:
    """The one-line error for a ``config.json`` that parses but lacks or mistypes a key."""
    return InputError(f"{what}: {CONFIG_FILE} is incomplete or invalid ({type(e).__name__}: {e})")


def to_jsonable(x: Any) -> Any:
    """Tuples → lists, numpy scalars → Python numbers, so a config round-trips through JSON unchanged."""
    return json.loads(json.dumps(x, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


class ModelBase(torch.nn.Module):
    """A network whose constructor arguments are its saved config (diffusers' ``register_to_config``).

    Subclasses set ``format`` (e.g. ``"cellsynth-cgan"``) and ``format_version`` and take
    only JSON-safe keyword arguments; these are recorded as ``self.config``.
    ``save_folder`` writes them with the weights; ``from_folder`` is ``cls(**args)`` followed
    by a strict weight load. Extra entries (normalisation, training data, ...) go in ``meta``.

    >>> import tempfile
    >>> class Tiny(ModelBase):
    ...     format = "cellsynth-tiny"
    ...     def __init__(self, n: int = 2):
    ...         super().__init__()
    ...         self.lin = torch.nn.Linear(n, 1)
    >>> d = Tiny(n=3).save_folder(tempfile.mkdtemp(), meta={"note": "x"})
    >>> m = Tiny.from_folder(d)
    >>> m.config, m.meta["note"]
    ({'n': 3}, 'x')
    """

    format: str = "cellsynth-model"
    format_version: int = 1

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        import functools
        import inspect
        sig = inspect.signature(init)

        @functools.wraps(init)
        def wrapped(self, *args, **kwargs):
            if not hasattr(self, "_config_owner"):  # the outermost constructor records its arguments
                object.__setattr__(self, "_config_owner", cls)
                bound = sig.bind(self, *args, **kwargs)
                bound.apply_defaults()
                object.__setattr__(self, "config", to_jsonable(
                    {k: v for k, v in list(bound.arguments.items())[1:]
                     if sig.parameters[k].kind not in (inspect.Parameter.VAR_POSITIONAL,
                                                       inspect.Parameter.VAR_KEYWORD)}))
            init(self, *args, **kwargs)

        cls.__init__ = wrapped

    meta: dict = {}

    def save_folder(self, folder: str | Path, meta: dict | None = None) -> Path:
        """Write ``config.json`` (class, args, meta) and ``weights.safetensors`` into ``folder``."""
        cfg = {"class": type(self).__name__, "args": self.config}
        cfg.update(to_jsonable(meta or {}))
        return save_model_folder(folder, self.format, self.format_version, cfg, {"": self})

    @classmethod
    def from_folder(cls, folder: str | Path, device: str | torch.device = "cpu", what: str | None = None):
        """Build from ``config.json`` and load the weights strictly; bad folders are one-line errors."""
        what = what or f"{cls.format.removeprefix('cellsynth-')} model '{folder}'"
        cfg = read_model_config(folder, cls.format, cls.format_version, what)
        try:
            if cfg.get("class") != cls.__name__:
                raise ValueError(f"class {cfg.get('class')!r} is not {cls.__name__!r}")
            net = cls(**cfg["args"])
        except (KeyError, TypeError, ValueError) as e:
            raise config_error(what, e) from None
        load_weights(folder, {"": net}, what)
        net.meta = {k: v for k, v in cfg.items() if k not in ("class", "args")}
        return net.eval().to(resolve_device(device))
