"""Segmentation check, training: a tiny UNet learns an easy shape; resume is exact; one whole job
(sets -> training -> test Dice -> metrics, model, predictions) and its table and figure."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from test_segment import SPLITS, make_augment_and_samples, make_prepared

TINY = {"channels": [8, 16, 32], "strides": [2, 2], "num_res_units": 1, "batch_size": 8,
        "lr": 1.0e-2, "seed": 0, "sources": ["real"]}


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_tiny_unet_segments_bright_disks_on_noise(tmp_path):
    from sonodiff.segment.data import PngSegmentationSet, build_sets
    from sonodiff.segment.evaluate import dice_per_structure
    from sonodiff.segment.train import fit, load_segmenter, predict

    splits = {f"p{i}": "train" for i in range(24)} | {"v0": "val", "v1": "val", "t0": "test", "t1": "test",
                                                     "t2": "test", "t3": "test"}
    manifest = make_prepared(tmp_path, splits, per_patient=2, kind="disks")
    sets = build_sets(manifest, "real")
    data = {k: PngSegmentationSet(v, 3, 32) for k, v in sets.items()}
    structures = {"disk": {"label": "disk", "ids": [1]}}
    seg = TINY | {"epochs": 12}
    result = fit(data["train"], data["val"], structures, seg, torch.device("cpu"), tmp_path / "model.pt",
                 progress=False)
    assert len(result["history"]) == 12
    assert result["best_val_dice"] == max(r["val_dice"] for r in result["history"])
    model, ckpt = load_segmenter(tmp_path / "model.pt")
    assert ckpt["epoch"] == result["best_epoch"] and ckpt["num_classes"] == 3
    pred, true = predict(model, data["test"], torch.device("cpu"), 8)
    dice = dice_per_structure(pred, true, structures)
    assert dice.shape == (8, 1)
    assert np.nanmean(dice) > 0.9


def test_resume_continues_exactly(tmp_path):
    from sonodiff.segment.data import PngSegmentationSet, build_sets
    from sonodiff.segment.train import fit

    manifest = make_prepared(tmp_path, SPLITS, per_patient=2, kind="disks")
    sets = build_sets(manifest, "real")
    data = {k: PngSegmentationSet(v, 3, 32) for k, v in sets.items()}
    structures = {"disk": {"label": "disk", "ids": [1]}}
    cpu = torch.device("cpu")
    fresh = fit(data["train"], data["val"], structures, TINY | {"epochs": 3}, cpu, tmp_path / "a.pt",
                checkpoint_dir=tmp_path / "a", progress=False)
    fit(data["train"], data["val"], structures, TINY | {"epochs": 2}, cpu, tmp_path / "b.pt",
        checkpoint_dir=tmp_path / "b", progress=False)
    resumed = fit(data["train"], data["val"], structures, TINY | {"epochs": 3}, cpu, tmp_path / "b.pt",
                  checkpoint_dir=tmp_path / "b", progress=False)
    assert resumed["history"] == fresh["history"]
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    # other settings: the old checkpoint is ignored, not resumed
    other = fit(data["train"], data["val"], structures, TINY | {"epochs": 1, "lr": 1e-3}, cpu,
                tmp_path / "c.pt", checkpoint_dir=tmp_path / "b", progress=False)
    assert len(other["history"]) == 1


def test_whole_job_then_table_and_figure(tmp_path):
    from sonodiff.report.segmentation_table import write_segmentation_table
    from sonodiff.segment.figures import segment_figures
    from sonodiff.segment.train import load_segmenter, run_segmentation

    from sonodiff.contracts.dataset import PreparedDataset
    from sonodiff.contracts.segmentation import read_predictions

    manifest = make_prepared(tmp_path, SPLITS, per_patient=2, kind="camus")
    _, samples = make_augment_and_samples(tmp_path, manifest, "bmaps", copies=1)
    dataset = PreparedDataset.in_dir(manifest.parent)
    cfg = {"dataset": "tiny", "device": "cpu", "metrics": {"bootstrap": 50},
           "segment": TINY | {"epochs": 2, "sources": ["real", "synthetic_bmaps"]}}
    layout = {"tiny": {"manifest": str(manifest), "info": str(dataset.info_path), "sector": str(dataset.sector_path),
                       "figure": str(tmp_path / "fig" / "tiny.png"), "metrics": {}, "predictions": {}}}
    for source in ("real", "synthetic_bmaps"):
        out = tmp_path / "segment" / source
        m = run_segmentation(dataset, source, {"bmaps": samples}, cfg, out / "metrics.json",
                             out / "model.pt", out / "predictions.npz", threads=1, progress=False)
        layout["tiny"]["metrics"][source] = str(out / "metrics.json")
        layout["tiny"]["predictions"][source] = str(out / "predictions.npz")
        assert m["counts"] == {"train": 6 if source == "real" else 6, "val": 2, "test": 4, "test_patients": 2}
        assert list(m["dice"]) == ["lv_endo", "lv_epi", "la", "image_mean", "structure_mean"]
        assert len(m["per_image"]["sample_id"]) == 4 and set(m["per_image"]) > {"lv_endo", "la"}
        stored = json.loads((out / "metrics.json").read_text())
        assert stored["source"] == source and stored["format"] == "camus"
        _, ckpt = load_segmenter(out / "model.pt")
        assert ckpt["meta"]["source"] == source
        preds = read_predictions(out / "predictions.npz")
        assert list(preds) == m["per_image"]["sample_id"]
        assert all(p.shape == (32, 32) and p.max() < 5 for p in preds.values())
        assert (out / "checkpoints" / "last.pt").is_file()
    write_segmentation_table(layout["tiny"]["metrics"].values(), tmp_path / "t.csv", tmp_path / "t.md",
                             tmp_path / "t.tex")
    assert "synthetic_bmaps" in (tmp_path / "t.md").read_text()
    segment_figures(layout)
    png = tmp_path / "fig" / "tiny.png"
    assert png.stat().st_size > 1000 and not list(png.parent.glob(".*tmp"))
