"""Real scanner files (PLUS toolkit phantoms, ``tests/data/plus_phantom``, BSD 3-Clause): a
freehand-reconstructed 3D volume sliced as an unlabelled dataset, and a 2D MetaImage frame read.

The volume has no labels, so it goes through the ``segthy`` converter with ``label_glob: ""``
(the format that reads 3D volumes) and a ``patient_pattern`` that takes the whole file stem.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image
from test_data_factories import job_config, prepare_into

from sonodiff.contracts import layout
from sonodiff.contracts.manifest import read_manifest
from sonodiff.data.readers import read_array

#: These samples are one patient: all of it goes to train (a 3-way split needs 3 patients).
ONE_PATIENT_SPLIT = {"fractions": {"train": 1.0, "val": 0.0, "test": 0.0}}
from sonodiff.data.units import scale_to_uint8

ROOT = Path(__file__).parent / "data" / "plus_phantom"
VOLUME = ROOT / "TestImages" / "SpinePhantomFreehandReconstructed.mha"
FRAME = ROOT / "TestImages" / "UltrasonixLinearScanConvertedData.igs.mha"
ENTRY = {"format": "segthy", "source": {"path": "unused"}, "label_glob": "", "patient_pattern": "(?P<patient>.+)",
         "labels": {"background": 0}, "sector_label": False, "img_size": 32, "probe": "linear"}


def test_reconstructed_volume_reads_in_simpleitk_order():
    vol = read_array(VOLUME)
    # MetaImage DimSize 147 106 104 (i, j, k) -> array (k, j, i), as sitk.GetArrayFromImage gives.
    assert vol.shape == (104, 106, 147) and vol.dtype == np.uint8
    np.testing.assert_array_equal(vol, sitk.GetArrayFromImage(sitk.ReadImage(str(VOLUME))))
    assert vol.min() == 0 and vol.max() > 200


@pytest.mark.parametrize("axis, kept, shape", [(2, 85, (104, 106)), (0, 100, (106, 147))])
def test_reconstructed_volume_slices_as_unlabelled_dataset(tmp_path, axis, kept, shape):
    """Every non-blank slice along ``slice_axis`` becomes one sample (the blank ones outside the
    reconstructed sweep are dropped): 85 of 147 along axis 2, 100 of 104 along axis 0."""
    vol = sitk.GetArrayFromImage(sitk.ReadImage(str(VOLUME)))
    flat = np.moveaxis(vol, axis, 0).reshape(vol.shape[axis], -1)
    expected = [k for k in range(vol.shape[axis]) if flat[k].max() > flat[k].min()]
    assert len(expected) == kept
    entry = {**ENTRY, "image_glob": f"TestImages/{VOLUME.name}", "slice_axis": axis}
    info = prepare_into(ROOT, tmp_path / "out", job_config("plus", entry, split=ONE_PATIENT_SPLIT))
    df = read_manifest(tmp_path / "out" / layout.MANIFEST)
    assert list(df.slice_index) == expected
    assert set(df.patient_id) == {"SpinePhantomFreehandReconstructed"} and (df.label == "").all()
    assert not (tmp_path / "out" / layout.LABELS).exists()
    assert info["labels"] == {"background": 0} and info["structures"] == {}
    assert sum(info["counts"][s] for s in ("train", "val", "test")) == kept
    scaled = scale_to_uint8(vol, VOLUME)          # uint8 already: kept as is
    for row in df.iloc[[0, len(df) // 2, -1]].itertuples():
        raw = np.take(scaled, row.slice_index, axis=axis)
        assert raw.shape == shape
        image = np.asarray(Image.open(row.image))
        assert image.shape == (32, 32) and image.dtype == np.uint8
        assert image.std() > 0
    images = np.stack([np.asarray(Image.open(p)) for p in df.image])
    assert (images.reshape(len(df), -1).std(axis=1) > 0).all(), "every prepared slice is non-constant"


def test_2d_metaimage_frame_reads_and_converts(tmp_path):
    frame = read_array(FRAME)
    # DimSize 260 400 (i, j) -> (rows, cols) = (400, 260).
    assert frame.shape == (400, 260) and frame.dtype == np.uint8
    assert frame.min() == 0 and frame.max() == 255 and frame.std() > 10
    entry = {**ENTRY, "image_glob": f"TestImages/{FRAME.name}"}
    prepare_into(ROOT, tmp_path / "out", job_config("plus", entry, split=ONE_PATIENT_SPLIT))
    df = read_manifest(tmp_path / "out" / layout.MANIFEST)
    assert list(df.sample_id) == ["UltrasonixLinearScanConvertedData.igs"]     # one 2D sample, no slicing
    image = np.asarray(Image.open(df.image[0]))
    assert image.shape == (32, 32) and image.std() > 10
