"""Segmentation check, training: the UNet and loss are MONAI's; a tiny UNet learns an easy shape in
a fixed number of steps; the data order is a function of (seed, step); resume is exact; one whole
job per source (sets -> training -> test Dice -> metrics, model, predictions) and its table and figure."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from test_segment import SPLITS, make_augment_and_samples, make_prepared

TINY = {"channels": [8, 16, 32], "strides": [2, 2], "num_res_units": 1, "batch_size": 8,
        "lr": 1.0e-2, "seed": 0, "sources": ["real"], "val_every": 3}


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_network_and_loss_are_monais():
    from monai.losses import DiceCELoss
    from monai.networks.nets import UNet

    from sonodiff.segment.train import build_unet, dice_ce_loss

    assert isinstance(build_unet(5, TINY), UNet) and isinstance(dice_ce_loss(), DiceCELoss)


def test_data_order_is_a_function_of_seed_and_step():
    from sonodiff.segment.train import batch_indices, validation_steps

    n, batch = 10, 4
    order = np.concatenate([batch_indices(n, s, batch, seed=1) for s in range(5)])  # 20 positions: 2 passes
    assert sorted(order[:10]) == list(range(10)) and sorted(order[10:]) == list(range(10))
    assert np.array_equal(batch_indices(n, 3, batch, seed=1), order[12:16])      # any step on its own
    assert not np.array_equal(np.concatenate([batch_indices(n, s, batch, seed=2) for s in range(5)]), order)
    assert validation_steps(10, 3) == [3, 6, 9, 10] and validation_steps(6, 3) == [3, 6]


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
    seg = TINY | {"steps": 72, "val_every": 6}
    result = fit(data["train"], data["val"], structures, seg, torch.device("cpu"), tmp_path / "model.pt",
                 progress=False)
    assert [r["step"] for r in result["history"]] == list(range(6, 73, 6))
    assert result["best_val_dice"] == max(r["val_dice"] for r in result["history"])
    model, ckpt = load_segmenter(tmp_path / "model.pt")
    assert ckpt["step"] == result["best_step"] and ckpt["num_classes"] == 3
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

    def run(name, steps, folder, **changes):
        return fit(data["train"], data["val"], structures, TINY | {"steps": steps} | changes, cpu,
                   tmp_path / f"{name}.pt", checkpoint_dir=tmp_path / folder, progress=False)

    fresh = run("a", 8, "a")
    assert [r["step"] for r in fresh["history"]] == [3, 6, 8]
    run("b", 6, "b")                                # interrupted at step 6, a validation step of the 8-step run
    resumed = run("b", 8, "b")
    assert resumed["history"] == fresh["history"]
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == 8 and all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert torch.load(tmp_path / "b.pt", weights_only=True)["step"] == fresh["best_step"]
    # other settings: the old checkpoint is ignored, not resumed
    other = run("c", 3, "b", lr=1e-3)
    assert len(other["history"]) == 1 and other["history"] != fresh["history"][:1]
    # step 8 (the end of the 8-step run) is no validation step of a 10-step run (3, 6, 9, 10): it starts afresh
    longer = run("d", 10, "a")
    assert [r["step"] for r in longer["history"]] == [3, 6, 9, 10]
    assert longer["history"][:2] == fresh["history"][:2] and longer["history"] == run("e", 10, "e")["history"]


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
           "segment": TINY | {"steps": 4, "val_every": 2, "sources": ["real", "synthetic_bmaps"]}}
    layout = {"tiny": {"manifest": str(manifest), "info": str(dataset.info_path), "sector": str(dataset.sector_path),
                       "figure": str(tmp_path / "fig" / "tiny.png"), "metrics": {}, "predictions": {}}}
    for source in ("real", "synthetic_bmaps"):
        out = tmp_path / "segment" / source
        m = run_segmentation(dataset, source, {"bmaps": samples}, cfg, out / "metrics.json",
                             out / "model.pt", out / "predictions.npz", threads=1, progress=False)
        layout["tiny"]["metrics"][source] = str(out / "metrics.json")
        layout["tiny"]["predictions"][source] = str(out / "predictions.npz")
        assert m["counts"] == {"train": 6 if source == "real" else 6, "val": 2, "test": 4, "test_patients": 2}
        assert m["train"]["steps"] == 4 and [r["step"] for r in m["train"]["history"]] == [2, 4]
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
