"""Duplicate detection (sonodiff.data.duplicates): the similarity's margins on the real BUSI sample,
exact copies, grouping (union-find), grouped splits, official splits kept with a warning, the
settings and their errors."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_data_factories import fan, job_config, prepare_into, write_camus_nifti, write_sitk

from sonodiff.contracts import layout
from sonodiff.contracts.manifest import read_manifest
from sonodiff.data.duplicates import (DuplicateFinder, DuplicateSettings, base_image, evenly_spaced,
                                      group_patients, near_pairs)
from sonodiff.data.readers import read_array
from sonodiff.data.split import grouped_split, seeded_split
from sonodiff.errors import InputError

REAL = sorted(p for p in (Path(__file__).parent / "data" / "busi").rglob("*.png") if "_mask" not in p.name)
THRESHOLD = DuplicateSettings().near_threshold


def _crop(image: np.ndarray, top: float, bottom: float, left: float, right: float) -> np.ndarray:
    """Cut fractions off each side and resize back to the original size (a re-cropped copy)."""
    h, w = image.shape
    part = image[round(top * h):h - round(bottom * h), round(left * w):w - round(right * w)]
    return np.asarray(Image.fromarray(part).resize((w, h), Image.Resampling.BILINEAR))


def _similarities(images: list[np.ndarray]) -> dict[tuple[int, int], float]:
    """r_ij of every pair, each image its own patient."""
    return near_pairs(np.stack([base_image(a) for a in images]), [str(i) for i in range(len(images))], -2.0)


def test_threshold_separates_real_distinct_images_from_copies():
    real = [read_array(p) for p in REAL]
    assert len(real) == 20
    distinct = max(_similarities(real).values())
    assert distinct < 0.75  # measured 0.665 (malignant (1) / malignant (150))
    copies = {
        "2 % off every side": lambda a: _crop(a, 0.02, 0.02, 0.02, 0.02),
        "4 % off the top only": lambda a: _crop(a, 0.04, 0, 0, 0),
        "3/1/0/2 % off top/bottom/left/right": lambda a: _crop(a, 0.03, 0.01, 0, 0.02),
        "5 % off top and left": lambda a: _crop(a, 0.05, 0, 0.05, 0),
        "half size": lambda a: np.asarray(Image.fromarray(a).resize((a.shape[1] // 2, a.shape[0] // 2))),
    }
    for i in (0, 7, 12, 19):  # benign (1), benign (60), malignant (20), normal (90)
        for name, make in copies.items():
            r = _similarities(real + [make(real[i])])[(i, 20)]
            assert r >= THRESHOLD + 0.03, (REAL[i].name, name, r)  # measured >= 0.95


def test_shared_fan_is_not_a_duplicate():
    """Fans of one geometry with their own content: raw correlation high, r low (the mean image's
    direction is projected out)."""
    rng = np.random.default_rng(0)
    images = [fan(40, 32, rng)[0] for _ in range(12)]
    small = np.stack([np.asarray(Image.fromarray(a).resize((16, 16), Image.Resampling.BOX), float).ravel()
                      for a in images])
    assert np.corrcoef(small)[np.triu_indices(12, 1)].min() > 0.9
    assert max(_similarities(images).values()) < 0.5


def _finder(**settings) -> DuplicateFinder:
    return DuplicateFinder(DuplicateSettings(**settings))


def test_exact_copies_across_patients_only():
    rng = np.random.default_rng(1)
    a, b, c = (rng.integers(0, 255, (30, 40), dtype=np.uint8) for _ in range(3))
    f = _finder()
    for sid, pid, img in [("a1", "A", a), ("a2", "A", a.copy()), ("b1", "B", a.copy()), ("c1", "C", a.copy()),
                          ("d1", "D", b), ("d2", "D", b.copy()), ("e1", "E", c),
                          ("z1", "Z", np.full((30, 40), 7, np.uint8)), ("z2", "Y", np.full((30, 40), 7, np.uint8))]:
        f.add(sid, pid, f"{sid}.png", img)
    pairs = f.pairs()
    # A, B, C hold one image (A twice): two exact pairs to A's first copy; D's two copies are one
    # patient's; constant images (Z, Y) are never duplicates.
    assert [(f.samples[p.a].sample_id, f.samples[p.b].sample_id, p.kind) for p in pairs] == [
        ("a1", "b1", "exact"), ("a1", "c1", "exact")]
    assert group_patients((f.samples[p.a].patient_id, f.samples[p.b].patient_id) for p in pairs) == {
        "dup001": ["A", "B", "C"]}


def test_near_detection_can_be_limited_or_switched_off():
    real = [read_array(p) for p in REAL[:6]]
    copy = _crop(real[0], 0.02, 0.02, 0.02, 0.02)

    def found(**settings):
        f = _finder(**settings)
        for i, img in enumerate(real + [copy, real[1].copy()]):
            f.add(f"s{i}", f"p{i}", f"s{i}.png", img)
        return sorted((f.samples[p.a].sample_id, f.samples[p.b].sample_id, p.kind) for p in f.pairs())

    assert found() == [("s0", "s6", "near"), ("s1", "s7", "exact")]
    assert found(near_threshold=None) == [("s1", "s7", "exact")]
    assert found(detect=False) == []


def test_near_comparison_takes_evenly_spaced_samples_per_patient():
    assert evenly_spaced(list(range(10)), 4) == [0, 3, 6, 9]
    assert evenly_spaced(list(range(3)), 4) == [0, 1, 2] and evenly_spaced(list(range(40)), 0) == list(range(40))
    rng = np.random.default_rng(2)
    volume = rng.integers(0, 255, (40, 24, 24), dtype=np.uint8)
    f = _finder(max_per_patient=16)
    for k, img in enumerate(volume):  # W's volume is a copy of V's; slices of one patient never pair
        f.add(f"v_s{k}", "V", "v.nii", img)
        f.add(f"w_s{k}", "W", "w.nii", img.copy())
        f.add(f"u_s{k}", "U", "u.nii", rng.integers(0, 255, (24, 24), dtype=np.uint8))
    assert len(f._near_candidates()) == 48  # 16 of each patient's 40 slices in the near comparison
    pairs = f.pairs()  # exact copies are looked for among all slices
    assert len(pairs) == 40 and {p.kind for p in pairs} == {"exact"}
    assert all((f.samples[p.a].patient_id, f.samples[p.b].patient_id) == ("V", "W") for p in pairs)


def test_union_find_groups_chains():
    links = [("b", "c"), ("a", "b"), ("e", "d"), ("c", "a"), ("x", "y")]
    assert group_patients(links) == {"dup001": ["a", "b", "c"], "dup002": ["d", "e"], "dup003": ["x", "y"]}
    assert group_patients([]) == {}


def test_grouped_split_keeps_groups_whole_and_is_unchanged_without():
    patients = [f"p{i:02d}" for i in range(20)]
    fractions = {"train": 0.6, "val": 0.2, "test": 0.2}
    assert grouped_split(patients, fractions, 3) == seeded_split(patients, fractions, 3)
    groups = {"dup001": ["p01", "p07", "p13", "p19"], "dup002": ["p02", "p03"]}
    for seed in range(10):
        out = grouped_split(patients, fractions, seed, groups=groups)
        assert all(len({out[p] for p in members}) == 1 for members in groups.values())
        assert set(out.values()) == {"train", "val", "test"}


def test_official_split_is_kept_and_a_split_group_is_reported(tmp_path, caplog):
    raw = write_camus_nifti(tmp_path / "raw")  # patients 1-4 training, 5 validation, 6 testing
    train_img = raw / "database_nifti" / "patient0001" / "patient0001_2CH_ED.nii.gz"
    test_img = raw / "database_nifti" / "patient0006" / "patient0006_2CH_ED.nii.gz"
    shutil.copy(train_img, test_img)  # the image; its label map differs (the atrium erased)
    label = read_array(str(train_img).replace(".nii.gz", "_gt.nii.gz"))
    write_sitk(np.where(label == 3, 0, label).astype(np.uint8), Path(str(test_img).replace(".nii.gz", "_gt.nii.gz")))
    entry = {"format": "camus", "source": {"path": "unused"}, "img_size": 24, "probe": "convex",
             "labels": {"background": 0, "lv_cavity": 1, "myocardium": 2, "left_atrium": 3}}
    with caplog.at_level(logging.WARNING):
        info = prepare_into(raw, tmp_path / "out", job_config("camus", entry))
    df = read_manifest(tmp_path / "out" / layout.MANIFEST)
    split_of = df.groupby("patient_id")["split"].first()
    assert split_of["patient0006"] == "test" and split_of["patient0001"] in ("train", "val")
    assert set(df.loc[df.patient_id.isin(["patient0001", "patient0006"]), "duplicate_group"]) == {"dup001"}
    counts = info["duplicates"]["counts"]
    assert counts["groups"] == 1 and counts["groups_across_splits"] == 1 and counts["exact_pairs"] == 1
    assert info["duplicates"]["groups"][0]["conflicts"] == [
        "label maps differ: patient0001_2CH_ED, patient0006_2CH_ED"]
    leak = [r.getMessage() for r in caplog.records if "official splits" in r.getMessage()]
    assert len(leak) == 1 and str(train_img) in leak[0] and str(test_img) in leak[0]


@pytest.mark.parametrize("entry, key", [
    ({"near_threshold": 1.5}, "near_threshold"), ({"near_threshold": 0}, "near_threshold"),
    ({"max_per_patient": -1}, "max_per_patient"), ({"nearthreshold": 0.9}, "nearthreshold")])
def test_bad_settings_name_the_key(entry, key):
    with pytest.raises(InputError, match=rf"config key datasets\.d\.duplicates\.{key}:"):
        DuplicateSettings.from_config(entry, "config key datasets.d.duplicates")
    with pytest.raises(InputError, match=rf"datasets\.busi\.duplicates\.{key}") as err:
        job_config("busi", {"format": "busi", "source": {"path": "x"}, "labels": {"background": 0, "lesion": 1},
                            "duplicates": entry})
    assert "\n" not in str(err.value)
