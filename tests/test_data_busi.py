"""BUSI converter: masks merged by OR, class column, stratified split, bad PNGs; the 20 real
cases of tests/data/busi (1-bit, RGB and RGBA masks, all-zero normal masks, no false duplicates)
and planted duplicates (an exact copy in another class, a re-cropped copy) kept in one split."""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import ndimage
from test_data_factories import job_config, prepare_into, write_busi, write_png

from sonodiff.contracts import layout
from sonodiff.contracts.dataset import DATASET_COLUMNS
from sonodiff.contracts.manifest import read_manifest
from sonodiff.data import busi
from sonodiff.data.labels import LabelSpec
from sonodiff.data.prepare import assign_splits, list_dataset
from sonodiff.data.units import load_unit
from sonodiff.errors import InputError

REAL = Path(__file__).parent / "data" / "busi"

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


# ------------------------------------------------------------------ the real BUSI sample

def test_real_samples_merge_1bit_rgb_and_rgba_masks():
    spec = LabelSpec.from_config(ENTRY["labels"], True)
    units = {u.key: u for u in busi.list_units(REAL, dict(ENTRY))}
    assert Counter(u.extra["class"] for u in units.values()) == {"benign": 10, "malignant": 6, "normal": 4}
    modes = Counter(Image.open(m).mode for u in units.values() for m in u.labels)
    assert modes == {"1": 21, "RGB": 4, "RGBA": 1}  # 26 masks
    assert len(units["benign_195"].labels) == 3 and len(units["benign_4"].labels) == 2
    for key, unit in units.items():
        (sample,) = load_unit(unit, spec, ENTRY)
        assert sample.image.dtype == np.uint8 and sample.image.shape == Image.open(unit.image).size[::-1]
        # The merged label is the OR of the masks read independently of sonodiff (any mode, > 127).
        expected = np.zeros(sample.image.shape, bool)
        for mask in unit.labels:
            expected |= np.asarray(Image.open(mask).convert("L")) > 127
        assert np.array_equal(sample.label == 1, expected), key
        assert set(np.unique(sample.label)) <= {0, 1}
        assert expected.any() == (unit.extra["class"] != "normal"), key  # normal masks are all zero
    # benign (4): the RGBA _mask_1 adds a second lesion, disjoint from the 1-bit _mask.
    (b4,) = load_unit(units["benign_4"], spec, ENTRY)
    first, rgba = (np.asarray(Image.open(m).convert("L")) > 127 for m in units["benign_4"].labels)
    assert Image.open(units["benign_4"].labels[1]).mode == "RGBA" and rgba.sum() > 500
    assert not (first & rgba).any() and int((b4.label == 1).sum()) == int(first.sum() + rgba.sum())


def test_real_samples_prepare_without_false_duplicates(tmp_path):
    info = _prepare(REAL, tmp_path / "out", img_size=32)
    df = read_manifest(tmp_path / "out" / layout.MANIFEST)
    assert len(df) == 20 and list(df.columns) == list(DATASET_COLUMNS) + ["class"]
    assert info["duplicates"]["counts"]["groups"] == 0 and info["duplicates"]["groups"] == []
    assert (df["duplicate_group"] == "").all()
    assert info["duplicates"]["settings"] == {"detect": True, "near_threshold": 0.9, "max_per_patient": 16}
    for _, row in df.iterrows():
        lab = np.asarray(Image.open(row["label"]))
        assert (1 in lab) == (row["class"] != "normal"), row["sample_id"]  # lesion id 1 except in normal cases
    assert all(set(g.split) == {"train", "val", "test"} for _, g in df.groupby("class"))


def _plant_duplicates(raw: Path) -> None:
    """Into a copy of the real sample: an exact copy of benign (10) (with its mask) as malignant
    (300), and benign (60) re-cropped (4 % off the top, 1 % bottom, 2 % left, 3 % right) and
    resized back to its size as benign (500)."""
    d = raw / "Dataset_BUSI_with_GT"
    shutil.copy(d / "benign" / "benign (10).png", d / "malignant" / "malignant (300).png")
    shutil.copy(d / "benign" / "benign (10)_mask.png", d / "malignant" / "malignant (300)_mask.png")
    image = Image.open(d / "benign" / "benign (60).png")
    w, h = image.size
    box = (round(0.02 * w), round(0.04 * h), w - round(0.03 * w), h - round(0.01 * h))
    image.crop(box).resize((w, h), Image.Resampling.BILINEAR).save(d / "benign" / "benign (500).png")
    mask = Image.open(d / "benign" / "benign (60)_mask.png").convert("L")
    mask.crop(box).resize((w, h), Image.Resampling.NEAREST).save(d / "benign" / "benign (500)_mask.png")


EXACT, NEAR = ("benign_10", "malignant_300"), ("benign_60", "benign_500")


def test_planted_duplicates_share_a_split_and_are_listed(tmp_path, caplog):
    raw = tmp_path / "raw"
    shutil.copytree(REAL, raw)
    _plant_duplicates(raw)
    # A split seed under which, without duplicate detection, both planted pairs are split apart.
    entry = {**ENTRY, "img_size": 32}
    units = list_dataset(raw, entry, LabelSpec.from_config(ENTRY["labels"], True))
    fractions = {"train": 0.6, "val": 0.2, "test": 0.2}
    seed = next(s for s in range(200)
                if all(len({assign_splits(units, entry, {"seed": s, "fractions": fractions})[p] for p in pair}) == 2
                       for pair in (EXACT, NEAR)))
    off = prepare_into(raw, tmp_path / "off", job_config("busi", {**entry, "duplicates": {"detect": False}},
                                                         split={"seed": seed}))
    df_off = read_manifest(tmp_path / "off" / layout.MANIFEST).set_index("sample_id")
    assert off["duplicates"]["counts"]["groups"] == 0
    assert all(df_off.loc[a, "split"] != df_off.loc[b, "split"] for a, b in (EXACT, NEAR))  # leakage

    with caplog.at_level(logging.WARNING):
        info = prepare_into(raw, tmp_path / "on", job_config("busi", entry, split={"seed": seed}))
    df = read_manifest(tmp_path / "on" / layout.MANIFEST).set_index("sample_id")
    assert len(df) == 22
    for a, b in (EXACT, NEAR):
        assert df.loc[a, "duplicate_group"] != "" and df.loc[a, "duplicate_group"] == df.loc[b, "duplicate_group"]
        assert df.loc[a, "split"] == df.loc[b, "split"]
    assert df.loc[EXACT[0], "duplicate_group"] != df.loc[NEAR[0], "duplicate_group"]
    assert (df.drop(list(EXACT + NEAR))["duplicate_group"] == "").all()  # no real image grouped
    dup = info["duplicates"]
    assert dup["counts"] == {"groups": 2, "patients": 4, "images": 4, "exact_pairs": 1, "near_pairs": 1,
                             "conflicts": 1, "groups_across_splits": 0}
    pairs = {(p["a"], p["b"]): p for g in dup["groups"] for p in g["pairs"]}
    assert set(pairs) == {EXACT, NEAR}
    assert pairs[EXACT]["kind"] == "exact" and pairs[NEAR]["kind"] == "near"
    assert 0.9 <= pairs[NEAR]["similarity"] < 1
    conflicts = {g["group"]: g["conflicts"] for g in dup["groups"]}
    assert conflicts[df.loc[EXACT[0], "duplicate_group"]] == [
        "classes differ: benign_10 benign, malignant_300 malignant"]
    assert conflicts[df.loc[NEAR[0], "duplicate_group"]] == []
    # The class conflict is a warning naming both files.
    warned = [r.getMessage() for r in caplog.records if "classes differ" in r.getMessage()]
    assert len(warned) == 1 and "benign (10).png" in warned[0] and "malignant (300).png" in warned[0]
