"""CAMUS converter: both releases, official splits (the real split files in tests/data), the
prepared-dataset contract, bad input (split ids without folders, missing ground truth)."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from test_data_factories import (CAMUS_LABELS, job_config, prepare_into, write_camus_2019, write_camus_nifti,
                                 write_sitk)

from sonodiff.contracts import layout
from sonodiff.contracts.dataset import DATASET_COLUMNS
from sonodiff.contracts.manifest import read_manifest
from sonodiff.data.camus import read_subgroups
from sonodiff.data.prepare import prepare_dataset
from sonodiff.errors import InputError

ENTRY = {"format": "camus", "source": {"path": "unused"}, "img_size": 24, "labels": CAMUS_LABELS,
         "probe": "convex"}


def _prepare(raw, out, **overrides):
    return prepare_into(raw, out, job_config("camus", {**ENTRY, **overrides}))


def test_nifti_release_contract(tmp_path):
    raw = write_camus_nifti(tmp_path / "raw")
    info = _prepare(raw, tmp_path / "out")
    out = tmp_path / "out"
    df = pd.read_csv(out / layout.MANIFEST, dtype=str, keep_default_na=False)
    assert list(df.columns) == list(DATASET_COLUMNS)
    assert len(df) == 6 * 4
    # Official split read from the subgroup files, whole patients per split.
    split_of = df.groupby("patient_id")["split"].agg(set)
    assert all(len(s) == 1 for s in split_of)
    assert split_of["patient0005"] == {"val"} and split_of["patient0006"] == {"test"}
    assert {s.pop() for s in split_of[["patient0001", "patient0004"]]} == {"train"}
    assert set(zip(df.view, df.phase)) == {("2CH", "ED"), ("2CH", "ES"), ("4CH", "ED"), ("4CH", "ES")}
    assert info["labels"] == {**CAMUS_LABELS, "sector": 4}
    assert info["structures"] == {"lv_cavity": 1, "myocardium": 2, "left_atrium": 3}
    assert info["sector_id"] == 4 and info["probe"] == {"type": "convex"}
    assert info["counts"] == {"train": 16, "patients_train": 4, "val": 4, "patients_val": 1,
                              "test": 4, "patients_test": 1}
    assert json.loads((out / layout.DATASET_INFO).read_text()) == info
    # Paths are stored relative to the manifest, and resolve to real files.
    assert not df.image[0].startswith("/")
    full = read_manifest(out / layout.MANIFEST, required=DATASET_COLUMNS)
    image = np.asarray(Image.open(full.image[0]))
    label = np.asarray(Image.open(full.label[0]))
    assert image.shape == label.shape == (24, 24) and image.dtype == np.uint8
    assert set(np.unique(label)) <= {0, 1, 2, 3, 4} and {1, 2, 4} <= set(np.unique(label))
    # The sector label lies inside the fan: the image is bright there and black outside it.
    assert image[label == 0].mean() < 20 < image[label == 4].mean()
    sector = np.asarray(Image.open(out / layout.SECTOR))
    assert set(np.unique(sector)) == {0, 255}
    assert sector[0, 12] == 255 and sector[0, 0] == 0 and sector[-1, 0] == 0  # apex on top, corners out


def test_declared_files_are_written_where_declared(tmp_path):
    raw = write_camus_nifti(tmp_path / "raw", groups={"training": [1, 2, 3], "validation": [4], "testing": [5]})
    out = tmp_path / "out"
    cfg = job_config("camus", ENTRY)
    info = prepare_dataset(raw, out / "rows.csv", out / "about.json", out / layout.SECTOR, cfg, progress=False)
    assert json.loads((out / "about.json").read_text()) == info
    assert len(read_manifest(out / "rows.csv")) == 5 * 4 and not (out / layout.MANIFEST).exists()


@pytest.mark.parametrize("where", ["info", "sector", "name"])
def test_declared_files_outside_one_folder_fail(tmp_path, where):
    raw = write_camus_nifti(tmp_path / "raw")
    out = tmp_path / "out"
    files = {"manifest": out / layout.MANIFEST, "info": out / layout.DATASET_INFO, "sector": out / layout.SECTOR}
    bad = {"info": tmp_path / "elsewhere" / layout.DATASET_INFO, "sector": tmp_path / layout.SECTOR,
           "name": out / "mask.png"}[where]
    files["sector" if where == "name" else where] = bad
    with pytest.raises(InputError) as err:
        prepare_dataset(raw, files["manifest"], files["info"], files["sector"], job_config("camus", ENTRY),
                        progress=False)
    assert str(err.value).startswith(str(bad)) and not out.exists()


def test_orientation_probe_at_row_zero(tmp_path):
    # A 40 x 32 (H x W) image written with SimpleITK must come out with its fan apex at the top.
    raw = write_camus_nifti(tmp_path / "raw", groups={"training": [1, 2, 3], "validation": [4], "testing": [5]})
    _prepare(raw, tmp_path / "out", img_size=40)
    df = read_manifest(tmp_path / "out" / layout.MANIFEST)
    img = np.asarray(Image.open(df.image[0])).astype(float)
    assert img[1:5, 19:21].mean() > 20 and img[:4, :3].mean() == 0 and img[-2:, 19:21].mean() == 0


def test_release_2019_split_and_carve_out(tmp_path):
    raw = write_camus_2019(tmp_path / "raw", train=list(range(1, 9)), test=[9, 10])
    info = _prepare(raw, tmp_path / "out")
    df = pd.read_csv(tmp_path / "out" / layout.MANIFEST, dtype=str)
    test_patients = set(df[df.split == "test"].patient_id)
    assert test_patients == {"patient0009", "patient0010"}
    # val = 0.2 / (0.6 + 0.2) of the 8 training patients = 2, seeded.
    assert info["counts"]["patients_val"] == 2 and info["counts"]["patients_train"] == 6
    again = tmp_path / "again"
    _prepare(raw, again)
    assert pd.read_csv(again / layout.MANIFEST, dtype=str)["split"].tolist() == df["split"].tolist()


def test_seeded_split_when_official_off(tmp_path):
    raw = write_camus_nifti(tmp_path / "raw", groups={"training": list(range(1, 9)), "validation": [9],
                                                      "testing": [10]})
    info = _prepare(raw, tmp_path / "out", official_split=False)
    # split.fractions 0.6 / 0.2 / 0.2 of 10 patients, not the files' 8 / 1 / 1.
    assert (info["counts"]["patients_train"], info["counts"]["patients_val"],
            info["counts"]["patients_test"]) == (6, 2, 2)


def test_2019_testing_without_gt_is_skipped(tmp_path):
    raw = write_camus_2019(tmp_path / "raw", train=[1, 2, 3, 4], test=[5])
    for f in (raw / "testing").rglob("*_gt.*"):
        f.unlink()
    info = _prepare(raw, tmp_path / "out")
    assert info["counts"]["test"] == 0 and info["counts"]["train"] + info["counts"]["val"] == 16


# ------------------------------------------------------------------ bad input: one line, no output

def _assert_fails(raw, out, match, **overrides):
    with pytest.raises(InputError, match=match) as err:
        _prepare(raw, out, **overrides)
    assert "\n" not in str(err.value)
    assert not (out / layout.MANIFEST).exists() and not (out / layout.IMAGES).exists()
    assert not [p for p in out.iterdir()] if out.exists() else True
    return str(err.value)


def test_patient_twice_in_subgroups(tmp_path):
    raw = write_camus_nifti(tmp_path / "raw")
    (raw / "database_split" / "subgroup_testing.txt").write_text("patient0006\npatient0002\n")
    msg = _assert_fails(raw, tmp_path / "out", "patient id patient0002 appears twice")
    assert "subgroup_testing.txt" in msg


def test_patient_twice_in_2019_release(tmp_path):
    raw = write_camus_2019(tmp_path / "raw", train=[1, 2, 3], test=[3])
    _assert_fails(raw, tmp_path / "out", "patient id patient0003 appears twice")


def test_patient_in_no_subgroup(tmp_path):
    raw = write_camus_nifti(tmp_path / "raw")
    (raw / "database_split" / "subgroup_testing.txt").write_text("")
    msg = _assert_fails(raw, tmp_path / "out", r"1 patients with images in \S+database_nifti are in no split file "
                                               r"\(subgroup_training\.txt, subgroup_validation\.txt, "
                                               r"subgroup_testing\.txt\): patient0006$")
    assert msg.startswith(f"{raw / 'database_split'}: ")


def test_unreadable_nifti(tmp_path):
    raw = write_camus_nifti(tmp_path / "raw")
    bad = raw / "database_nifti" / "patient0003" / "patient0003_4CH_ES.nii.gz"
    bad.write_bytes(b"not a nifti file at all")
    msg = _assert_fails(raw, tmp_path / "out", "unreadable image")
    assert str(bad) in msg


def test_truncated_mhd_raw(tmp_path):
    raw = write_camus_2019(tmp_path / "raw", train=[1, 2, 3], test=[4])
    data = raw / "training" / "patient0002" / "patient0002_2CH_ED.raw"
    data.write_bytes(data.read_bytes()[:100])
    msg = _assert_fails(raw, tmp_path / "out", "unreadable image")
    assert "patient0002_2CH_ED.mhd" in msg


def test_shape_mismatch(tmp_path):
    raw = write_camus_nifti(tmp_path / "raw")
    gt = raw / "database_nifti" / "patient0002" / "patient0002_2CH_ED_gt.nii.gz"
    write_sitk(np.zeros((20, 32), np.uint8), gt)
    msg = _assert_fails(raw, tmp_path / "out", r"label shape \(20, 32\) differs from image shape \(40, 32\)")
    assert str(gt) in msg


def test_label_values_outside_config(tmp_path):
    raw = write_camus_nifti(tmp_path / "raw")
    gt = raw / "database_nifti" / "patient0004" / "patient0004_4CH_ED_gt.nii.gz"
    lab = np.zeros((40, 32), np.uint8)
    lab[5:9, 5:9] = 7
    write_sitk(lab, gt)
    msg = _assert_fails(raw, tmp_path / "out", r"label values \[7\] are not in the configured set")
    assert str(gt) in msg and "datasets.camus.labels" in msg


def test_empty_and_nan_images(tmp_path):
    raw = write_camus_nifti(tmp_path / "raw")
    img = raw / "database_nifti" / "patient0001" / "patient0001_2CH_ES.nii.gz"
    write_sitk(np.zeros((40, 32), np.uint8), img)
    assert str(img) in _assert_fails(raw, tmp_path / "out", "empty image")
    nan = np.full((40, 32), np.nan, np.float32)
    write_sitk(nan, img)
    assert str(img) in _assert_fails(raw, tmp_path / "out2", "NaN")


def test_no_camus_layout(tmp_path):
    (tmp_path / "raw").mkdir()
    _assert_fails(tmp_path / "raw", tmp_path / "out", "no CAMUS layout")


def test_failure_keeps_previous_output_whole(tmp_path):
    raw = write_camus_nifti(tmp_path / "raw")
    out = tmp_path / "out"
    _prepare(raw, out)
    before = sorted(p.name for p in (out / layout.IMAGES).iterdir())
    write_sitk(np.zeros((3, 3), np.uint8), raw / "database_nifti" / "patient0006" / "patient0006_2CH_ED_gt.nii.gz")
    with pytest.raises(InputError):
        _prepare(raw, out)
    # The failed run left no temporary folder and did not touch the images of the last good run.
    assert sorted(p.name for p in (out / layout.IMAGES).iterdir()) == before
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


# ------------------------------------------------------------- the official split files (real ones)

SPLIT_FILES = Path(__file__).parent / "data" / "camus_split_files" / "database_split"


def test_official_split_files_parse():
    groups = read_subgroups(SPLIT_FILES)
    assert Counter(groups.values()) == {"train": 400, "val": 50, "test": 50}
    # Disjoint files (read_subgroups also refuses an id twice) covering patient0001..patient0500.
    files = [set((SPLIT_FILES / f"subgroup_{g}.txt").read_text().split()) for g in ("training", "validation", "testing")]
    assert [len(f) for f in files] == [400, 50, 50] and len(set.union(*files)) == 500
    assert set(groups) == {f"patient{i:04d}" for i in range(1, 501)}


def test_official_split_files_against_a_partial_tree(tmp_path):
    # The real split files over a tree of three patients: the ids without a folder are named.
    raw = write_camus_nifti(tmp_path / "raw", groups={"training": [1, 2, 3]})
    shutil.rmtree(raw / "database_split")
    shutil.copytree(SPLIT_FILES, raw / "database_split")
    msg = _assert_fails(raw, tmp_path / "out", r"subgroup_training\.txt: 397 patient ids with no images in ")
    assert msg.endswith("database_nifti: patient0004, patient0005, patient0006, patient0007, patient0008, ... (397 in all)")


def test_split_file_id_without_folder(tmp_path):
    raw = write_camus_nifti(tmp_path / "raw")
    with (raw / "database_split" / "subgroup_validation.txt").open("a") as f:
        f.write("patient0099\n")
    msg = _assert_fails(raw, tmp_path / "out", "1 patient ids with no images in")
    assert msg.startswith(str(raw / "database_split" / "subgroup_validation.txt")) and msg.endswith(": patient0099")


@pytest.mark.parametrize("patient", [2, 5, 6])  # a training, the validation and the testing patient
def test_missing_gt_in_nifti_release_is_an_error(tmp_path, patient):
    raw = write_camus_nifti(tmp_path / "raw")
    gt = raw / "database_nifti" / f"patient{patient:04d}" / f"patient{patient:04d}_4CH_ES_gt.nii.gz"
    gt.unlink()
    msg = _assert_fails(raw, tmp_path / "out", "ground truth of .*_4CH_ES.nii.gz not found")
    assert msg.startswith(f"{gt}: ")


def test_missing_gt_in_2019_training_is_an_error(tmp_path):
    raw = write_camus_2019(tmp_path / "raw", train=[1, 2, 3, 4], test=[5])
    gt = raw / "training" / "patient0003" / "patient0003_2CH_ED_gt.mhd"
    gt.unlink()
    assert _assert_fails(raw, tmp_path / "out", "ground truth of patient0003_2CH_ED.mhd not found").startswith(str(gt))


def test_unlabelled_camus_needs_no_gt(tmp_path):
    raw = write_camus_nifti(tmp_path / "raw")
    (raw / "database_nifti" / "patient0002" / "patient0002_4CH_ES_gt.nii.gz").unlink()
    info = _prepare(raw, tmp_path / "out", labels={"background": 0}, sector_label=False)
    assert info["counts"]["train"] == 16 and info["structures"] == {}
