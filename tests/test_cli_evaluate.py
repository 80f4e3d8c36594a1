"""``cellsynth evaluate images|segmentation`` through cellsynth.cli.main on tiny TIFFs."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from cellsynth.cli import main
from cellsynth.io import write_tiff


def blobs(rng, shape, n=4):
    lab = np.zeros(shape, np.uint16)
    for i in range(1, n + 1):
        c = [rng.integers(s // 4, s - s // 4) for s in shape]
        idx = tuple(slice(max(x - 3, 0), x + 3) for x in c)
        lab[idx] = i
    return lab


def render(lab, rng):
    img = ndimage.gaussian_filter((lab > 0).astype(float), 1.0) * 200 + 10
    return (img + rng.normal(0, 5, lab.shape)).clip(0, 255).astype(np.uint8)


@pytest.fixture
def seg_dirs(tmp_path, rng):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    for k in range(3):
        lab = blobs(rng, (32, 32))
        write_tiff(gt / f"img{k}.tif", lab)
        write_tiff(pred / f"img{k}.tif", lab if k else np.zeros_like(lab))  # one image fully missed
    return gt, pred


def test_segmentation_table_and_json(seg_dirs, tmp_path, capsys):
    gt, pred = seg_dirs
    out = tmp_path / "res.json"
    assert main(["evaluate", "segmentation", "--gt", str(gt), "--pred", str(pred), "--json", str(out),
                 "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "AP@0.5" in text and "SEG" in text and "Dice" in text
    res = json.loads(out.read_text())
    assert res["n_images"] == 3
    n0 = res["per_image"]["img0"]["n_true"]
    n_all = sum(v["n_true"] for v in res["per_image"].values())
    # pooled: image 0 contributes n0 false negatives, the others are perfect
    assert res["ap50"] == pytest.approx((n_all - n0) / n_all)
    assert res["seg"] == pytest.approx((n_all - n0) / n_all)
    assert res["per_image"]["img1"]["dice"] == 1.0 and res["per_image"]["img0"]["dice"] == 0.0
    assert len(res["per_threshold"]) == 10 and res["per_threshold"][0]["thresh"] == 0.5
    assert res["per_threshold"][0]["fn"] == n0 and res["per_threshold"][0]["fp"] == 0


def test_segmentation_custom_thresholds_and_dataset_folder(tmp_path, rng, capsys):
    ds = tmp_path / "ds"
    lab = blobs(rng, (8, 24, 24), 3)  # 3D
    write_tiff(ds / "images" / "a.tif", render(lab, rng))
    write_tiff(ds / "masks" / "a.tif", lab)
    pred = tmp_path / "pred"
    write_tiff(pred / "a.tif", lab)
    assert main(["evaluate", "segmentation", "--gt", str(ds), "--pred", str(pred), "--thresholds", "0.3",
                 "0.9", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert " 0.30 " in text and " 0.90 " in text and " 0.50 " not in text.split("AP@")[0]


def test_segmentation_missing_pair_errors_before_output(seg_dirs, tmp_path, capsys):
    gt, pred = seg_dirs
    (pred / "img2.tif").unlink()
    out = tmp_path / "res.json"
    assert main(["evaluate", "segmentation", "--gt", str(gt), "--pred", str(pred), "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no prediction of the same name" in err and "img2" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_segmentation_bad_inputs(seg_dirs, tmp_path, capsys):
    gt, pred = seg_dirs
    write_tiff(pred / "img1.tif", np.zeros((16, 16), np.uint16))
    assert main(["evaluate", "segmentation", "--gt", str(gt), "--pred", str(pred)]) == 2
    assert "shape" in capsys.readouterr().err
    write_tiff(pred / "img1.tif", np.zeros((32, 32), np.float32))
    assert main(["evaluate", "segmentation", "--gt", str(gt), "--pred", str(pred)]) == 2
    assert "integer labels" in capsys.readouterr().err
    assert main(["evaluate", "segmentation", "--gt", str(tmp_path / "nope"), "--pred", str(pred)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_images_unpaired_and_paired(tmp_path, rng, capsys):
    real, syn = tmp_path / "real", tmp_path / "syn"
    for k in range(4):
        lab = blobs(rng, (32, 32))
        img = render(lab, rng)
        write_tiff(real / f"s{k}.tif", img)
        # synthetic: float image of the same scene, different scale; one extra unpaired file
        noisy = img.astype(np.float32) / 255 + rng.normal(0, 0.02, img.shape)
        write_tiff(syn / f"s{k}.tif", noisy.astype(np.float32))
    write_tiff(syn / "extra.tif", rng.random((40, 40)).astype(np.float32))
    out = tmp_path / "img.json"
    assert main(["evaluate", "images", "--real", str(real), "--synthetic", str(syn), "--json", str(out),
                 "--no-progress", "--kid-subsets", "5"]) == 0
    text = capsys.readouterr().out
    assert "NOT Inception" in text and "FID" in text and "paired (4 files" in text
    res = json.loads(out.read_text())
    assert res["n_real"] == 4 and res["n_synthetic"] == 5
    assert res["paired"]["n_pairs"] == 4
    assert res["paired"]["zncc"]["mean"] > 0.9  # same scenes after normalisation
    assert res["histogram"]["bhattacharyya"] >= 0 and np.isfinite(res["features"]["fid"])
    assert "NOT Inception" in res["features"]["note"]
    assert len(res["spectrum"]["real_log10_power"]) == len(res["spectrum"]["freq_cycles_per_px"])
    assert res["paired"]["profile_zncc"]["mean"] > 0.9


def test_images_identical_sets_score_perfectly(tmp_path, rng, capsys):
    real = tmp_path / "real"
    for k in range(3):
        write_tiff(real / f"s{k}.tif", render(blobs(rng, (6, 24, 24)), rng))  # 3D
    out = tmp_path / "img.json"
    assert main(["evaluate", "images", "--real", str(real), "--synthetic", str(real), "--json", str(out),
                 "--no-progress", "--kid-subsets", "3"]) == 0, capsys.readouterr().err
    res = json.loads(out.read_text())
    assert res["histogram"]["bhattacharyya"] == pytest.approx(0.0, abs=1e-9)
    assert res["features"]["fid"] == pytest.approx(0.0, abs=1e-6)
    assert res["spectrum"]["log10_mae"] == 0.0
    assert res["paired"]["ssim"]["mean"] == pytest.approx(1.0)
    assert res["paired"]["profile_zncc"]["mean"] == pytest.approx(1.0)


def test_images_mixed_dims_and_nan_error(tmp_path, rng, capsys):
    real, syn = tmp_path / "real", tmp_path / "syn"
    write_tiff(real / "a.tif", rng.random((16, 16)).astype(np.float32))
    write_tiff(syn / "b.tif", rng.random((4, 16, 16)).astype(np.float32))
    out = tmp_path / "x.json"
    assert main(["evaluate", "images", "--real", str(real), "--synthetic", str(syn), "--json", str(out)]) == 2
    assert "2D or all 3D" in capsys.readouterr().err and not out.exists()
    bad = rng.random((16, 16)).astype(np.float32)
    bad[0, 0] = np.nan
    write_tiff(syn / "b.tif", bad)
    assert main(["evaluate", "images", "--real", str(real), "--synthetic", str(syn)]) == 2
    assert "NaN" in capsys.readouterr().err


def test_images_inception_weights_never_downloaded(tmp_path, rng, capsys):
    real = tmp_path / "real"
    write_tiff(real / "a.tif", rng.random((16, 16)).astype(np.float32))
    assert main(["evaluate", "images", "--real", str(real), "--synthetic", str(real),
                 "--inception-weights", str(tmp_path / "none.safetensors")]) == 2
    assert "nothing is downloaded" in capsys.readouterr().err


@pytest.mark.parametrize("shape", [(32, 32), (6, 24, 24)])
def test_cli_and_benchmark_report_the_same_numbers(tmp_path, rng, capsys, shape):
    """`cellsynth evaluate images|segmentation` and the Syn2Real benchmark share one pipeline."""
    from cellsynth.benchmark import syn2real as bm
    from cellsynth.io import read_image, read_labels

    real, syn, gt, pred = (tmp_path / d for d in ("real", "syn", "gt", "pred"))
    for k in range(3):
        lab = blobs(rng, shape)
        write_tiff(real / f"s{k}.tif", render(lab, rng))
        write_tiff(syn / f"t{k}.tif", (render(blobs(rng, shape), rng) / 3.0).astype(np.float32))
        write_tiff(gt / f"s{k}.tif", lab)
        write_tiff(pred / f"s{k}.tif", np.where(lab == 1, 0, lab).astype(np.uint16))  # object 1 missed
    out = tmp_path / "img.json"
    assert main(["evaluate", "images", "--real", str(real), "--synthetic", str(syn), "--json", str(out),
                 "--no-progress"]) == 0
    cli = json.loads(out.read_text())
    bench = bm.image_metrics([read_image(p) for p in sorted(real.glob("*.tif"))],
                             [read_image(p) for p in sorted(syn.glob("*.tif"))])
    for key in ("bhattacharyya", "hellinger", "kl_real_synthetic"):
        assert cli["histogram"][key] == pytest.approx(bench["histogram"][key], rel=1e-12, abs=1e-15)
    assert cli["features"]["fid"] == pytest.approx(bench["features"]["fid"], rel=1e-9)
    assert cli["spectrum"]["log10_mae"] == pytest.approx(bench["spectrum"]["log10_mae"], rel=1e-12)
    assert cli["histogram"]["bhattacharyya"] > 0.01  # a real difference, not two zeros

    out = tmp_path / "seg.json"
    assert main(["evaluate", "segmentation", "--gt", str(gt), "--pred", str(pred), "--json", str(out),
                 "--no-progress"]) == 0
    per_cli = json.loads(out.read_text())["per_image"]
    pairs = [(p.stem, real / p.name, p) for p in sorted(gt.glob("*.tif"))]
    preds = {p.stem: read_labels(p) for p in sorted(pred.glob("*.tif"))}
    order = iter(sorted(preds))  # score_arm predicts the pairs in order
    per_bench, _ = bm.score_arm(lambda img: preds[next(order)], pairs, progress=False)
    assert set(per_bench) == set(per_cli)
    for name, b in per_bench.items():
        for key in bm.METRICS:
            assert per_cli[name][key] == pytest.approx(b[key], nan_ok=True)
        assert b["ap50"] < 1.0  # the missed object counts
