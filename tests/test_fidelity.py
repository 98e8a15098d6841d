"""Mask fidelity of a ControlNet sample set: a real-data segmenter (trained here by the segment
stage's own job, on bright disks) scores generated images against their conditioning maps.

The "generated" images are drawn from their maps (a bright disk where the map has one), so a good
segmenter gives a high Dice; the same images under another image's map give a low one; maps
without a disk are counted apart; intervals resample patients.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from sonodiff.contracts.manifest import read_manifest, write_manifest
from test_segment import _png, make_image, make_prepared
from test_segment_train import TINY

#: Train and val patients for the segmenter; test patients give the conditioning maps.
SPLITS = ({f"p{i:02d}": "train" for i in range(20)} | {"v0": "val", "v1": "val"}
          | {f"t{i}": "test" for i in range(5)})
PER_MASK = 2
EMPTY = 3


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A disk dataset, its real segmenter (two seeds) and record, and a ControlNet sample set."""
    from sonodiff.contracts.dataset import PreparedDataset
    from sonodiff.segment.train import run_segmentation

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("fidelity")
    manifest = make_prepared(root, SPLITS, per_patient=2, kind="disks")
    _add_disk_free(manifest, np.random.default_rng(9))
    dataset = PreparedDataset.in_dir(manifest.parent)
    cfg = {"dataset": "tiny", "variant": "latent", "device": "cpu", "seed": 0, "metrics": {"bootstrap": 200},
           "segment": TINY | {"steps": 60, "val_every": 20, "seeds": [0, 1], "sources": ["real"]}}
    seg_dir = root / "segment" / "real"
    run_segmentation(dataset, "real", {}, cfg, seg_dir / "metrics.json", seg_dir / "model.pt",
                     seg_dir / "predictions.npz", threads=1, progress=False)
    torch.set_num_threads(before)

    rng = np.random.default_rng(5)
    test = read_manifest(manifest)
    test = test[test["split"] == "test"]
    folder = root / "samples" / "latent"
    rows = []
    for row in test.itertuples():
        lab = np.asarray(Image.open(row.label))
        for k in range(PER_MASK):
            sid = f"{row.sample_id}_c{k}"
            image = _png(make_image("disks", lab, rng), folder / "images" / f"{sid}.png")
            rows.append({"sample_id": sid, "image": image, "label": row.label, "real_image": row.image,
                         "source_sample_id": row.sample_id, "patient_id": row.patient_id, "split": "test",
                         "seed": k, "class": "benign"})
    for k in range(EMPTY):   # maps without a disk (BUSI's normal class): the sector only
        sid, lab = f"normal_{k}", np.full((32, 32), 2, np.uint8)
        image = make_image("disks", lab, rng, noise=10.0)
        rows.append({"sample_id": sid, "image": _png(image, folder / "images" / f"{sid}.png"),
                     "label": _png(lab, folder / "labels" / f"{sid}.png"), "real_image": "", "source_sample_id": "",
                     "patient_id": f"n{k}", "split": "test", "seed": 0, "class": "normal"})
    rows.append({"sample_id": "prompt_only", "image": rows[0]["image"], "label": "", "real_image": "",
                 "source_sample_id": "", "patient_id": "x", "split": "", "seed": 0, "class": "benign"})
    write_manifest(pd.DataFrame(rows), folder / "manifest.csv")
    return {"root": root, "dataset": dataset, "cfg": cfg, "seg_dir": seg_dir, "samples": folder / "manifest.csv",
            "rows": rows}


def _add_disk_free(manifest, rng, patients: int = 10) -> None:
    """Training patients whose images hold no disk (as BUSI's normal class holds no lesion)."""
    rows = [read_manifest(manifest)]
    for i in range(patients):
        lab = np.full((32, 32), 2, np.uint8)
        sid = f"e{i}_0"
        image = _png(make_image("disks", lab, rng), manifest.parent / "images" / f"{sid}.png")
        rows.append(pd.DataFrame([{"sample_id": sid, "patient_id": f"e{i}", "split": "train", "view": "",
                                   "phase": "", "slice_index": 0, "source_file": "", "image": image,
                                   "label": _png(lab, manifest.parent / "labels" / f"{sid}.png")}]))
    write_manifest(pd.concat(rows, ignore_index=True), manifest)


def _shuffled(world) -> str:
    """The same sample set with each disk image given the map of the next test image."""
    rows = [dict(r) for r in world["rows"]]
    disks = [i for i, r in enumerate(rows) if r["class"] == "benign" and r["label"]]
    labels = [rows[i]["label"] for i in disks]
    for i, label in zip(disks, labels[PER_MASK:] + labels[:PER_MASK]):
        rows[i]["label"] = label
    path = world["root"] / "samples" / "latent" / "shuffled.csv"
    write_manifest(pd.DataFrame(rows), path)
    return path


def _run(world, samples, name, reference=True, **kwargs):
    from sonodiff.segment.fidelity import run_mask_fidelity

    out = world["root"] / "out" / name
    record = run_mask_fidelity(world["dataset"], samples, world["seg_dir"] / "model.pt", world["cfg"],
                               out / "fidelity.json", out / "fidelity.png",
                               reference=world["seg_dir"] / "metrics.json" if reference else None,
                               threads=1, **kwargs)
    return record, out


def test_matched_maps_score_high_shuffled_low_and_empty_maps_apart(world):
    from sonodiff.contracts.fidelity import read_fidelity_record

    record, out = _run(world, world["samples"], "matched")
    n_disk = 5 * 2 * PER_MASK
    assert record == json.loads(json.dumps(read_fidelity_record(out / "fidelity.json")))  # written as returned
    assert record["counts"] == {"images": n_disk + EMPTY, "patients": 5 + EMPTY, "seeds": 2, "skipped": 1}
    assert record["segmenter"] == {"source": "real", "seeds": [0, 1]}
    dice = record["dice"]["disk"]
    assert dice["status"] == "ok" and dice["value"] > 0.85
    assert dice["n_images"] == n_disk and dice["n_patients"] == 5 and dice["n_clusters"] == [5]   # patients
    assert dice["ci"][0] <= dice["value"] <= dice["ci"][1]
    per = record["per_image"]
    values = np.array([np.nan if v is None else v for v in per["disk"]])
    assert np.isnan(values[-EMPTY:]).all() and np.isfinite(values[:n_disk]).all()      # empty maps: no Dice
    assert dice["value"] == pytest.approx(values[:n_disk].mean())
    by_seed = np.array([s["disk"][:n_disk] for s in per["by_seed"]], dtype=float)
    assert np.allclose(values[:n_disk], by_seed.mean(axis=0))                            # averaged over seeds
    empty = record["empty_masks"]["disk"]
    assert empty["n_images"] == EMPTY and empty["n_patients"] == EMPTY
    fractions = per["disk_empty_prediction"]
    assert empty["empty_prediction"]["value"] == pytest.approx(np.mean(fractions[-EMPTY:]))
    assert empty["empty_prediction"]["value"] > 0.5                                      # mostly nothing found
    assert max(fractions[:n_disk]) == 0.0                                                # a disk always found
    assert set(record["by_class"]) == {"benign", "normal"}
    assert record["by_class"]["normal"]["dice"]["disk"]["status"] == "n/a"
    assert record["by_class"]["benign"]["dice"]["disk"]["value"] == pytest.approx(dice["value"])
    ref = record["reference"]["dice"]["disk"]
    real = json.loads((world["seg_dir"] / "metrics.json").read_text())
    assert ref["record_mean"] == pytest.approx(real["dice"]["disk"]["mean"])
    assert ref["value"] == pytest.approx(real["dice"]["disk"]["mean"]) and ref["n_patients"] == 5

    shuffled, _ = _run(world, _shuffled(world), "shuffled", reference=False)
    assert shuffled["dice"]["disk"]["value"] < dice["value"] - 0.4
    assert shuffled["reference"] is None
    assert shuffled["empty_masks"]["disk"] == empty                                      # untouched rows


def test_interval_resamples_patients_not_images(world):
    from sonodiff.segment.fidelity import mean_figure

    values = np.array([0.9, 0.9, 0.9, 0.9, 0.1, 0.1])
    one = mean_figure(values, ["a", "a", "a", "a", "b", "b"], 500, 0, "none")
    assert one["n_images"] == 6 and one["n_patients"] == 2 and one["n_clusters"] == [2]
    # two patients: every resample is all-a, all-b or both (the mean 0.633): the interval spans
    # patient means, not the narrow one six independent images would give
    assert one["ci"][0] == pytest.approx(0.1) and one["ci"][1] == pytest.approx(0.9)
    assert mean_figure(values, list("abcdef"), 500, 0, "none")["ci"][0] > 0.1
    assert mean_figure(values[:0], [], 500, 0, "no images")["status"] == "n/a"
    assert mean_figure(values[:2], ["a", "a"], 500, 0, "none")["ci"] is None            # one patient: none


def test_figure_grows_with_rows_and_a_synthetic_segmenter_is_refused(world, tmp_path):
    from sonodiff.errors import InputError
    from sonodiff.segment.fidelity import conditioned_rows, render_fidelity_figure, segment_samples

    table, skipped = conditioned_rows(world["samples"])
    seg = segment_samples(table, world["seg_dir"] / "model.pt", 3, 32, torch.device("cpu"), 8)
    sizes = []
    for n in (2, 5):
        path = render_fidelity_figure(seg, tmp_path / f"f{n}.png", sector_id=2, n_examples=n, title="t")
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            sizes.append(im.size)
    assert sizes[1][1] > sizes[0][1] and not list(tmp_path.glob(".*tmp"))

    ckpt = torch.load(world["seg_dir"] / "model.pt", weights_only=True)
    ckpt["meta"]["source"] = "synthetic_latent"
    torch.save(ckpt, tmp_path / "model.pt")
    from sonodiff.segment.fidelity import run_mask_fidelity

    with pytest.raises(InputError, match="trained on 'synthetic_latent'"):
        run_mask_fidelity(world["dataset"], world["samples"], tmp_path / "model.pt", world["cfg"],
                          tmp_path / "r.json", tmp_path / "r.png")
    only_prompts = tmp_path / "prompts.csv"
    write_manifest(pd.DataFrame([r for r in world["rows"] if not r["label"]]), only_prompts)
    with pytest.raises(InputError, match="no row has a conditioning label map"):
        conditioned_rows(only_prompts)
