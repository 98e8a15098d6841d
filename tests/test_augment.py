"""Label-map augmentation (Echo from noise, section 2.2): label set, each source's own sector,
undeformed val maps, copies 0, determinism, splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from test_data_factories import CAMUS_LABELS, job_config, prepare_into, write_camus_nifti

from sonodiff.augment import AugmentParams, augment_dataset, augment_label_map, random_affine, sample_seed
from sonodiff.contracts import layout
from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.contracts.labelmaps import LABELMAP_COLUMNS, UNDEFORMED_COPY, is_undeformed
from sonodiff.contracts.manifest import read_manifest
from sonodiff.errors import InputError
from sonodiff.sample.plan import sampling_jobs
from sonodiff.segment.leakage import leaking_patients

ENTRY = {"format": "camus", "source": {"path": "unused"}, "img_size": 32, "labels": CAMUS_LABELS}


def _augment(root, out_manifest, cfg):
    data = PreparedDataset.in_dir(root / "data")
    return augment_dataset(data.manifest, data.info_path, data.sector_path, out_manifest, cfg, progress=False)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("aug")
    raw = write_camus_nifti(root / "raw", groups={"training": [1, 2, 3], "validation": [4], "testing": [5]})
    cfg = job_config("camus", ENTRY, augment={"copies": 3})
    prepare_into(raw, root / "data", cfg)
    out = _augment(root, root / "aug" / layout.MANIFEST, cfg)
    return root, cfg, out


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_manifest_contract_and_splits(prepared):
    root, _, out = prepared
    df = read_manifest(root / "aug" / layout.MANIFEST)
    assert list(df.columns) == list(LABELMAP_COLUMNS)
    src = read_manifest(root / "data" / layout.MANIFEST)
    assert "test" in set(src.split)
    assert set(df.split) == {"train", "val"}                     # never the test split
    n_val = int((src.split == "val").sum())
    assert len(df) == 3 * int((src.split != "test").sum()) + n_val   # 3 copies of each, plus val undeformed
    assert set(df["copy"]) == {UNDEFORMED_COPY, 0, 1, 2}
    deformed = df[~is_undeformed(df)]
    assert (deformed.sample_id == deformed.source_sample_id + "_aug" + deformed["copy"].astype(str)).all()
    source = src.set_index("sample_id").loc[df.source_sample_id]
    assert (df.source_label.to_numpy() == source.label.to_numpy()).all()
    assert (df.real_image.to_numpy() == source.image.to_numpy()).all()
    assert (df.patient_id.to_numpy() == source.patient_id.to_numpy()).all()
    assert (df.split.to_numpy() == source.split.to_numpy()).all()


def test_val_maps_also_enter_undeformed(prepared):
    """Every val map once as itself (sample_id == source_sample_id, copy -1, the source's pixels);
    no train map undeformed; they are val-split maps to the leakage guard, not test; and the
    sampling plan takes them without a new column."""
    root, cfg, _ = prepared
    df = read_manifest(root / "aug" / layout.MANIFEST)
    src = read_manifest(root / "data" / layout.MANIFEST)
    plain = df[is_undeformed(df)]
    assert sorted(plain.sample_id) == sorted(src.sample_id[src.split == "val"])
    assert set(plain.split) == {"val"} and (plain["copy"] == UNDEFORMED_COPY).all()
    assert (df.loc[~is_undeformed(df), "copy"] >= 0).all()
    for row in plain.itertuples():
        assert np.array_equal(_pixels(row.label), _pixels(row.source_label))
        assert row.label != row.source_label                      # a file of the augment folder
    assert leaking_patients(df, src) == []
    plan = sampling_jobs(cfg, root / "aug" / layout.MANIFEST)          # the sample stage plans them as they are
    assert set(plain.sample_id) <= set(plan.sample_id) and plan.seed.is_unique and len(plan) == len(df)
    test_row = src[src.split == "test"].iloc[0]
    planted = plain.iloc[:1].assign(sample_id=test_row.sample_id, source_sample_id=test_row.sample_id,
                                    real_image=test_row.image)
    assert leaking_patients(planted, src) == [test_row.patient_id]


def test_copies_zero_keeps_exactly_the_originals(prepared, tmp_path):
    root, cfg, _ = prepared
    out = _augment(root, tmp_path / "a" / layout.MANIFEST, dict(cfg, augment={**cfg["augment"], "copies": 0}))
    src = read_manifest(root / "data" / layout.MANIFEST)
    assert sorted(out.sample_id) == sorted(src.sample_id[src.split != "test"])
    assert is_undeformed(out).all() and (out["copy"] == UNDEFORMED_COPY).all()
    assert all(np.array_equal(_pixels(a), _pixels(b)) for a, b in zip(out.label, out.source_label))
    assert len(list((tmp_path / "a" / layout.LABELS).iterdir())) == len(out)


def test_values_sector_and_difference(prepared):
    """A copy is zero outside its own source's sector (the source map's non-zero pixels) and
    filled inside it; every copy differs from its source."""
    root, _, _ = prepared
    df = read_manifest(root / "aug" / layout.MANIFEST)
    df = df[~is_undeformed(df)]
    changed = 0
    for row in df.itertuples():
        lab, source = _pixels(row.label), _pixels(row.source_label)
        assert set(np.unique(lab)) <= {0, 1, 2, 3, 4}
        assert (lab[source == 0] == 0).all()                      # nothing outside the source's sector
        assert (lab[source != 0] != 0).all()                      # its sector is filled (id 4 or structures)
        changed += not np.array_equal(lab, source)
    assert changed == len(df)
    # The copies of one map differ from each other too.
    first = df[df.source_sample_id == df.source_sample_id.iloc[0]]
    maps = [np.asarray(Image.open(p)) for p in first.label]
    assert not np.array_equal(maps[0], maps[1]) and not np.array_equal(maps[1], maps[2])


def test_deterministic_with_seed(prepared, tmp_path):
    root, cfg, out = prepared
    again = _augment(root, tmp_path / "aug" / layout.MANIFEST, cfg)
    for a, b in zip(out.label, again.label):
        assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))
    other = dict(cfg, seed=cfg["seed"] + 1)
    third = _augment(root, tmp_path / "aug3" / layout.MANIFEST, other)
    assert any(not np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))
               for a, b in zip(out.label, third.label))


def test_splits_config_restricts(prepared, tmp_path):
    root, cfg, _ = prepared
    only_train = dict(cfg, augment={**cfg["augment"], "splits": ["train"], "copies": 1})
    out = _augment(root, tmp_path / "a" / layout.MANIFEST, only_train)
    assert set(out.split) == {"train"}
    assert set(pd.read_csv(tmp_path / "a" / layout.MANIFEST).split) == {"train"}


def test_sector_is_read_from_the_declared_file(prepared, tmp_path):
    root, cfg, _ = prepared
    data = PreparedDataset.in_dir(root / "data")
    small = tmp_path / "small.png"
    small.write_bytes(b"not a png")
    with pytest.raises(InputError, match="unreadable image") as err:
        augment_dataset(data.manifest, data.info_path, small, tmp_path / "b" / layout.MANIFEST, cfg, progress=False)
    assert str(small) in str(err.value) and not (tmp_path / "b" / layout.LABELS).exists()


def test_affine_ranges_off_is_identity():
    lab = np.zeros((20, 20), np.uint8)
    lab[5:12, 6:14] = 2
    still = AugmentParams(rotation_deg=0, translate=(0, 0), scale=(1, 1), shear_deg=0)
    assert np.array_equal(random_affine(lab, still, np.random.default_rng(0)), lab)
    # Zero elastic displacement too: the whole augmentation is the identity (then clipping).
    sector = np.ones((20, 20), bool)
    sector[:, :3] = False
    none = AugmentParams(rotation_deg=0, translate=(0, 0), scale=(1, 1), shear_deg=0,
                         max_displacement=(0, 0, 0))
    with_sector = np.where(sector, np.where(lab > 0, lab, 3), 0).astype(np.uint8)
    out = augment_label_map(with_sector, np.ones((20, 20), bool), 3, none, sample_seed(0, "x", 0))
    assert np.array_equal(out, with_sector)                     # clipped to its own sector, not the mask's
    out = augment_label_map(lab, sector, None, none, sample_seed(0, "x", 0))
    expect = lab.copy()
    expect[:, :3] = 0                                            # no sector label: the dataset's mask
    assert np.array_equal(out, expect)


def _fan(size: int, half_width: float, sector_id: int = 3) -> np.ndarray:
    """A downward cone of half-width ``half_width`` x row, filled with ``sector_id``, a blob of 1 inside."""
    rows, cols = np.mgrid[0:size, 0:size]
    cone = np.abs(cols - (size - 1) / 2) <= 1 + half_width * rows
    lab = np.where(cone, sector_id, 0).astype(np.uint8)
    lab[(np.hypot(rows - size * 0.6, cols - size / 2) < size / 6) & cone] = 1
    return lab


def test_each_copy_is_clipped_to_its_own_sources_sector():
    """A source whose cone is narrower than the dataset's sector: its copies have no non-zero
    pixel outside that cone and fill it; a wide source keeps the wide sector."""
    params = AugmentParams(rotation_deg=10, translate=(0.05, 0.1), scale=(0.8, 1.2), shear_deg=5)
    wide, narrow = _fan(32, 0.9), _fan(32, 0.3)
    dataset_sector = wide != 0
    assert (narrow != 0).sum() < 0.6 * dataset_sector.sum()
    for k in range(3):
        for source in (wide, narrow):
            out = augment_label_map(source, dataset_sector, 3, params, sample_seed(0, "s", k))
            assert (out[source == 0] == 0).all() and (out[source != 0] != 0).all()
            assert set(np.unique(out)) <= {0, 1, 3} and (out == 1).any()
