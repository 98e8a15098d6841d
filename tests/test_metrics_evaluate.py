"""The metrics stage end to end on a tiny dataset: n/a without weights (with the reason), values with
local (random, tests only) weights, an error under ``missing_weights: fail``, no partial output."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision
from PIL import Image

from conftest import trust_weights
from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.contracts.manifest import read_manifest, write_manifest
from sonodiff.contracts.metrics_record import read_fid_stats, read_metrics_record
from sonodiff.errors import InputError
from sonodiff.io import write_json
from sonodiff.metrics.evaluate import compute_metrics, write_real_fid_stats
from sonodiff.report.tables import make_tables

SIZE = 32


def _png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Prepared dataset (4 val + 2 train images, labels 1-2 and sector 3) and 8 val samples + 2 train."""
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    data = root / "data"
    sector = np.zeros((SIZE, SIZE), np.uint8)
    sector[2:, 2:-2] = 255
    _png(data / "sector.png", sector)
    rows = []
    for i in range(6):
        lab = np.where(sector > 0, 3, 0).astype(np.uint8)
        lab[6:16, 4:14], lab[18:28, 16:28] = 1, 2
        img = (rng.rayleigh(40, (SIZE, SIZE)) * (lab != 0) * np.where(lab == 2, 2.0, 1.0)).clip(0, 255)
        sid = f"p{i // 2}_s{i}"
        _png(data / "images" / f"{sid}.png", img)
        _png(data / "labels" / f"{sid}.png", lab)
        rows.append({"sample_id": sid, "patient_id": f"p{i // 2}", "split": "val" if i < 4 else "train",
                     "view": "", "phase": "", "slice_index": 0, "image": str(data / "images" / f"{sid}.png"),
                     "label": str(data / "labels" / f"{sid}.png"), "source_file": ""})
    write_manifest(pd.DataFrame(rows), data / "manifest.csv")
    write_json(data / "dataset.json", {
        "name": "tiny", "format": "camus", "img_size": SIZE,
        "labels": {"background": 0, "a": 1, "b": 2, "sector": 3}, "structures": {"a": 1, "b": 2},
        "sector_id": 3, "probe": {"type": "linear"}, "counts": {"train": 2, "val": 4, "test": 0}})
    samples = root / "samples"
    srows = []
    for k in range(10):
        src = rows[k % 4] if k < 8 else rows[4 + k % 2]  # 8 samples of val maps, 2 of train maps
        real = np.asarray(Image.open(src["image"]))
        img = np.clip(real.astype(float) * 0.9 + rng.normal(0, 10, real.shape), 0, 255)
        sid = src["sample_id"] if k < 4 else f"{src['sample_id']}_aug{k}"  # 4 undeformed val maps, the pairs
        _png(samples / "images" / f"{sid}.png", img)
        srows.append({"sample_id": sid, "image": str(samples / "images" / f"{sid}.png"), "label": src["label"],
                      "real_image": src["image"], "source_sample_id": src["sample_id"],
                      "patient_id": src["patient_id"], "split": src["split"], "seed": k})
    write_manifest(pd.DataFrame(srows), samples / "manifest.csv")
    return root


@pytest.fixture(scope="module")
def local_weights(tmp_path_factory):
    """Randomly initialised Inception and AlexNet state dicts in local files: tests only."""
    root = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    inception = torchvision.models.inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
    torch.save(inception.state_dict(), root / "pt_inception-2015-12-05-6726825d.pth")
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), root / "alexnet-owt-7be5be79.pth")
    return root


def job_cfg(mode="na", weights=None):
    return {"seed": 0, "device": "cpu", "dataset": "tiny", "variant": "bmaps",
            "metrics": {"fid_dims": [64, 192], "weights": weights or {"inception": None, "alexnet": None},
                        "missing_weights": mode, "bootstrap": 30, "batch_size": 4, "dynamic_range_db": 60}}


@pytest.fixture
def empty_hub(tmp_path):
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield
    torch.hub.set_dir(old)


def run(tiny, cfg, out_dir):
    stats = out_dir / "real_fid_stats.npz"
    dataset = PreparedDataset.in_dir(tiny / "data")
    write_real_fid_stats(dataset, cfg, stats, progress=False)
    return compute_metrics(tiny / "samples" / "manifest.csv", dataset, stats, cfg, out_dir / "bmaps.json",
                           out_dir / "bmaps_values.npz", progress=False)


def physics_row(res, metric, region, quantity):
    return next(r for r in res["physics"]["rows"] if (r["metric"], r["region"], r["quantity"]) == (metric, region, quantity))


def test_without_weights_na_cells_carry_the_reason(tiny, tmp_path, empty_hub):
    res = run(tiny, job_cfg("na"), tmp_path)
    assert (tmp_path / "bmaps.json").is_file()
    stats = read_fid_stats(tmp_path / "real_fid_stats.npz")
    assert str(stats["status"]) == "n/a" and "pt_inception" in str(stats["reason"])
    counts = res["counts"]
    assert counts["synthetic_images"] == 8 and counts["real_images"] == 4  # val rows only
    assert counts["real_patients"] == counts["synthetic_patients"] == 2 and counts["pairs"] == 4
    for dim in ("64", "192"):
        for kind in ("fid", "kid"):
            assert res[kind][dim]["status"] == "n/a" and "pt_inception-2015-12-05-6726825d.pth" in res[kind][dim]["reason"]
    assert res["paired"]["lpips"]["mean"]["status"] == "n/a"
    assert "alexnet-owt-7be5be79.pth" in res["paired"]["lpips"]["mean"]["reason"]
    ssim = res["paired"]["ssim"]["mean"]
    assert ssim["status"] == "ok" and 0 < ssim["value"] < 1 and ssim["ci"][0] <= ssim["ci"][1]
    assert res["paired"]["psnr"]["range"]["status"] == "ok"
    l1 = physics_row(res, "depth profile", "sector", "L1 synthetic vs real")
    assert l1["status"] == "ok" and l1["n_clusters"] == [2, 2]   # synthetic and real images drawn by patient
    assert {r["region"] for r in res["physics"]["rows"] if r["metric"] == "intensity W1"} == {"a", "b", "sector"}
    assert read_metrics_record(tmp_path / "bmaps.json")["counts"]["real_images"] == 4

    # the tables are written with n/a cells and the reason
    diff = tmp_path / "differences.json"
    write_json(diff, {"dataset": "tiny", "reference": "bmaps", "sign": "", "counts": {}, "variants": {}})
    outputs = {t: {f: tmp_path / f"{t}.{f}" for f in ("csv", "md", "tex")} for t in ("fid", "paired", "physics")}
    make_tables([tmp_path / "bmaps.json"], [diff], {"tiny": "camus"}, {"bmaps": 0.97}, outputs)
    fid_md = (tmp_path / "fid.md").read_text()
    assert "n/a [1]" in fid_md and "pt_inception-2015-12-05-6726825d.pth" in fid_md
    assert "0.204" in fid_md  # the published CAMUS B-maps value beside ours


def trusted(monkeypatch, local_weights) -> dict:
    """The config's local weight files, their hashes made the expected ones for the test."""
    weights = {"inception": str(local_weights / "pt_inception-2015-12-05-6726825d.pth"),
               "alexnet": str(local_weights / "alexnet-owt-7be5be79.pth")}
    for key, path in weights.items():
        trust_weights(monkeypatch, key, path)
    return weights


def test_with_local_weights_every_metric_has_a_value(tiny, tmp_path, local_weights, empty_hub, monkeypatch):
    weights = trusted(monkeypatch, local_weights)
    res = run(tiny, job_cfg("fail", weights), tmp_path)
    for dim in ("64", "192"):
        fig = res["fid"][dim]
        assert fig["status"] == "ok" and fig["estimate"] > 0 and fig["n"] == [8, 4]
        assert fig["ci"][0] <= fig["value"] <= fig["ci"][1]   # the bias-corrected interval holds its estimate
        assert "4 real images < " in fig["warning"]
        assert res["kid"][dim]["status"] == "ok"
    lpips = res["paired"]["lpips"]["mean"]
    assert lpips["status"] == "ok" and lpips["value"] > 0
    assert res["weights"]["inception"]["available"]


def test_fail_without_weights_stops_and_leaves_nothing(tiny, tmp_path, empty_hub):
    with pytest.raises(InputError, match="pt_inception-2015-12-05-6726825d.pth"):
        run(tiny, job_cfg("fail"), tmp_path)
    assert not any(tmp_path.iterdir())


def test_stats_from_other_weights_are_refused(tiny, tmp_path, local_weights, empty_hub, monkeypatch):
    weights = trusted(monkeypatch, local_weights)
    cfg = job_cfg("fail", weights)
    stats = tmp_path / "real_fid_stats.npz"
    dataset = PreparedDataset.in_dir(tiny / "data")
    write_real_fid_stats(dataset, cfg, stats, progress=False)
    other = copy.deepcopy(cfg)
    other_file = tmp_path / "other.pth"
    torch.save(torch.load(weights["inception"], weights_only=True), other_file)
    with open(other_file, "ab") as handle:
        handle.write(b"\0")  # same tensors, other file
    other["metrics"]["weights"]["inception"] = str(other_file)
    trust_weights(monkeypatch, "inception", other_file)  # a file that passes its check, not the stats'
    with pytest.raises(InputError, match="rerun real_fid_stats"):
        compute_metrics(tiny / "samples" / "manifest.csv", dataset, stats, other, tmp_path / "bmaps.json",
                        tmp_path / "bmaps_values.npz", progress=False)
    assert not (tmp_path / "bmaps.json").exists()


def test_unconditional_samples_get_fid_and_depth_profile_only(tiny, tmp_path, empty_hub):
    samples = read_manifest(tiny / "samples" / "manifest.csv")
    samples["label"], samples["real_image"], samples["source_sample_id"], samples["split"] = "", "", "", "val"
    samples["patient_id"] = ""
    write_manifest(samples, tmp_path / "samples.csv")
    cfg = job_cfg("na")
    stats = tmp_path / "real_fid_stats.npz"
    dataset = PreparedDataset.in_dir(tiny / "data")
    write_real_fid_stats(dataset, cfg, stats, progress=False)
    res = compute_metrics(tmp_path / "samples.csv", dataset, stats, cfg, tmp_path / "out.json",
                          tmp_path / "out_values.npz", progress=False)
    assert res["counts"]["synthetic_images"] == 10 and res["counts"]["pairs"] == 0
    assert res["counts"]["synthetic_patients"] is None
    assert "undeformed label map" in res["paired"]["ssim"]["mean"]["reason"]
    l1 = physics_row(res, "depth profile", "sector", "L1 synthetic vs real")
    assert l1["status"] == "ok" and l1["n_clusters"] == [10, 2]   # synthetic images one by one, real by patient
    assert [r["metric"] for r in res["physics"]["rows"]] == ["depth profile", "speckle SNR, intensity W1, gCNR"]
