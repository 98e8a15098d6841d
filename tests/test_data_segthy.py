"""SegThy-like 3D volumes: slicing, dropped slices, merged raw values, bad volumes."""

from __future__ import annotations

import nibabel as nib
import SimpleITK as sitk
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from test_data_factories import SEGTHY_LABELS, job_config, neck_volume, prepare_into, write_segthy, write_sitk

from sonodiff.contracts import layout
from sonodiff.contracts.manifest import read_manifest
from sonodiff.data.readers import read_array
from sonodiff.data.slicing import slice_volume
from sonodiff.errors import InputError

ENTRY = {"format": "segthy", "source": {"path": "unused"}, "img_size": 16, "labels": SEGTHY_LABELS,
         "required_label": "thyroid", "slice_axis": 2, "probe": "linear"}


def _prepare(raw, out, **overrides):
    return prepare_into(raw, out, job_config("segthy", {**ENTRY, **overrides}))


def test_slices_without_thyroid_are_dropped(tmp_path):
    raw = write_segthy(tmp_path / "raw", n=5, shape=(24, 20, 8), thyroid_slices=range(2, 6))
    info = _prepare(raw, tmp_path / "out")
    df = read_manifest(tmp_path / "out" / layout.MANIFEST)
    assert len(df) == 5 * 4
    assert sorted(set(df.slice_index)) == [2, 3, 4, 5]
    assert df.sample_id[0] == "P00_s0002" and df.patient_id[0] == "P00"
    assert info["labels"] == {"background": 0, "thyroid": 1, "carotid": 2, "jugular": 3, "sector": 4}
    assert info["probe"] == {"type": "linear"}
    assert set(df.split) == {"train", "val", "test"}
    assert all(df.groupby("patient_id")["split"].nunique() == 1)
    # Patient P01 uses the raw values 4 (carotid) and 5 (jugular): merged into ids 2 and 3.
    for sid in ("P00_s0003", "P01_s0003"):
        lab = np.asarray(Image.open(df.set_index("sample_id").label[sid]))
        assert set(np.unique(lab)) == {1, 2, 3, 4}
        assert lab.shape == (16, 16)


def test_slice_axis_and_min_pixels(tmp_path):
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
    raw = tmp_path / "raw" / "US_volunteer_dataset"
    (raw / "data").mkdir(parents=True)
    (raw / "ground_truth_data").mkdir()
    img = np.zeros((16, 12, 3), np.float32)
    img[:4] = 1.0
    img[4:] = 0.3
    lab = np.zeros((16, 12, 3), np.uint8)
    lab[6:10, 3:8, :] = 1
    for p in ("A", "B", "C"):
        write_sitk(img, raw / "data" / f"{p}.nii.gz")
        write_sitk(lab, raw / "ground_truth_data" / f"{p}.nii.gz")
    _prepare(tmp_path / "raw", tmp_path / "out", img_size=16)
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


def test_unexpected_label_value_fails(tmp_path):
    raw = write_segthy(tmp_path / "raw", n=3)
    path = raw / "US_volunteer_dataset" / "ground_truth_data" / "P01.nii.gz"
    lab = sitk.GetArrayFromImage(sitk.ReadImage(str(path))).copy()
    lab[0, 0, 0] = 6
    write_sitk(lab, path)
    with pytest.raises(InputError, match=r"label values \[6\] are not in the configured set \[0, 1, 2, 3, 4, 5\]") as err:
        _prepare(raw, tmp_path / "out")
    assert str(path) in str(err.value)
    assert not (tmp_path / "out" / layout.MANIFEST).exists()


def test_non_integer_labels_fail(tmp_path):
    raw = write_segthy(tmp_path / "raw", n=3)
    path = raw / "US_volunteer_dataset" / "ground_truth_data" / "P00.nii.gz"
    lab = sitk.GetArrayFromImage(sitk.ReadImage(str(path))).astype(np.float32)
    lab[0, 0, 0] = 0.5
    write_sitk(lab, path)
    with pytest.raises(InputError, match="non-integer"):
        _prepare(raw, tmp_path / "out")


@pytest.mark.parametrize("kind", ["nan", "constant", "zero-size"])
def test_empty_or_nan_volume_fails(tmp_path, kind):
    raw = write_segthy(tmp_path / "raw", n=3)
    path = raw / "US_volunteer_dataset" / "data" / "P02.nii.gz"
    vol = {"nan": np.full((24, 20, 8), np.nan, np.float32),
           "constant": np.full((24, 20, 8), 0.5, np.float32),
           "zero-size": np.zeros((24, 0, 8), np.float32)}[kind]
    if vol.size:
        write_sitk(vol, path)
    else:  # SimpleITK cannot write an empty image; nibabel can
        nib.save(nib.Nifti1Image(vol, np.eye(4)), path)
    with pytest.raises(InputError, match="NaN|empty") as err:
        _prepare(raw, tmp_path / "out")
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out" / layout.IMAGES).exists()


def test_volume_shape_mismatch_fails(tmp_path):
    raw = write_segthy(tmp_path / "raw", n=3)
    path = raw / "US_volunteer_dataset" / "ground_truth_data" / "P00.nii.gz"
    write_sitk(np.zeros((24, 20, 7), np.uint8), path)
    with pytest.raises(InputError, match=r"label shape \(24, 20, 7\) differs from image shape \(24, 20, 8\)"):
        _prepare(raw, tmp_path / "out")


def test_patient_twice_fails(tmp_path):
    raw = write_segthy(tmp_path / "raw", n=3)
    other = raw / "more" / "data"
    other.mkdir(parents=True)
    img, _ = neck_volume((24, 20, 8), range(2, 4), np.random.default_rng(1))
    write_sitk(img, other / "P01.nii")
    with pytest.raises(InputError, match="patient id P01 appears twice"):
        _prepare(raw, tmp_path / "out")


def test_unknown_required_label_fails(tmp_path):
    raw = write_segthy(tmp_path / "raw", n=3)
    with pytest.raises(InputError, match="no label named 'thyroids'"):
        _prepare(raw, tmp_path / "out", required_label="thyroids")


def test_manifest_has_integer_slice_index(tmp_path):
    raw = write_segthy(tmp_path / "raw", n=3)
    _prepare(raw, tmp_path / "out")
    df = pd.read_csv(tmp_path / "out" / layout.MANIFEST)
    assert df.slice_index.dtype.kind == "i"
    assert (df.view.isna()).all()
