"""Patient-level splits, sector masks and label specs."""

from __future__ import annotations

import numpy as np
import pytest

from sonodiff.data.labels import LabelSpec
from sonodiff.data.sector import add_sector_label, majority_mask, sector_mask
from sonodiff.data.split import carve_validation, seeded_split
from sonodiff.errors import InputError


def test_seeded_split_fractions_and_determinism():
    patients = [f"p{i:02d}" for i in range(20)]
    a = seeded_split(patients, {"train": 0.6, "val": 0.2, "test": 0.2}, seed=3)
    assert sorted(a) == patients
    assert [list(a.values()).count(s) for s in ("train", "val", "test")] == [12, 4, 4]
    assert a == seeded_split(list(reversed(patients)), {"train": 0.6, "val": 0.2, "test": 0.2}, seed=3)
    assert a != seeded_split(patients, {"train": 0.6, "val": 0.2, "test": 0.2}, seed=4)


def test_small_split_gets_every_split():
    out = seeded_split(["a", "b", "c"], {"train": 0.8, "val": 0.1, "test": 0.1}, seed=0)
    assert sorted(out.values()) == ["test", "train", "val"]
    # Two non-zero fractions need two patients; each gets one (round(0.25 * 2) = 0 would leave val empty).
    assert sorted(seeded_split(["a", "b"], {"train": 0.75, "val": 0.25, "test": 0.0}, 0).values()) == ["train", "val"]
    assert set(carve_validation(["a", "b"], 0.25, seed=0).values()) == {"train", "val"}


def test_stratified_split_keeps_fractions_per_class():
    patients = [f"b{i}" for i in range(10)] + [f"m{i}" for i in range(5)]
    strata = {p: p[0] for p in patients}
    out = seeded_split(patients, {"train": 0.6, "val": 0.2, "test": 0.2}, 0, strata)
    for cls, n_test in (("b", 2), ("m", 1)):
        assert sum(1 for p, s in out.items() if p[0] == cls and s == "test") == n_test


def test_carve_validation():
    out = carve_validation([f"p{i}" for i in range(8)], 0.25, seed=0)
    assert list(out.values()).count("val") == 2 and "test" not in out.values()


def test_sector_mask_fills_dark_holes_and_drops_specks():
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:64, 0:64]
    fan = np.abs(x - 32) < 4 + 0.5 * y
    img = np.where(fan, 40 + 100 * rng.random((64, 64)), 0)
    img[(np.hypot(y - 35, x - 32) < 8)] = 0          # a dark cavity inside the fan
    img[2:4, 2:4] = 255                               # a marker outside the fan
    mask = sector_mask(img.astype(np.uint8), threshold=0.02)
    assert mask[35, 32] and not mask[2, 2] and not mask[10, 2] and mask[60, 2]
    assert abs(mask.sum() - fan.sum()) < 0.03 * fan.sum()


def test_majority_and_sector_label():
    votes = np.zeros((8, 8), int)
    votes[:, :5] = 3
    votes[:, 5:] = 1
    m = majority_mask(votes, 4, radius=0)
    assert m[:, :5].all() and not m[:, 5:].any()
    ids = np.zeros((8, 8), np.uint8)
    ids[2, 2] = 1
    out = add_sector_label(ids, m, 5)
    assert out[2, 2] == 1 and out[0, 0] == 5 and out[0, 7] == 0


def test_label_spec():
    spec = LabelSpec.from_config({"background": 0, "thyroid": 1, "carotid": [2, 4], "jugular": [3, 5]})
    assert spec.ids == {"background": 0, "thyroid": 1, "carotid": 2, "jugular": 3, "sector": 4}
    assert spec.remap(np.array([0, 1, 2, 3, 4, 5])).tolist() == [0, 1, 2, 3, 2, 3]
    with pytest.raises(InputError, match=r"\[7\]"):
        spec.check(np.array([0, 7]), "f.nii")
    with pytest.raises(InputError, match="background"):
        LabelSpec.from_config({"thyroid": 1, "background": 0})
    with pytest.raises(InputError, match="more than one label"):
        LabelSpec.from_config({"background": 0, "a": 1, "b": [1, 2]})
    unlabeled = LabelSpec.from_config({"background": 0}, sector_label=True)
    assert not unlabeled.labeled and unlabeled.sector_id is None and unlabeled.ids == {"background": 0}
