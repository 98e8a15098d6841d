"""BUSI converter: masks merged by OR, class column, stratified split, bad PNGs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from test_data_factories import job_config, prepare_into, write_busi, write_png

from sonodiff.contracts import layout
from sonodiff.contracts.dataset import DATASET_COLUMNS
from sonodiff.contracts.manifest import read_manifest
from sonodiff.errors import InputError

ENTRY = {"format": "busi", "source": {"path": "unused"}, "img_size": 20,
         "labels": {"background": 0, "lesion": 1}, "probe": "linear"}


def _prepare(raw, out, **overrides):
    return prepare_into(raw, out, job_config("busi", {**ENTRY, **overrides}))


def test_masks_merged_and_class_kept(tmp_path):
    raw = write_busi(tmp_path / "raw", counts={"benign": 5, "malignant": 5, "normal": 5})
    info = _prepare(raw, tmp_path / "out", img_size=40, sector_threshold=0.05)
    df = read_manifest(tmp_path / "out" / layout.MANIFEST)
    assert list(df.columns) == list(DATASET_COLUMNS) + ["class"]
    assert len(df) == 15 and set(df["class"]) == {"benign", "malignant", "normal"}
    assert info["labels"] == {"background": 0, "lesion": 1, "sector": 2}
    row = df.set_index("sample_id").loc["malignant_1"]
    lab = np.asarray(Image.open(row.label))
    # Both lesions (from _mask and _mask_1) are present: two separate blobs.
    from scipy import ndimage
    assert ndimage.label(lab == 1)[1] == 2
    normal = np.asarray(Image.open(df.set_index("sample_id").loc["normal_2"].label))
    assert 1 not in normal and (normal == 2).mean() > 0.9
    # Stratified seeded split: every class is in every split.
    assert all(set(g.split) == {"train", "val", "test"} for _, g in df.groupby("class"))


def test_mask_without_image_fails(tmp_path):
    raw = write_busi(tmp_path / "raw")
    orphan = raw / "Dataset_BUSI_with_GT" / "benign" / "benign (9)_mask.png"
    write_png(np.zeros((30, 40), np.uint8), orphan)
    with pytest.raises(InputError, match="mask without its image") as err:
        _prepare(raw, tmp_path / "out")
    assert str(orphan) in str(err.value)


def test_unreadable_png_fails(tmp_path):
    raw = write_busi(tmp_path / "raw")
    bad = raw / "Dataset_BUSI_with_GT" / "malignant" / "malignant (2).png"
    bad.write_bytes(bad.read_bytes()[:60])
    with pytest.raises(InputError, match="unreadable image") as err:
        _prepare(raw, tmp_path / "out")
    assert str(bad) in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out" / layout.MANIFEST).exists()


def test_mask_shape_mismatch_fails(tmp_path):
    raw = write_busi(tmp_path / "raw")
    mask = raw / "Dataset_BUSI_with_GT" / "benign" / "benign (3)_mask.png"
    write_png(np.zeros((31, 40), np.uint8), mask)
    with pytest.raises(InputError, match="differs from image shape"):
        _prepare(raw, tmp_path / "out")


def test_split_is_deterministic(tmp_path):
    raw = write_busi(tmp_path / "raw")
    _prepare(raw, tmp_path / "a")
    _prepare(raw, tmp_path / "b")
    a = pd.read_csv(tmp_path / "a" / layout.MANIFEST)
    b = pd.read_csv(tmp_path / "b" / layout.MANIFEST)
    assert a.equals(b)
    c = prepare_into(raw, tmp_path / "c", job_config("busi", ENTRY, split={"seed": 5}))
    assert c["counts"]["train"] == len(a[a.split == "train"])
    assert not pd.read_csv(tmp_path / "c" / layout.MANIFEST).split.equals(a.split)
