"""Self-contained HTML report of a benchmark: tables + matplotlib figures as base64 PNGs.

No external files, scripts or fonts: the HTML opens anywhere. 3D data are shown by
their middle z slice.
"""
from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..intensity import DEFAULT_PERCENTILES, normalize_percentile
from ..overview import outline_overlay

METRIC_NAMES = {"ap50": "AP@0.5", "ap50_95": "AP@0.5:0.95", "dice": "Dice", "seg": "SEG"}
_COLORS = {"Real2Real": "#1f77b4", "Syn2Real-physics": "#ff7f0e", "Syn2Real-sketch": "#2ca02c",
           "Syn2Real-diffusion": "#d62728", "Mix2Real": "#9467bd", "classical": "#7f7f7f",
           "real": "#000000", "physics": "#ff7f0e", "sketch": "#2ca02c", "diffusion": "#d62728"}


def _plt():
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    return plt


def _png(fig) -> str:
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# --------------------------------------------------------------------------- figures
def fig_scores(arms: dict) -> str:
    plt = _plt()
    names = list(arms)
    fig, axes = plt.subplots(1, 4, figsize=(4.2 * 4, 3.6))
    for ax, m in zip(axes, METRIC_NAMES):
        data = [[v[m] for v in arms[a]["per_image"].values()] for a in names]
        bp = ax.boxplot(data, showfliers=False, patch_artist=True)
        for patch, a in zip(bp["boxes"], names):
            patch.set_facecolor(_COLORS.get(a, "#cccccc"))
            patch.set_alpha(0.4)
        rng = np.random.default_rng(0)
        for i, d in enumerate(data, 1):
            ax.scatter(i + rng.uniform(-0.15, 0.15, len(d)), d, s=8, color=_COLORS.get(names[i - 1], "k"))
        ax.set_xticks(range(1, len(names) + 1))
        ax.set_xticklabels([a.replace("Syn2Real-", "Syn2Real\n") for a in names], fontsize=7)
        ax.set_title(METRIC_NAMES[m])
        ax.set_ylim(-0.02, 1.02)
    fig.suptitle("per-image scores on the real test set", y=1.03)
    return _png(fig)


def fig_histograms(real: Sequence[np.ndarray], syn: dict[str, Sequence[np.ndarray]]) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    edges = np.linspace(-0.2, 1.2, 71)
    for name, imgs in [("real", real)] + list(syn.items()):
        if not len(imgs):
            continue
        v = np.concatenate([normalize_percentile(x, *DEFAULT_PERCENTILES, clip=(-0.2, 1.2)).ravel() for x in imgs])
        h, _ = np.histogram(v, bins=edges, density=True)
        ax.plot(0.5 * (edges[1:] + edges[:-1]), h, label=name, color=_COLORS.get(name), lw=2 if name == "real" else 1.3)
    ax.set_yscale("log")
    ax.set_xlabel("intensity (1st–99.8th percentile → 0–1)")
    ax.set_ylabel("density")
    ax.legend()
    ax.set_title("intensity histograms")
    return _png(fig)


def fig_spectra(image_metrics: dict) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    real_done = False
    for r, m in image_metrics.items():
        sp = m["spectrum"]
        if not real_done:
            ax.plot(sp["freq_cycles_per_px"], sp["real_log10_power"], color="k", lw=2, label="real")
            real_done = True
        ax.plot(sp["freq_cycles_per_px"], sp["synthetic_log10_power"], color=_COLORS.get(r), label=r)
    ax.set_xlabel("frequency (cycles/px)")
    ax.set_ylabel("log10 power")
    ax.legend()
    ax.set_title("radially averaged power spectra (normalised images)")
    return _png(fig)


def fig_montage(rows: list[tuple[str, list[np.ndarray]]], titles: list[list[str]] | None = None) -> str:
    """Rows of RGB panels with a row label."""
    plt = _plt()
    rows = [r for r in rows if r[1]]
    if not rows:
        return ""
    ncol = max(len(r[1]) for r in rows)
    fig, axes = plt.subplots(len(rows), ncol, figsize=(2.6 * ncol, 2.6 * len(rows)), squeeze=False)
    for i, (label, panels) in enumerate(rows):
        for j in range(ncol):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            for sp in ax.spines.values():
                sp.set_visible(False)
            if j < len(panels):
                ax.imshow(panels[j], interpolation="nearest")
                if titles and titles[i] and j < len(titles[i]):
                    ax.set_title(titles[i][j], fontsize=7)
            if j == 0:
                ax.set_ylabel(label, fontsize=8)
    fig.tight_layout()
    return _png(fig)


# --------------------------------------------------------------------------- html
def _table(header: list[str], rows: list[list], cls: str = "") -> str:
    h = "".join(f"<th>{html.escape(str(c))}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{c if isinstance(c, _Raw) else html.escape(_fmt(c))}</td>"
                                    for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><tr>{h}</tr>{body}</table>'


class _Raw(str):
    pass


def _fmt(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if not np.isfinite(v):
            return "–"
        return f"{v:.3g}" if abs(v) < 1e-2 or abs(v) >= 1e3 else f"{v:.3f}"
    if v is None:
        return "–"
    return str(v)


_CSS = """body{font-family:sans-serif;margin:2em;max-width:1300px;color:#222}
table{border-collapse:collapse;margin:0.6em 0 1.2em}td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}
th{background:#eee}td:first-child{text-align:left}img{max-width:100%}h2{margin-top:1.6em}
.small{font-size:0.85em;color:#555}"""


def _segmenter(report: dict) -> str:
    """The segmenter every arm trained and its budget, e.g. "stardist 0.9.2, 6 min per arm"."""
    seg = report.get("segmenter") or {}
    st = report.get("settings", {})
    name = " ".join(str(x) for x in (seg.get("name", st.get("segmenter", "unet")), seg.get("version")) if x)
    if seg.get("budget_s") is not None:
        return f"{name}, {seg['budget_s'] / 60:g} min of training per arm"
    return f"{name}, {st.get('steps')} steps per arm"


def _run(rec: dict | None) -> str:
    """An arm's training run, e.g. "; stardist: 412 steps, 300 s of training loop"."""
    if not rec:
        return ""
    return f"; {rec.get('segmenter')}: {rec.get('steps')} steps, {rec.get('train_loop_s', 0):g} s of training loop"


def render_html(report: dict, real_examples=(), syn_examples=None, predictions=None,
                real_images=(), syn_images=None) -> str:
    arms = report["arms"]
    syn_examples = syn_examples or {}
    predictions = predictions or {}
    syn_images = syn_images or {}
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>cellsynth Syn2Real benchmark</title>",
             f"<style>{_CSS}</style></head><body><h1>cellsynth Syn2Real benchmark</h1>"]
    st = report.get("settings", {})
    parts.append(f"<p class='small'>train images: {html.escape(str(st.get('train_images')))}; "
                 f"train masks: {html.escape(str(st.get('train_masks')))}; test: {html.escape(str(st.get('test')))}; "
                 f"preset: {html.escape(str(st.get('preset')))}; N = {st.get('n')} per renderer; "
                 f"segmenter {html.escape(_segmenter(report))}{'; quick' if st.get('quick') else ''}</p>")
    # main table
    rows = []
    for a, d in arms.items():
        s = d["summary"]
        rows.append([a] + [s[m] for m in METRIC_NAMES] + [s.get("precision50"), s.get("recall50"),
                                                         s.get("n_pred"), s.get("n_true"), s["n_images"],
                                                         d["training"] + _run(d.get("segmenter"))])
    parts.append("<h2>Scores (mean over test images)</h2>")
    parts.append(_table(["arm"] + list(METRIC_NAMES.values()) + ["precision@0.5", "recall@0.5", "objects found",
                                                                 "objects true", "images", "trained on"], rows))
    t = report.get("targets") or {}
    if t:
        parts.append("<p>" + "; ".join(f"{html.escape(k)}: {html.escape(_fmt(v))}" for k, v in t.items()) + "</p>")
    if arms:
        parts.append(f"<img src='{fig_scores(arms)}' alt='score distributions'>")
    # tests
    tests = report.get("tests") or []
    if tests:
        parts.append("<h2>Wilcoxon rank-sum tests (per-image AP@0.5, two-sided)</h2>")
        parts.append(_table(["arm A", "arm B", "median A", "median B", "statistic", "p-value"],
                            [[x["a"], x["b"], x["median_a"], x["median_b"], x["statistic"], x["p_value"]]
                             for x in tests]))
    # image realism
    im = report.get("image_metrics") or {}
    if im:
        parts.append("<h2>Synthetic vs real images</h2>")
        parts.append(_table(["renderer", "histogram Bhattacharyya", "histogram KL", "FID*", "spectrum |Δ log10 P|"],
                            [[r, m["histogram"]["bhattacharyya"], m["histogram"]["kl_real_synthetic"],
                              m["features"]["fid"], m["spectrum"]["log10_mae"]] for r, m in im.items()]))
        parts.append(f"<p>* {next(iter(im.values()))['features']['note']}</p>")
        parts.append(f"<img src='{fig_histograms(real_images, syn_images)}' alt='histograms'> "
                     f"<img src='{fig_spectra(im)}' alt='spectra'>")
    ch = report.get("renderer_choice")
    if ch:
        from .choose import choice_text
        parts.append("<h2>Choosing the renderer without labels</h2>")
        parts.append(f"<p>Distances of each renderer's images to {ch['real_images']} unannotated training images "
                     "(lower is closer) and, with three or more renderers, the Syn2Real segmenters' agreement "
                     "(mean AP@0.5 against the other renderers' segmentations, higher is better). The "
                     f"criterion <b>{html.escape(ch['criterion'])}</b>"
                     + (f" ({html.escape(ch['requested'])})" if ch.get("requested", ch["criterion"]) != ch["criterion"]
                        else "") + f" chose <b>{html.escape(choice_text(ch))}</b>; "
                     f"best by the test labels: <b>{html.escape(str(ch['best_by_labels']))}</b>.</p>")
        crit = list(ch["by_criterion"])
        parts.append(_table(["renderer"] + crit + ["AP@0.5 (test)"],
                            [[r] + [sc.get(c) for c in crit] + [ch["ap50_by_renderer"].get(r)]
                             for r, sc in ch["scores"].items()]))
        rows = [[c, b["chosen"], b["ap50"], b["gap_ap50"]] for c, b in ch["by_criterion"].items()]
        if "pooled_ap50" in ch:
            pool = ch.get("pool")
            rows.append(["Syn2Real-pooled (" + (pool["rule"] if pool else "every renderer") + ")",
                         ", ".join(pool["renderers"]) if pool else "all", ch["pooled_ap50"], ch["pooled_gap_ap50"]])
        parts.append(_table(["criterion", "chosen", "AP@0.5", "gap to best by labels"], rows))
    # montages
    mrows = [("real test (GT)", [outline_overlay(i, m, color=(0.1, 1.0, 0.1)) for _, i, m in real_examples])]
    for r, ex in syn_examples.items():
        mrows.append((f"synthetic {r}", [outline_overlay(i, m, color=(1.0, 0.2, 0.2)) for i, m in ex]))
    if mrows[0][1] or len(mrows) > 1:
        parts.append("<h2>Examples: real vs synthetic (label outlines)</h2>")
        parts.append(f"<img src='{fig_montage(mrows)}' alt='examples'>")
    prow = []
    for a, kept in predictions.items():
        panels, titles = [], []
        for name, img, _gt in real_examples:
            if name in kept:
                panels.append(outline_overlay(img, kept[name], color=(1.0, 0.8, 0.0)))
                titles.append(f"{name[:12]} AP@0.5 {arms[a]['per_image'][name]['ap50']:.2f}")
        prow.append((a, panels, titles))
    if prow:
        parts.append("<h2>Predictions on real test images</h2>")
        fig = fig_montage([(a, p) for a, p, _ in prow], [t for _, _, t in prow])
        parts.append(f"<img src='{fig}' alt='predictions'>")
    # fit
    fit = report.get("fit")
    if fit:
        parts.append("<h2>Fitted simulation (from unannotated training images)</h2>")
        summ = fit["summary"]
        parts.append(_table(["statistic", "value"], [[k, v] for k, v in summ.items()
                                                      if isinstance(v, (int, float)) and not isinstance(v, bool)]))
        import yaml
        parts.append("<pre>" + html.escape(yaml.safe_dump(fit["overlay"], sort_keys=False)) + "</pre>")
    if report.get("diffusion_model"):
        dm = report["diffusion_model"]
        parts.append(f"<p>diffusion model: {html.escape(dm['path'])} ({html.escape(dm['how'])})</p>")
    notes = report.get("notes") or []
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    tm = report.get("timings_s") or {}
    if tm:
        parts.append("<h2>Timings</h2>" + _table(["stage", "seconds"], [[k, v] for k, v in tm.items()]))
    # per-image scores
    if arms:
        names = list(next(iter(arms.values()))["per_image"])
        parts.append("<h2>Per-image AP@0.5</h2>")
        parts.append(_table(["image"] + list(arms),
                            [[n] + [arms[a]["per_image"].get(n, {}).get("ap50") for a in arms] for n in names]))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(path: str | Path, report: dict, **kw) -> Path:
    """Render :func:`render_html` and write it atomically."""
    from ..io import write_text
    return write_text(path, render_html(report, **kw).encode("utf-8"))
