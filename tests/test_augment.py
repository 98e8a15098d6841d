"""Label-map augmentation (Echo from noise, section 2.2): label set, sector, determinism, splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from test_data_factories import CAMUS_LABELS, job_config, prepare_into, write_camus_nifti

from sonodiff.augment import AugmentParams, augment_dataset, augment_label_map, random_affine, sample_seed
from sonodiff.contracts import layout
from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.contracts.labelmaps import LABELMAP_COLUMNS
from sonodiff.contracts.manifest import read_manifest
from sonodiff.errors import InputError

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


def test_manifest_contract_and_splits(prepared):
    root, _, out = prepared
    df = read_manifest(root / "aug" / layout.MANIFEST)
    assert list(df.columns) == list(LABELMAP_COLUMNS)
    src = read_manifest(root / "data" / layout.MANIFEST)
    assert "test" in set(src.split)
    assert set(df.split) == {"train", "val"}                     # never the test split
    assert len(df) == 3 * int((src.split != "test").sum())
    assert set(df["copy"]) == {0, 1, 2}
    row = df.iloc[4]
    assert row.sample_id == f"{row.source_sample_id}_aug{row['copy']}"
    source = src.set_index("sample_id").loc[row.source_sample_id]
    assert row.source_label == source.label and row.real_image == source.image
    assert row.patient_id == source.patient_id and row.split == source.split


def test_values_sector_and_difference(prepared):
    root, _, _ = prepared
    df = read_manifest(root / "aug" / layout.MANIFEST)
    sector = np.asarray(Image.open(root / "data" / layout.SECTOR)) > 127
    changed = 0
    for row in df.itertuples():
        lab = np.asarray(Image.open(row.label))
        assert set(np.unique(lab)) <= {0, 1, 2, 3, 4}
        assert (lab[~sector] == 0).all()                          # nothing outside the sector
        assert (lab[sector] != 0).all()                           # the sector is filled (id 4 or structures)
        changed += not np.array_equal(lab, np.asarray(Image.open(row.source_label)))
    assert changed == len(df)
    # The copies of one map differ from each other too.
    first = df[df.source_sample_id == df.source_sample_id[0]]
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
    out = augment_label_map(lab, sector, 3, none, sample_seed(0, "x", 0))
    expect = np.where(lab > 0, lab, 3)
    expect[:, :3] = 0
    assert np.array_equal(out, expect)
