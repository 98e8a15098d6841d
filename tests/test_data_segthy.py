"""SegThy in its real layout: pairing <id>_US with <id>, volunteers as patients, slicing, bad volumes.

The raw folder is the one the real ``US_data.zip`` unpacks to::

    US_volunteer_dataset/ground_truth_data/US/<id>_US.nii
    US_volunteer_dataset/ground_truth_data/US_thyroid_label/<id>.nii     <id> = 005_P1_1_left
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from PIL import Image
from test_data_factories import SEGTHY_LABELS, job_config, prepare_into, write_sitk

from sonodiff.contracts import layout
from sonodiff.contracts.manifest import read_manifest
from sonodiff.data.labels import LabelSpec
from sonodiff.data.prepare import assign_splits, list_dataset
from sonodiff.data.readers import read_array
from sonodiff.data.slicing import slice_volume
from sonodiff.errors import InputError

ENTRY = {"format": "segthy", "source": {"path": "unused"}, "img_size": 16, "labels": SEGTHY_LABELS,
         "required_label": "thyroid", "slice_axis": 2, "probe": "linear"}
BASE = Path("US_volunteer_dataset") / "ground_truth_data"
SHAPE = (16, 16, 6)          # (rows, cols, slices): slices along axis 2 are 16 x 16, img_size 16 keeps them


def volume(index: int, shape=SHAPE, thyroid_slices=range(1, 5), vessel_values=(2, 3), seed=0):
    """Image and label volume number ``index``: a thyroid disc (label 1) whose column depends on
    ``index``, the only voxels at 1.0 in the image (the rest 0.2..0.8), and two vessels."""
    h, w, s = shape
    rng = np.random.default_rng([seed, index])
    y, x = np.mgrid[0:h, 0:w]
    img = (0.2 + 0.6 * rng.random(shape)).astype(np.float32)
    lab = np.zeros(shape, np.uint8)
    disc = np.hypot(y - h / 2, x - (3 + 2 * index)) < 2.5
    for k in range(s):
        lab[..., k][np.hypot(y - 3, x - (w - 3)) < 2] = vessel_values[0]
        lab[..., k][np.hypot(y - h + 3, x - (w - 3)) < 2] = vessel_values[1]
        if k in thyroid_slices:
            lab[..., k][disc] = 1
    img[lab == 1] = 1.0
    return img, lab


def write_real_segthy(root: Path, volunteers=("P1", "P2"), sweeps=2, **kw) -> dict[str, tuple[Path, Path]]:
    """The real layout and names, uncompressed ``.nii``; scans numbered 001.. over all volumes.
    Volunteer ``P2`` uses the raw values 4/5 for its vessels. Returns ``{id: (image, label)}``."""
    out, scan = {}, 0
    for v in volunteers:
        for sweep in range(1, sweeps + 1):
            scan += 1
            key = f"{scan:03d}_{v}_{sweep}_{'left' if sweep % 2 else 'right'}"
            img, lab = volume(scan, vessel_values=(4, 5) if v == "P2" else (2, 3), **kw)
            out[key] = (write_sitk(img, root / BASE / "US" / f"{key}_US.nii"),
                        write_sitk(lab, root / BASE / "US_thyroid_label" / f"{key}.nii"))
    return out


def _prepare(raw, out, split=None, **overrides):
    sections = {"split": split} if split else {}
    return prepare_into(raw, out, job_config("segthy", {**ENTRY, **overrides}, **sections))


def _units(raw, **overrides):
    data = job_config("segthy", {**ENTRY, **overrides})["data"]
    return list_dataset(raw, data, LabelSpec.from_config(data["labels"]))


# ---------------------------------------------------------------------------------- the real layout


def test_real_layout_pairs_by_id_and_keeps_volunteers_together(tmp_path):
    files = write_real_segthy(tmp_path / "raw")        # 2 volunteers x 2 sweeps
    assert sorted(files) == ["001_P1_1_left", "002_P1_2_right", "003_P2_1_left", "004_P2_2_right"]
    units = {u.key: u for u in _units(tmp_path / "raw")}
    assert sorted(units) == sorted(files)
    for key, (image, label) in files.items():
        assert units[key].image == image and units[key].labels == (label,)
        assert units[key].patient_id == key.split("_")[1]
    # One volunteer to train, one to test: each keeps both sweeps in its split.
    split = {"fractions": {"train": 0.5, "val": 0.0, "test": 0.5}}
    info = _prepare(tmp_path / "raw", tmp_path / "out", split=split)
    df = read_manifest(tmp_path / "out" / layout.MANIFEST)
    assert set(df.patient_id) == {"P1", "P2"}
    assert df.groupby("patient_id")["split"].nunique().eq(1).all()
    assert sorted(df.groupby("patient_id")["split"].first()) == ["test", "train"]
    assert df.groupby("patient_id")["source_file"].nunique().to_dict() == {"P1": 2, "P2": 2}
    assert info["counts"]["patients_train"] == info["counts"]["patients_test"] == 1
    # Pixel content: in every prepared sample the thyroid (id 1) is exactly the image's 255 voxels,
    # which sit in a different column for every volume, so any other pairing would break it.
    assert len(df) == 4 * 4 and sorted(set(df.slice_index)) == [1, 2, 3, 4]
    for row in df.itertuples():
        assert row.sample_id.startswith(Path(row.source_file).name.removesuffix("_US.nii"))
        image, ids = np.asarray(Image.open(row.image)), np.asarray(Image.open(row.label))
        np.testing.assert_array_equal(ids == 1, image == 255)
        # P2's raw vessel values 4 and 5 are merged into carotid (2) and jugular (3) as P1's 2 and 3.
        assert {1, 2, 3} <= set(np.unique(ids))


def test_every_volunteer_in_one_split(tmp_path):
    """Five volunteers with two sweeps each under the default 60/20/20 split."""
    write_real_segthy(tmp_path / "raw", volunteers=("P1", "P2", "P3", "P4", "P5"), shape=(8, 8, 2),
                      thyroid_slices=range(2))
    units = _units(tmp_path / "raw")
    cfg = job_config("segthy", ENTRY)
    splits = assign_splits(units, cfg["data"], cfg["split"])
    assert sorted(splits) == ["P1", "P2", "P3", "P4", "P5"]
    assert sorted(splits.values()) == ["test", "train", "train", "train", "val"]
    assert len({u.patient_id for u in units}) == 5 and len(units) == 10


def test_default_globs_are_the_real_layout(tmp_path):
    write_real_segthy(tmp_path / "raw")
    data = job_config("segthy", ENTRY)["data"]
    assert data["image_glob"] is None and data["label_glob"] is None and data["patient_pattern"] is None
    # Other files of the release (e.g. a README, other label folders) are not read.
    (tmp_path / "raw" / "US_volunteer_dataset" / "README.txt").write_text("x")
    assert len(_units(tmp_path / "raw")) == 4


def test_globs_and_patient_pattern_are_configurable(tmp_path):
    raw = tmp_path / "raw"
    for i, key in enumerate(["1_V07_a", "2_V07_b", "3_V08_a"]):
        img, lab = volume(i)
        write_sitk(img, raw / "img" / f"{key}_US.nii.gz")
        write_sitk(lab, raw / "lab" / f"{key}.nii.gz")
    units = _units(raw, image_glob="img/*.nii.gz", label_glob="lab/*.nii.gz",
                   patient_pattern=r"\d+_(?P<patient>V\d+)_[ab]")
    assert {u.key: u.patient_id for u in units} == {"1_V07_a": "V07", "2_V07_b": "V07", "3_V08_a": "V08"}


def test_the_segthy_phantom_converts_with_volunteers_as_patients(segthy_config, tmp_path):
    from sonodiff.config import resolve
    from sonodiff.phantom import simulate_phantom

    cfg = resolve(segthy_config, "phantom_segthy")
    cfg["data"]["source"]["simulate"].update(size=16, slices=3)
    simulate_phantom(cfg, tmp_path / "raw", progress=False)
    cfg["data"]["img_size"] = 16
    prepare_into(tmp_path / "raw", tmp_path / "out", cfg)
    df = read_manifest(tmp_path / "out" / layout.MANIFEST)
    volunteers = int(cfg["data"]["source"]["simulate"]["patients"])
    sweeps = int(cfg["data"]["source"]["simulate"]["sweeps"])
    assert sorted(set(df.patient_id)) == [f"P{k}" for k in range(1, volunteers + 1)]
    assert df.groupby("patient_id")["source_file"].nunique().eq(sweeps).all() and sweeps > 1
    assert df.groupby("patient_id")["split"].nunique().eq(1).all() and set(df.split) == {"train", "val", "test"}


# ---------------------------------------------------------------------------------- one-line errors


#: Two volunteers fill two splits (three non-zero fractions would need three).
TWO_WAY = {"fractions": {"train": 0.5, "val": 0.0, "test": 0.5}}


def _fails(raw, out, match, **overrides) -> str:
    with pytest.raises(InputError, match=match) as err:
        _prepare(raw, out, split=TWO_WAY, **overrides)
    assert "\n" not in str(err.value)
    assert not (out / layout.MANIFEST).exists()
    return str(err.value)


@pytest.mark.parametrize("volume_id, removed, message", [
    ("002_P1_2_right", "label", "image volume without a label volume 002_P1_2_right"),
    ("003_P2_1_left", "image", "label volume without an image volume 003_P2_1_left_US"),
])
def test_unpaired_volume_fails_naming_the_one_left(tmp_path, volume_id, removed, message):
    files = write_real_segthy(tmp_path / "raw")
    image, label = files[volume_id]
    gone, left = (label, image) if removed == "label" else (image, label)
    gone.unlink()
    msg = _fails(tmp_path / "raw", tmp_path / "out", message)
    assert msg.startswith(f"{left}: ")


def test_id_not_matching_the_patient_pattern_fails(tmp_path):
    raw = tmp_path / "raw"
    write_real_segthy(raw)
    img, lab = volume(9)
    path = write_sitk(img, raw / BASE / "US" / "volunteer3_sweep1_US.nii")
    write_sitk(lab, raw / BASE / "US_thyroid_label" / "volunteer3_sweep1.nii")
    msg = _fails(raw, tmp_path / "out", r"id 'volunteer3_sweep1' does not match patient_pattern")
    assert msg.startswith(f"{path}: ")


@pytest.mark.parametrize("pattern, reason", [(r"(?P<volunteer>P\d+)", "has no named group"),
                                             (r"(?P<patient>P\d+", "is not a regular expression")])
def test_bad_patient_pattern_fails(tmp_path, pattern, reason):
    write_real_segthy(tmp_path / "raw")
    msg = _fails(tmp_path / "raw", tmp_path / "out", reason, patient_pattern=pattern)
    assert msg.startswith("config key patient_pattern: ")


def test_no_labels_found_or_label_glob_empty_fails(tmp_path):
    write_real_segthy(tmp_path / "raw")
    _fails(tmp_path / "raw", tmp_path / "out", r"no label volumes match label_glob '\*\*/labels/\*'",
           label_glob="**/labels/*")
    _fails(tmp_path / "raw", tmp_path / "out", "^config key label_glob: the labels name structures",
           label_glob="")
    _fails(tmp_path / "raw", tmp_path / "out", r"no image volumes match image_glob '\*\*/data/\*.nii\*'",
           image_glob="**/data/*.nii*")


def test_id_twice_fails(tmp_path):
    raw = tmp_path / "raw"
    write_real_segthy(raw)
    img, _ = volume(1)
    write_sitk(img, raw / "copy" / "US" / "001_P1_1_left_US.nii")
    msg = _fails(raw, tmp_path / "out", "two files have the volume id 001_P1_1_left: this one and ")
    assert msg.startswith(f"{raw / 'copy' / 'US' / '001_P1_1_left_US.nii'}: ")
    assert msg.endswith(str(raw / BASE / "US" / "001_P1_1_left_US.nii"))


def test_unexpected_label_value_names_the_file_and_the_values(tmp_path):
    files = write_real_segthy(tmp_path / "raw")
    path = files["003_P2_1_left"][1]
    lab = read_array(path).copy()
    lab[0, 0, 0] = 6
    write_sitk(lab, path)
    msg = _fails(tmp_path / "raw", tmp_path / "out",
                 r"label values \[6\] are not in the configured set \[0, 1, 2, 3, 4, 5\] "
                 r"\(values found \[0, 1, 4, 5, 6\]; config key datasets.segthy.labels\)")
    assert msg.startswith(f"{path}: ")


def test_thyroid_only_config_refuses_vessel_values(tmp_path):
    """A config naming the thyroid only stops on volumes that hold vessels too (the values found)."""
    files = write_real_segthy(tmp_path / "raw")
    msg = _fails(tmp_path / "raw", tmp_path / "out", r"label values \[2, 3\] .*values found \[0, 1, 2, 3\]",
                 labels={"background": 0, "thyroid": 1})
    assert msg.startswith(f"{files['001_P1_1_left'][1]}: ")


def test_non_integer_labels_fail(tmp_path):
    files = write_real_segthy(tmp_path / "raw")
    path = files["001_P1_1_left"][1]
    lab = read_array(path).astype(np.float32)
    lab[0, 0, 0] = 0.5
    write_sitk(lab, path)
    assert _fails(tmp_path / "raw", tmp_path / "out", "non-integer").startswith(f"{path}: ")


@pytest.mark.parametrize("kind", ["nan", "constant", "zero-size"])
def test_empty_or_nan_volume_fails(tmp_path, kind):
    files = write_real_segthy(tmp_path / "raw")
    path = files["002_P1_2_right"][0]
    vol = {"nan": np.full(SHAPE, np.nan, np.float32),
           "constant": np.full(SHAPE, 0.5, np.float32),
           "zero-size": np.zeros((16, 0, 6), np.float32)}[kind]
    if vol.size:
        write_sitk(vol, path)
    else:  # SimpleITK cannot write an empty image; nibabel can
        nib.save(nib.Nifti1Image(vol, np.eye(4)), path)
    assert _fails(tmp_path / "raw", tmp_path / "out", "NaN|empty").startswith(f"{path}: ")
    assert not (tmp_path / "out" / layout.IMAGES).exists()


def test_volume_shape_mismatch_fails(tmp_path):
    files = write_real_segthy(tmp_path / "raw")
    write_sitk(np.zeros((16, 16, 5), np.uint8), files["001_P1_1_left"][1])
    _fails(tmp_path / "raw", tmp_path / "out", r"label shape \(16, 16, 5\) differs from image shape \(16, 16, 6\)")


def test_unknown_required_label_fails(tmp_path):
    write_real_segthy(tmp_path / "raw")
    _fails(tmp_path / "raw", tmp_path / "out", "no label named 'thyroids'", required_label="thyroids")


# ---------------------------------------------------------------------------------- slicing and axes


def test_slices_without_thyroid_are_dropped(tmp_path):
    write_real_segthy(tmp_path / "raw", volunteers=("P1", "P2", "P3"), shape=(24, 20, 8),
                      thyroid_slices=range(2, 6))
    info = _prepare(tmp_path / "raw", tmp_path / "out")
    df = read_manifest(tmp_path / "out" / layout.MANIFEST)
    assert len(df) == 6 * 4 and sorted(set(df.slice_index)) == [2, 3, 4, 5]
    assert df.sample_id[0] == "001_P1_1_left_s0002" and df.patient_id[0] == "P1"
    assert info["labels"] == {"background": 0, "thyroid": 1, "carotid": 2, "jugular": 3, "sector": 4}
    assert info["probe"] == {"type": "linear"}
    assert set(df.split) == {"train", "val", "test"}
    assert np.asarray(Image.open(df.label[0])).shape == (16, 16)


def test_slice_axis_and_min_pixels():
    img = np.random.default_rng(0).random((6, 7, 5)).astype(np.float32)
    lab = np.zeros((6, 7, 5), np.int64)
    lab[1, 2:4, 1] = 1                        # 2 thyroid voxels in slice 1 along axis 0
    lab[3, :, :] = 1                          # 35 in slice 3
    kept = list(slice_volume(img, lab, axis=0, required=[1], min_pixels=3))
    assert [k for k, _, _ in kept] == [3]
    assert kept[0][1].shape == (7, 5) and np.array_equal(kept[0][1], img[3])
    kept = list(slice_volume(img, lab, axis=0, required=[1], min_pixels=1))
    assert [k for k, _, _ in kept] == [1, 3]
    # Axis 2: slice k is img[:, :, k] with rows = axis 0.
    kept = list(slice_volume(img, lab, axis=2, required=[1], min_pixels=1))
    assert np.array_equal(kept[0][1], img[:, :, kept[0][0]])


def test_orientation_rows_are_axis0(tmp_path):
    # Rows of a slice along axis 2 are the volume's axis 0: bright rows stay on top.
    img = np.zeros((16, 12, 3), np.float32)
    img[:4] = 1.0
    img[4:] = 0.3
    lab = np.zeros((16, 12, 3), np.uint8)
    lab[6:10, 3:8, :] = 1
    for key in ("001_P1_1_left", "002_P2_1_left", "003_P3_1_left"):
        write_sitk(img, tmp_path / "raw" / BASE / "US" / f"{key}_US.nii")
        write_sitk(lab, tmp_path / "raw" / BASE / "US_thyroid_label" / f"{key}.nii")
    _prepare(tmp_path / "raw", tmp_path / "out", img_size=16, duplicates={"detect": False})  # 3 copies
    df = read_manifest(tmp_path / "out" / layout.MANIFEST)
    out = np.asarray(Image.open(df.image[0])).astype(float)
    assert out[:3].mean() == 255 and out[6:].mean() < 100


def test_array_order_is_simpleitk_for_every_reader(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)
    write_sitk(arr, tmp_path / "a.nii.gz")
    write_sitk(arr, tmp_path / "a.mhd")
    nib.save(nib.Nifti1Image(arr.T, np.eye(4)), tmp_path / "b.nii")   # nibabel: (i, j, k) = reversed
    for name in ("a.nii.gz", "a.mhd", "b.nii"):
        assert np.array_equal(read_array(tmp_path / name), arr), name
    write_sitk(arr[0], tmp_path / "c.nii.gz")
    assert np.array_equal(read_array(tmp_path / "c.nii.gz"), arr[0])
    assert sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "a.mhd"))).shape == (2, 3, 4)


def test_manifest_has_integer_slice_index(tmp_path):
    write_real_segthy(tmp_path / "raw", volunteers=("P1", "P2", "P3"))
    _prepare(tmp_path / "raw", tmp_path / "out")
    df = pd.read_csv(tmp_path / "out" / layout.MANIFEST)
    assert df.slice_index.dtype.kind == "i"
    assert (df.view.isna()).all()
