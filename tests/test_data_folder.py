"""Generic folder datasets: unlabeled (liver-like) and labeled; padding; patient ids; a user's own
layout read as it is (the HC18 sample in tests/data/hc18: suffix, patient pattern, filled outlines)."""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from scipy import ndimage
from skimage.measure import EllipseModel
from test_data_factories import job_config, prepare_into, write_png

from sonodiff.contracts import layout
from sonodiff.contracts.manifest import read_manifest
from sonodiff.data import folder
from sonodiff.data.outlines import fill_outlines
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


# ------------------------------------------------------------- a user's own layout: HC18, as it is

HC18 = Path(__file__).parent / "data" / "hc18"
#: The config block of docs/datasets.md ("Your own data"), as a test entry.
HC18_ENTRY = {"format": "folder", "source": {"path": "data/hc18"}, "image_glob": "**/*HC.png",
              "label_glob": "**/*HC_Annotation.png", "label_suffix": "_Annotation",
              "patient_pattern": r"(?P<patient>\d+)_\d*HC", "fill_outlines": True,
              "labels": {"background": 0, "head": 255}, "img_size": 128, "pad_square": True, "probe": "convex"}


def _ellipse_area(outline: np.ndarray) -> float:
    """pi a b of the ellipse fitted (least squares) to the outline's pixels."""
    rows, cols = np.nonzero(outline)
    model = EllipseModel.from_estimate(np.column_stack([cols, rows]).astype(float))
    a, b = model.axis_lengths
    return float(np.pi * a * b)


def test_hc18_sample_converts_with_filled_heads(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        info = prepare_into(HC18, tmp_path / "out", job_config("hc18", HC18_ENTRY))
    df = read_manifest(tmp_path / "out" / layout.MANIFEST)
    # Labelled: the three annotated training images; patients from the file names, not the folders.
    assert sorted(df.sample_id) == ["training_set_000_HC", "training_set_001_HC", "training_set_002_HC"]
    assert sorted(df.patient_id) == ["000", "001", "002"]
    assert info["labels"] == {"background": 0, "head": 1, "sector": 2}
    # test_set/000_HC.png has no annotation (and shares its stem with training_set/000_HC.png): skipped.
    assert all("training_set" in f for f in df.source_file)
    assert "1 images without a label map skipped" in caplog.text and "test_set/000_HC.png" in caplog.text
    scale = 128 / 800  # 540 x 800 padded to 800 x 800, then resized to 128
    for row in df.itertuples():
        outline = np.asarray(Image.open(HC18 / "training_set" / f"{row.patient_id}_HC_Annotation.png")) > 0
        head = np.asarray(Image.open(row.label)) == 1
        _, components = ndimage.label(head)
        assert components == 1
        # The filled head covers the ellipse: its area is pi a b of the outline, within 5 %.
        assert head.sum() == pytest.approx(_ellipse_area(outline) * scale ** 2, rel=0.05)


def test_hc18_without_fill_keeps_thin_outlines(tmp_path):
    prepare_into(HC18, tmp_path / "out", job_config("hc18", {**HC18_ENTRY, "fill_outlines": False}))
    df = read_manifest(tmp_path / "out" / layout.MANIFEST)
    for row in df.itertuples():
        outline = np.asarray(Image.open(HC18 / "training_set" / f"{row.patient_id}_HC_Annotation.png")) > 0
        head = np.asarray(Image.open(row.label)) == 1
        assert head.sum() < 0.3 * _ellipse_area(outline) * (128 / 800) ** 2


def test_docs_example_is_the_tested_config():
    """The HC18 block of docs/datasets.md ("Your own data") is the config these tests convert."""
    text = (Path(__file__).parents[1] / "docs" / "datasets.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text[text.index("## Your own data"):], re.DOTALL)
    assert yaml.safe_load(blocks[0])["datasets"]["hc18"] == HC18_ENTRY


def test_numbered_images_join_their_patient(tmp_path):
    # NNN_2HC.png (a further image numbered like the real release's) joins patient NNN.
    raw = tmp_path / "raw"
    shutil.copytree(HC18, raw)
    for name in ("002_HC.png", "002_HC_Annotation.png"):
        (raw / "training_set" / name).rename(raw / "training_set" / name.replace("002_HC", "001_2HC"))
    units = folder.list_units(raw, HC18_ENTRY)
    assert sorted((u.image.name, u.labels[0].name, u.patient_id) for u in units) == [
        ("000_HC.png", "000_HC_Annotation.png", "000"), ("001_2HC.png", "001_2HC_Annotation.png", "001"),
        ("001_HC.png", "001_HC_Annotation.png", "001")]


def test_fill_outlines_on_raw_annotation():
    outline = np.asarray(Image.open(HC18 / "training_set" / "002_HC_Annotation.png"))
    filled = fill_outlines(outline, "002_HC_Annotation.png")
    assert set(np.unique(filled)) == {0, 255} and (filled[outline > 0] == 255).all()
    assert ndimage.label(filled > 0)[1] == 1
    assert (filled > 0).sum() == pytest.approx(_ellipse_area(outline > 0), rel=0.03)


def test_fill_outlines_nested_values_and_bad_input(caplog):
    lab = np.zeros((12, 12), np.uint8)
    lab[1, 1:11] = lab[10, 1:11] = lab[1:11, 1] = lab[1:11, 10] = 1  # outer square outline, value 1
    lab[4, 4:8] = lab[7, 4:8] = lab[4:8, 4] = lab[4:8, 7] = 2        # inner square outline, value 2
    out = fill_outlines(lab, "x.png")
    assert (out[5:7, 5:7] == 2).all() and out[3, 3] == 1 and out[0, 0] == 0 and (out[lab > 0] == lab[lab > 0]).all()
    with caplog.at_level(logging.WARNING):
        open_line = np.zeros((6, 6), np.uint8)
        open_line[2, :] = 1
        assert np.array_equal(fill_outlines(open_line, "open.png"), open_line)
    assert "open.png: fill_outlines found no closed outline" in caplog.text
    with pytest.raises(InputError, match=r"^vol.nii: fill_outlines needs a 2D label map"):
        fill_outlines(np.zeros((2, 3, 3), np.uint8), "vol.nii")


def _labelled_pairs(raw, names):
    """Images and square label maps at the given (image, label) paths under ``raw``."""
    rng = np.random.default_rng(2)
    for image, label in names:
        write_png((30 + 200 * rng.random((12, 12))).astype(np.uint8), raw / image)
        lab = np.zeros((12, 12), np.uint8)
        lab[3:7, 3:7] = 1
        write_png(lab, raw / label)
    return raw


OWN = {**ENTRY, "labels": {"background": 0, "organ": 1}, "image_glob": None}


def test_shared_stems_pair_by_place(tmp_path):
    # The same stem in several patients' folders: a label pairs with the image at its place.
    names = [(f"images/p{p}/a.png", f"masks/p{p}/a_seg.png") for p in range(5)]
    raw = _labelled_pairs(tmp_path / "raw", names)
    units = folder.list_units(raw, {**OWN, "image_glob": "images/**/*.png", "label_glob": "masks/**/*.png"})
    assert {(u.image.parent.name, u.labels[0].parent.name, u.patient_id) for u in units} == {
        (f"p{p}", f"p{p}", f"p{p}") for p in range(5)}


def test_identical_stems_with_empty_suffix(tmp_path):
    raw = _labelled_pairs(tmp_path / "raw", [(f"img/c{i}.png", f"lab/c{i}.png") for i in range(5)])
    units = folder.list_units(raw, {**OWN, "image_glob": "img/*.png", "label_glob": "lab/*.png", "label_suffix": ""})
    assert [u.labels[0].name for u in units] == [f"c{i}.png" for i in range(5)]


def test_null_image_glob_reads_every_png(tmp_path):
    # image_glob null: the folder format's own default **/*.png; label_glob null: no labels.
    raw = _liver(tmp_path / "raw")
    units = folder.list_units(raw, {**ENTRY, "image_glob": None, "label_glob": None})
    assert folder.IMAGE_GLOB == "**/*.png" and len(units) == 15 and not any(u.labels for u in units)


def test_patient_csv(tmp_path):
    raw = _labelled_pairs(tmp_path / "raw", [(f"scans/s{i}.png", f"scans/s{i}_mask.png") for i in range(4)])
    (raw / "patients.csv").write_text("image,patient\nscans/s0.png,A\ns1.png,A\nscans/s2.png,B\n")
    entry = {**OWN, "label_glob": "**/*_mask.png", "patient_csv": "patients.csv"}
    with pytest.raises(InputError, match=r"s3\.png: no row of patient_csv .*patients\.csv names this image"):
        folder.list_units(raw, entry)
    (raw / "patients.csv").write_text("image,patient\nscans/s0.png,A\ns1.png,A\nscans/s2.png,B\ns3.png,B\n")
    assert [u.patient_id for u in folder.list_units(raw, entry)] == ["A", "A", "B", "B"]


@pytest.mark.parametrize("overrides, match", [
    ({"label_suffix": "_Mask"},
     r"^\S+raw: no image/label pair: 4 images match image_glob '\*\*/\*HC\.png', 3 label maps match "
     r"label_glob '\*\*/\*HC_Annotation\.png', no label stem is an image stem plus label_suffix '_Mask' "
     r"in the image's folder or at its place under the globs' folders "
     r"\(e\.g\. image '000_HC', label '000_HC_Annotation'\)$"),
    ({"label_glob": "**/*_Segmentation.png"}, r"^\S+raw: no label maps match label_glob '\*\*/\*_Segmentation\.png'$"),
    ({"image_glob": "**/*.jpg"}, r"^\S+raw: no images match image_glob '\*\*/\*\.jpg'$"),
    ({"patient_pattern": r"(?P<patient>P\d+)"},
     r"training_set/000_HC\.png: patient_pattern '\(\?P<patient>P\\d\+\)' does not match 'training_set/000_HC\.png'$"),
    ({"patient_pattern": r"(\d+"}, r"^config key patient_pattern: .* is not a regular expression"),
    ({"patient_pattern": r"(\d+)_HC"}, r"^config key patient_pattern: .* has no named group"),
    ({"patient_csv": "p.csv"}, r"^config key patient_pattern: set patient_pattern or patient_csv, not both$"),
])
def test_own_folder_errors_say_what_was_searched(tmp_path, overrides, match):
    raw = tmp_path / "raw"
    for sub in ("training_set", "test_set"):
        shutil.copytree(HC18 / sub, raw / sub)
    with pytest.raises(InputError, match=match) as err:
        folder.list_units(raw, {**HC18_ENTRY, **overrides})
    assert "\n" not in str(err.value)
