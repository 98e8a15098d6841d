"""Generic folder datasets: unlabeled (liver-like) and labeled; padding; patient ids."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from test_data_factories import job_config, prepare_into, write_png

from sonodiff.contracts import layout
from sonodiff.contracts.manifest import read_manifest
from sonodiff.data.prepare import pad_to_square
from sonodiff.data.readers import read_array
from sonodiff.errors import InputError


def _liver(root, patients=5, per_patient=3, h=30, w=20):
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:h, 0:w]
    fan = np.abs(x - w / 2) < 2 + 0.3 * y
    for p in range(patients):
        for i in range(per_patient):
            img = np.where(fan, 50 + 150 * rng.random((h, w)), 0).astype(np.uint8)
            write_png(img, root / f"vol{p:02d}" / f"frame{i:03d}.png")
    return root


ENTRY = {"format": "folder", "source": {"path": "unused"}, "image_glob": "**/*.png", "label_glob": "",
         "img_size": 16, "labels": {"background": 0}, "sector_label": False, "probe": "convex"}


def test_unlabeled_folder(tmp_path):
    raw = _liver(tmp_path / "raw")
    info = prepare_into(raw, tmp_path / "out", job_config("liver", ENTRY))
    df = read_manifest(tmp_path / "out" / layout.MANIFEST)
    assert len(df) == 15 and (df.label == "").all()
    assert not (tmp_path / "out" / layout.LABELS).exists()
    assert info["labels"] == {"background": 0} and info["structures"] == {} and info["sector_id"] is None
    # Patients are the subfolders; the split keeps each patient's frames together.
    assert set(df.patient_id) == {f"vol{p:02d}" for p in range(5)}
    assert all(df.groupby("patient_id")["split"].nunique() == 1)
    assert df.sample_id[0] == "vol00_frame000"
    assert np.asarray(Image.open(tmp_path / "out" / layout.SECTOR)).max() == 255
    assert json.loads((tmp_path / "out" / layout.DATASET_INFO).read_text())["counts"]["patients_train"] == 3


def test_pad_square_keeps_aspect(tmp_path):
    raw = _liver(tmp_path / "raw", h=30, w=20)
    prepare_into(raw, tmp_path / "out", job_config("liver", {**ENTRY, "img_size": 30, "pad_square": True}))
    img = np.asarray(Image.open(read_manifest(tmp_path / "out" / layout.MANIFEST).image[0]))
    # 30 x 20 padded to 30 x 30: five black columns each side, the fan in the middle.
    assert img[:, :5].max() == 0 and img[:, -5:].max() == 0 and img[:, 10:20].max() > 0
    assert pad_to_square(np.ones((2, 4))).tolist() == [[0] * 4, [1] * 4, [1] * 4, [0] * 4]


def test_labeled_folder_matches_stems(tmp_path):
    raw = tmp_path / "raw"
    rng = np.random.default_rng(1)
    for i in range(6):
        write_png((30 + 200 * rng.random((12, 12))).astype(np.uint8), raw / "images" / f"case{i}.png")
        lab = np.zeros((12, 12), np.uint8)
        lab[3:7, 3:7] = 1
        write_png(lab, raw / "masks" / f"case{i}_mask.png")
    entry = {**ENTRY, "image_glob": "images/*.png", "label_glob": "masks/*.png",
             "labels": {"background": 0, "organ": 1}, "sector_label": True}
    info = prepare_into(raw, tmp_path / "out", job_config("own", entry))
    df = read_manifest(tmp_path / "out" / layout.MANIFEST)
    assert len(df) == 6 and set(df.patient_id) == {f"case{i}" for i in range(6)}
    assert info["labels"] == {"background": 0, "organ": 1, "sector": 2}
    lab = np.asarray(Image.open(df.label[0]))
    assert set(np.unique(lab)) == {1, 2}


def test_labels_without_label_glob_fail(tmp_path):
    raw = _liver(tmp_path / "raw")
    entry = {**ENTRY, "labels": {"background": 0, "organ": 1}}
    with pytest.raises(InputError, match="label_glob"):
        prepare_into(raw, tmp_path / "out", job_config("own", entry))


def test_no_images_fail(tmp_path):
    (tmp_path / "raw").mkdir()
    with pytest.raises(InputError, match="no images match image_glob"):
        prepare_into(tmp_path / "raw", tmp_path / "out", job_config("liver", ENTRY))


def test_raw_image_modes(tmp_path):
    """Grey as stored, colour to grey (``convert("L")``), palette to the grey of its colours,
    16-bit as stored (then scaled by the converter, not clipped by the reader)."""
    grey = np.array([[0, 10], [200, 255]], np.uint8)
    assert np.array_equal(read_array(write_png(grey, tmp_path / "l.png")), grey)
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[..., 0] = 255
    assert (read_array(write_png(rgb, tmp_path / "rgb.png")) == 76).all()        # ITU-R 601-2 luma of red
    palette = Image.fromarray(rgb).convert("P")
    palette.save(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").mode == "P" and (read_array(tmp_path / "p.png") == 76).all()
    deep = np.array([[0, 1000], [30000, 65535]], np.uint16)
    Image.fromarray(deep).save(tmp_path / "i16.png")
    assert np.array_equal(read_array(tmp_path / "i16.png"), deep)
