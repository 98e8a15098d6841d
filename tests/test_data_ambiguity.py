"""Ambiguous raw data is refused, not guessed: two files of one identity, a label map that could
belong to another patient's image, fewer patients than the splits need, split files that do not
match the data, label maps of another size than their image. Each refusal is one line naming
the file (or config key) and the reason, and leaves no prepared output behind.

Every input is made here: PNGs of a few pixels, and the tiny CAMUS tree of test_data_factories.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_data_factories import job_config, prepare_into, write_busi, write_camus_nifti, write_png, write_sitk

from sonodiff.contracts import layout
from sonodiff.contracts.manifest import read_manifest
from sonodiff.data import busi, folder
from sonodiff.data.readers import read_array
from sonodiff.data.split import check_split_lists, grouped_split, seeded_split
from sonodiff.errors import InputError

FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}
BUSI = {"format": "busi", "source": {"path": "unused"}, "img_size": 8,
        "labels": {"background": 0, "lesion": 1}, "probe": "linear"}
OWN = {"format": "folder", "source": {"path": "unused"}, "img_size": 8, "probe": "convex",
       "labels": {"background": 0, "organ": 1}, "image_glob": "images/**/*.png", "label_glob": "masks/**/*.png",
       "label_suffix": ""}
UNLABELLED = {**OWN, "labels": {"background": 0}, "label_glob": "", "sector_label": False}


def _refused(raw: Path, out: Path, name: str, entry: dict, match: str) -> str:
    """Prepare must fail with one line matching ``match`` and leave ``out`` absent."""
    with pytest.raises(InputError, match=match) as err:
        prepare_into(raw, out, job_config(name, entry))
    msg = str(err.value)
    assert "\n" not in msg
    assert not out.exists(), f"prepared output left behind: {sorted(out.rglob('*'))}"
    return msg


def _image(path: Path, shape=(6, 6), seed=0) -> Path:
    rng = np.random.default_rng([seed, *shape])
    return write_png((40 + 200 * rng.random(shape)).astype(np.uint8), path)


def _mask(path: Path, shape=(6, 6), box=(1, 3)) -> Path:
    lab = np.zeros(shape, np.uint8)
    lab[box[0]:box[1], box[0]:box[1]] = 1
    return write_png(lab, path)


# ------------------------------------------------------------------------------------- BUSI names


@pytest.fixture
def busi_raw(tmp_path):
    return write_busi(tmp_path / "raw", counts={"benign": 3, "malignant": 3, "normal": 3}, h=6, w=8)


def test_busi_two_images_of_one_number_are_refused(busi_raw, tmp_path):
    d = busi_raw / "Dataset_BUSI_with_GT" / "benign"
    _image(d / "benign (01).png", (6, 8))
    write_png(np.zeros((6, 8), np.uint8), d / "benign (01)_mask.png")
    msg = _refused(busi_raw, tmp_path / "out", "busi", BUSI, "two files have the image number benign \\(1\\)")
    assert msg.startswith(f"{d / 'benign (1).png'}: ") and msg.endswith(f"this one and {d / 'benign (01).png'}")


def test_busi_mask_spelled_for_another_image_is_refused(busi_raw, tmp_path):
    # benign (1).png has its own _mask; "benign (01)_mask_1.png" spells no image and is not merged into it.
    d = busi_raw / "Dataset_BUSI_with_GT" / "benign"
    write_png(np.full((6, 8), 255, np.uint8), d / "benign (01)_mask_1.png")
    msg = _refused(busi_raw, tmp_path / "out", "busi", BUSI, r"mask without its image benign \(01\)\.png$")
    assert msg.startswith(f"{d / 'benign (01)_mask_1.png'}: ")


def test_busi_two_masks_of_one_index_are_refused(busi_raw, tmp_path):
    d = busi_raw / "Dataset_BUSI_with_GT" / "malignant"
    shutil.copy(d / "malignant (1)_mask_1.png", d / "malignant (1)_mask_01.png")
    msg = _refused(busi_raw, tmp_path / "out", "busi", BUSI, r"two files have the mask malignant \(1\)_mask_1: ")
    assert str(d / "malignant (1)_mask_01.png") in msg and str(d / "malignant (1)_mask_1.png") in msg


def test_busi_masks_merged_only_for_their_own_image(busi_raw):
    d = busi_raw / "Dataset_BUSI_with_GT" / "benign"
    _image(d / "benign (10).png", (6, 8))
    _mask(d / "benign (10)_mask.png", (6, 8))
    _mask(d / "benign (10)_mask_1.png", (6, 8))
    units = {u.key: u for u in busi.list_units(busi_raw, dict(BUSI))}
    assert [m.name for m in units["benign_1"].labels] == ["benign (1)_mask.png"]
    assert [m.name for m in units["benign_10"].labels] == ["benign (10)_mask.png", "benign (10)_mask_1.png"]


# ------------------------------------------------------------------------------- folder pairing


def test_folder_label_of_another_patient_is_refused(tmp_path):
    # p1's image and p2's label map share the stem frame1: before, the label went to p1's image.
    raw = tmp_path / "raw"
    for p in ("p1", "p2", "p3"):
        _image(raw / "images" / p / "frame0.png", seed=len(p))
        _mask(raw / "masks" / p / "frame0.png")
    _image(raw / "images" / "p1" / "frame1.png")
    label = _mask(raw / "masks" / "p2" / "frame1.png")
    msg = _refused(raw, tmp_path / "out", "own", OWN, "label map without an image: no image frame1")
    assert msg.startswith(f"{label}: ") and "at p2/frame1.* under " in msg


def test_folder_single_image_and_label_of_two_patients_are_refused(tmp_path):
    # One image and one label, in different patients' folders: a common-folder rule would pair them.
    raw = tmp_path / "raw"
    _image(raw / "images" / "p1" / "frame1.png")
    label = _mask(raw / "masks" / "p2" / "frame1.png")
    assert label.is_file()
    with pytest.raises(InputError, match=r"no image/label pair: 1 images match image_glob 'images/\*\*/\*\.png', "
                                         r"1 label maps match") as err:
        folder.list_units(raw, dict(OWN))
    assert str(err.value).startswith(f"{raw}: ")


def test_folder_image_with_two_candidate_labels_is_refused(tmp_path):
    raw = tmp_path / "raw"
    image = _image(raw / "scans" / "p1" / "a.png")
    for p in ("p2", "p3"):
        _image(raw / "scans" / p / "a.png", seed=len(p))
        _mask(raw / "scans" / p / "a_mask.png")
    first, second = _mask(raw / "scans" / "p1" / "a_mask.png"), _mask(raw / "scans" / "p1" / "a_seg.png")
    entry = {**OWN, "image_glob": "**/*.png", "label_glob": "**/*_*.png", "label_suffix": None}
    msg = _refused(raw, tmp_path / "out", "own", entry, "ambiguous label map: 2 candidates")
    assert msg.startswith(f"{image}: ") and msg.endswith(f"{first}, {second}")


def test_folder_pairs_by_patient_and_stem(tmp_path):
    raw = tmp_path / "raw"
    for k, p in enumerate(("p1", "p2", "p3")):
        _image(raw / "images" / p / "frame1.png", seed=k)
        _mask(raw / "masks" / p / "frame1.png", box=(k, k + 2))
    units = folder.list_units(raw, dict(OWN))
    assert {(u.patient_id, u.labels[0].parent.name) for u in units} == {("p1", "p1"), ("p2", "p2"), ("p3", "p3")}


@pytest.mark.parametrize("glob", ["*/*.png", "**/*.png"])
def test_folder_of_one_patient_is_refused_not_spread(tmp_path, glob):
    # All frames lie in p1/: one patient, whom the three splits of 0.6/0.2/0.2 cannot share.
    raw = tmp_path / "raw"
    for i in range(3):
        _image(raw / "p1" / f"frame{i}.png", seed=i)
    assert {u.patient_id for u in folder.list_units(raw, {**UNLABELLED, "image_glob": glob})} == {"p1"}
    msg = _refused(raw, tmp_path / "out", "own", {**UNLABELLED, "image_glob": glob},
                   r"^config key split\.fractions: dataset own has 1 patient, but the non-zero fractions "
                   r"\(train 0\.6, val 0\.2, test 0\.2\) need at least 3, one per split")
    assert "add patients or set a fraction to 0" in msg


def test_images_of_a_named_folder_are_one_patient_each(tmp_path):
    raw = tmp_path / "raw"
    for i in range(3):
        _image(raw / "images" / f"case{i}.png", seed=i)
    units = folder.list_units(raw, {**UNLABELLED, "image_glob": "images/*.png"})
    assert sorted(u.patient_id for u in units) == ["case0", "case1", "case2"]


# ----------------------------------------------------------------------------------------- splits


def test_too_few_patients_say_how_many_are_needed():
    with pytest.raises(InputError, match=r"^config key split\.fractions: dataset d has 2 patients, but .* need at "
                                         r"least 3, one per split"):
        seeded_split(["a", "b"], FRACTIONS, 0, dataset="d")
    # Duplicate groups count once: three patients, two of them copies of each other.
    with pytest.raises(InputError, match=r"2 patients once duplicate groups are joined \(3 before\)"):
        grouped_split(["a", "b", "c"], FRACTIONS, 0, groups={"dup001": ["a", "b"]}, dataset="d")
    assert set(seeded_split(["a", "b"], {"train": 0.5, "val": 0.0, "test": 0.5}, 0).values()) == {"train", "test"}


def test_patients_without_a_kept_slice_do_not_count(tmp_path):
    # Three volumes, one without any labelled slice: two patients keep samples, three splits need three.
    raw = tmp_path / "raw"
    rng = np.random.default_rng(0)
    for k in range(3):
        write_sitk((40 + 200 * rng.random((2, 6, 6))).astype(np.uint8), raw / "images" / f"p{k}" / "v.nii.gz")
        lab = np.zeros((2, 6, 6), np.uint8)
        lab[:, 1:3, 1:3] = 1 if k else 0
        write_sitk(lab, raw / "masks" / f"p{k}" / "v.nii.gz")
    entry = {**OWN, "image_glob": "images/**/*.nii.gz", "label_glob": "masks/**/*.nii.gz", "slice_axis": 0}
    _refused(raw, tmp_path / "out", "own", entry, r"^config key split\.fractions: dataset own has 2 patients")


def test_small_strata_are_pooled_so_every_split_gets_a_patient():
    strata = {"b1": "benign", "b2": "benign", "m1": "malignant"}
    out = seeded_split(list(strata), FRACTIONS, 0, strata)
    assert sorted(out.values()) == ["test", "train", "val"]


def test_split_file_checks_name_the_file_and_the_ids(tmp_path):
    files = {tmp_path / "train.txt": ["p1", "p2", *[f"x{i}" for i in range(7)]], tmp_path / "test.txt": ["p3"]}
    with pytest.raises(InputError) as err:
        check_split_lists(files, {"p1", "p2", "p3"}, "the data")
    assert str(err.value) == f"{tmp_path / 'train.txt'}: 7 patient ids with no images in the data: " \
                             "x0, x1, x2, x3, x4, ... (7 in all)"
    with pytest.raises(InputError) as err:
        check_split_lists({tmp_path / "train.txt": ["p1"]}, {"p1", "p2"}, "the data")
    assert str(err.value) == f"{tmp_path / 'train.txt'}: 1 patients with images in the data are in no split " \
                             "file (train.txt): p2"


def test_camus_split_file_naming_a_patient_without_images_is_refused(tmp_path):
    raw = write_camus_nifti(tmp_path / "raw", groups={"training": [1, 2, 3], "validation": [4], "testing": [5]},
                            h=8, w=8)
    empty = raw / "database_nifti" / "patient0004"
    shutil.rmtree(empty)
    empty.mkdir()  # the folder is there, its images are not
    entry = {"format": "camus", "source": {"path": "unused"}, "img_size": 8, "probe": "convex",
             "labels": {"background": 0, "lv": 1, "myo": 2, "la": 3}}
    msg = _refused(raw, tmp_path / "out", "camus", entry, r"1 patient ids with no images in \S+database_nifti: "
                                                          r"patient0004$")
    assert msg.startswith(f"{raw / 'database_split' / 'subgroup_validation.txt'}: ")


def test_camus_two_files_of_one_stem_are_refused(tmp_path):
    raw = write_camus_nifti(tmp_path / "raw", groups={"training": [1, 2, 3], "validation": [4], "testing": [5]},
                            h=8, w=8)
    d = raw / "database_nifti" / "patient0002"
    other = d / "patient0002_2CH_ED.mhd"
    other.write_text("ObjectType = Image\n")  # a second file of the stem; refused before it is read
    entry = {"format": "camus", "source": {"path": "unused"}, "img_size": 8, "probe": "convex",
             "labels": {"background": 0, "lv": 1, "myo": 2, "la": 3}}
    msg = _refused(raw, tmp_path / "out", "camus", entry, "two files have the stem patient0002_2CH_ED: this one and ")
    assert msg.startswith(f"{other}: ") and msg.endswith(str(d / "patient0002_2CH_ED.nii.gz"))


# ------------------------------------------------------------------------------------------ sizes


def test_images_of_mixed_sizes_are_resized(tmp_path):
    raw = tmp_path / "raw"
    for k, shape in enumerate([(6, 6), (9, 14), (20, 7)]):
        _image(raw / "images" / f"p{k}" / "a.png", shape, seed=k)
        _mask(raw / "masks" / f"p{k}" / "a.png", shape)
    for pad in (False, True):
        out = tmp_path / f"out{pad}"
        prepare_into(raw, out, job_config("own", {**OWN, "pad_square": pad}))
        df = read_manifest(out / layout.MANIFEST)
        assert len(df) == 3
        for row in df.itertuples():
            assert np.asarray(Image.open(row.image)).shape == np.asarray(Image.open(row.label)).shape == (8, 8)


def test_label_map_of_another_size_is_refused(tmp_path):
    raw = tmp_path / "raw"
    for k in range(3):
        _image(raw / "images" / f"p{k}" / "a.png", (6, 6), seed=k)
        _mask(raw / "masks" / f"p{k}" / "a.png", (6, 6))
    label = _mask(raw / "masks" / "p1" / "a.png", (7, 6))
    msg = _refused(raw, tmp_path / "out", "own", OWN, r"label shape \(7, 6\) differs from image shape \(6, 6\)")
    assert msg.startswith(f"{label}: ") and msg.endswith(f"({raw / 'images' / 'p1' / 'a.png'})")


def test_multiframe_file_is_refused_and_two_band_images_read_as_grey(tmp_path):
    frames = [Image.new("L", (5, 4), 50 * i) for i in range(3)]
    frames[0].save(tmp_path / "stack.tif", save_all=True, append_images=frames[1:])
    with pytest.raises(InputError, match=r"stack\.tif: 3 frames in one image file"):
        read_array(tmp_path / "stack.tif")
    Image.new("RGB", (5, 4), (200, 10, 10)).convert("PA").save(tmp_path / "pa.tif")
    assert read_array(tmp_path / "pa.tif").shape == (4, 5)  # not a 4 x 5 x 2 "volume"
