"""Scene simulation (numpy/scipy/scikit-image only): foreground -> positions -> structures.

``simulate_scene(cfg, rng)`` is the one entry point; the same ``SceneConfig`` and the same
seeded ``numpy.random.Generator`` give an identical Scene, in 2D (YX) and 3D (ZYX).
"""
from __future__ import annotations

import numpy as np

from cellsynth.config import SceneConfig, config_to_dict
from cellsynth.errors import ConfigError
from cellsynth.scene import Scene
from cellsynth.scene import relabel_consecutive as _relabel

__all__ = ["simulate_scene", "condition_scene"]


def relabel_consecutive(labels: np.ndarray):
    """:func:`cellsynth.scene.relabel_consecutive`, skipped (cheaply) when already 1..N."""
    present = np.bincount(labels.ravel()) > 0 if labels.size else np.zeros(1, bool)
    if present[1:].all() and labels.dtype in (np.uint16, np.uint32):
        return labels, np.arange(1, len(present), dtype=np.int64)
    return _relabel(labels)


def simulate_scene(cfg: SceneConfig, rng: np.random.Generator) -> Scene:
    """Simulate one annotated scene.

    Steps: the specimen foreground (:mod:`.foreground`), then by ``cfg.kind``:

    - ``"nuclei"``: positions (:mod:`.placement`) -> nuclei (:mod:`.nuclei`), class
      ``nuclei.class_name`` ("nucleus"); ``layers`` (every object whole) when
      ``nuclei.allow_overlap``.
    - ``"membranes"``: positions -> weighted Voronoi cells (:mod:`.membranes`), class "cell".
    - ``"organelles"``: nucleus–Golgi pairs (:mod:`.organelles`), classes "nucleus"/"golgi".

    With ``cfg.conditions`` (per-image records from ``cellsynth fit``) one record is drawn
    first and the scene is conditioned on it (:func:`condition_scene`); it is kept in
    ``params["condition"]`` for the renderers (per-image intensities).

    Labels are consecutive 1..N (uint16; uint32 past 65535), every object inside the
    foreground. ``params`` holds the scene config (``"scene"``) and the achieved counts
    (``"achieved"``: requested vs placed objects).
    """
    if not isinstance(cfg, SceneConfig):
        raise ConfigError(f"simulate_scene needs a SceneConfig, got {type(cfg).__name__}")
    if not isinstance(rng, np.random.Generator):
        raise ConfigError(f"simulate_scene needs a numpy.random.Generator, got {type(rng).__name__}")
    from cellsynth.simulate.foreground import make_foreground
    from cellsynth.simulate.placement import draw_count, place_points

    shape = tuple(cfg.shape)
    fg = make_foreground(cfg.foreground, shape, rng)
    layers = None
    achieved: dict = {"foreground_voxels": int(fg.sum())}
    condition = None
    if cfg.conditions:
        cfg, condition = condition_scene(cfg, int(fg.sum()), rng)
    if cfg.kind in ("nuclei", "membranes"):
        n = draw_count(cfg.placement, rng)
        points = place_points(cfg.placement, fg, rng, n=n)
        achieved.update(requested=n, points=int(len(points)))
        if cfg.kind == "nuclei":
            from cellsynth.simulate.nuclei import make_nuclei

            labels, layers = make_nuclei(fg, points, cfg.nuclei, rng)
            cls = cfg.nuclei.class_name
        else:
            from cellsynth.simulate.membranes import tessellate

            labels = tessellate(fg, points, cfg.membranes, rng)
            cls = "cell"
        labels = np.where(fg, labels, 0)
        labels, old = relabel_consecutive(labels)
        if layers is not None:  # same renumbering; objects are clipped to fg already
            lut = np.zeros(int(max(old.max(initial=0), layers.max(initial=0))) + 1, labels.dtype)
            lut[old] = np.arange(1, len(old) + 1)
            layers = lut[layers]
            layers = layers[layers.reshape(len(layers), -1).any(1)]
        classes = {i: cls for i in range(1, len(old) + 1)}
    elif cfg.kind == "organelles":
        from cellsynth.simulate.organelles import draw_pairs, nucleus_golgi

        n = draw_pairs(cfg.organelles, rng)
        labels, cls_old = nucleus_golgi(fg, cfg.organelles, rng, n_pairs=n)
        labels = np.where(fg, labels, 0)
        labels, old = relabel_consecutive(labels)
        classes = {i + 1: cls_old[int(o)] for i, o in enumerate(old)}
        achieved.update(requested=n, pairs=sum(1 for c in classes.values() if c == "nucleus"))
    else:  # pragma: no cover - pydantic guards the literal
        raise ConfigError(f"config key 'scene.kind' = {cfg.kind!r}: unknown kind")
    achieved["objects"] = int(len(old))
    for c in sorted(set(classes.values())):
        achieved[f"n_{c}"] = sum(1 for v in classes.values() if v == c)
    params = {"scene": config_to_dict(cfg), "achieved": achieved}
    if condition is not None:
        params["condition"] = condition
    return Scene(labels=labels, foreground=fg, spacing=tuple(cfg.spacing), classes=classes,
                 params=params, layers=layers, wall_thickness=cfg.membranes.wall_thickness)


def condition_scene(cfg: SceneConfig, foreground_voxels: int, rng: np.random.Generator):
    """Draw one of ``cfg.conditions`` and return ``(conditioned SceneConfig, record dict)``.

    The record's count (density × foreground voxels, as a fixed ``n_points``), radius range,
    nearest-neighbour spacing and touching fraction replace the config's ranges; contacts
    are placed 1.8 × the record's geometric-mean radius apart (nuclei slightly pressed
    together, so ``nuclei.max_occlusion`` should allow ~0.1–0.3). ``nuclei.elastic`` (px) is
    scaled by that radius over the geometric mean of ``nuclei.radius``, so small nuclei
    are not torn apart by a deformation meant for the average one.

    Examples
    --------
    >>> import numpy as np
    >>> from cellsynth.config import SceneConfig
    >>> cfg = SceneConfig(conditions=[{"density": 1e-3, "radius": (3.0, 5.0), "touching": 0.5}])
    >>> c, rec = condition_scene(cfg, 10000, np.random.default_rng(0))
    >>> c.placement.n_points, c.nuclei.radius, round(c.placement.contact_distance, 2)
    ((10, 10), (3.0, 5.0), 6.97)
    """
    rec = cfg.conditions[int(rng.integers(len(cfg.conditions)))]
    n = max(1, int(round(rec.density * foreground_voxels)))
    r_mid = float(np.sqrt(rec.radius[0] * rec.radius[1]))
    placement = cfg.placement.model_copy(update={
        "n_points": (n, n), "min_distance": float(rec.nn_distance), "touching": float(rec.touching),
        "contact_distance": 1.8 * r_mid})
    # the elastic deformation is in px: keep it relative to the nucleus size
    r_cfg = float(np.sqrt(cfg.nuclei.radius[0] * cfg.nuclei.radius[1]))
    nuclei = cfg.nuclei.model_copy(update={"radius": tuple(rec.radius),
                                           "elastic": cfg.nuclei.elastic * r_mid / r_cfg})
    out = cfg.model_copy(update={"placement": placement, "nuclei": nuclei})
    return out, config_to_dict(rec)
