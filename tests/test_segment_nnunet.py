"""nnU-Net v2 export: ids per (dataset, source), case ids, and folders in nnU-Net's documented raw
format (https://github.com/MIC-DKFZ/nnUNet/blob/master/documentation/dataset_format.md) holding the
segmenter's own classes; nnU-Net's ``verify_dataset_integrity`` when ``nnunetv2`` is installed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.contracts.manifest import read_manifest, write_manifest
from sonodiff.errors import InputError
from test_segment import SPLITS, make_augment_and_samples, make_prepared

SONODIFF = {"segment": {"recipe": "sonodiff"}, "dataset": "tiny"}
ECHO = {"segment": {"recipe": "echo_from_noise"}, "dataset": "tiny"}
#: Required keys of nnU-Net v2's dataset.json and the optional ones the export writes.
REQUIRED = {"channel_names", "labels", "numTraining", "file_ending"}
OPTIONAL = {"name", "description", "reference", "licence", "overwrite_image_reader_writer"}


@pytest.fixture()
def tiny(tmp_path):
    manifest = make_prepared(tmp_path, SPLITS)
    _, samples = make_augment_and_samples(tmp_path, manifest, "bmaps")
    return {"root": tmp_path, "dataset": PreparedDataset.in_dir(manifest.parent), "samples": {"bmaps": samples}}


def export(tiny, source="real", cfg=SONODIFF, name="Dataset500_tiny_real"):
    from sonodiff.segment.nnunet import write_nnunet_dataset

    folder = tiny["root"] / "nnunet_raw" / name
    info = write_nnunet_dataset(folder, tiny["dataset"], source, tiny["samples"], cfg)
    return folder, info


def read(path: Path) -> tuple[str, np.ndarray]:
    with Image.open(path) as img:
        return img.mode, np.asarray(img)


def check_documented_format(folder: Path) -> dict:
    """The folder as nnU-Net v2's dataset_format.md describes it; returns its dataset.json."""
    info = json.loads((folder / "dataset.json").read_text())
    assert REQUIRED <= set(info) and set(info) <= REQUIRED | OPTIONAL | {"sonodiff"}
    assert info["channel_names"] == {"0": "ultrasound"} and info["file_ending"] == ".png"
    assert info["overwrite_image_reader_writer"] == "NaturalImage2DIO"
    labels = info["labels"]
    assert labels["background"] == 0 and all(isinstance(v, int) for v in labels.values())
    assert sorted(labels.values()) == list(range(len(labels)))          # consecutive from 0
    for images, segs in (("imagesTr", "labelsTr"), ("imagesTs", "labelsTs")):
        image_files = sorted(p.name for p in (folder / images).iterdir())
        label_files = sorted(p.name for p in (folder / segs).iterdir())
        assert all(f.endswith("_0000.png") for f in image_files)
        assert [f[:-len("_0000.png")] for f in image_files] == [f[:-len(".png")] for f in label_files]
        for f in label_files:
            (image_mode, image), (label_mode, label) = read(folder / images / f"{f[:-4]}_0000.png"), read(folder / segs / f)
            assert image_mode == label_mode == "L" and image.ndim == label.ndim == 2 and image.shape == label.shape
            assert label.dtype == np.uint8 and set(np.unique(label).tolist()) <= set(labels.values())
        if images == "imagesTr":
            assert info["numTraining"] == len(image_files)
    return info


def test_ids_count_up_over_sorted_datasets_then_real_and_each_synthetic_variant():
    from sonodiff.segment.sources import nnunet_ids, nnunet_sources

    assert nnunet_sources(["bmaps", "baseline"]) == ["real", "synthetic_baseline", "synthetic_bmaps"]
    ids = nnunet_ids(["camus", "busi"], ["bmaps", "baseline"], 500)
    assert list(ids.items()) == [(("busi", "real"), 500), (("busi", "synthetic_baseline"), 501),
                                 (("busi", "synthetic_bmaps"), 502), (("camus", "real"), 503),
                                 (("camus", "synthetic_baseline"), 504), (("camus", "synthetic_bmaps"), 505)]
    assert nnunet_ids([], ["bmaps"], 999) == {}
    assert nnunet_ids(["a"], ["b"], 998) == {("a", "real"): 998, ("a", "synthetic_b"): 999}
    with pytest.raises(InputError, match="nnunet_first_id"):
        nnunet_ids(["a"], ["b", "c"], 998)


def test_case_ids_are_sanitised_stable_and_collisions_name_both():
    from sonodiff.segment.nnunet import case_ids

    assert case_ids(["p1_0", "a.b c/d", "x-y"], "here") == ["p1_0", "a_b_c_d", "x-y"]
    with pytest.raises(InputError, match=r"'a\.b' and 'a b' both become nnU-Net case 'a_b'"):
        case_ids(["a.b", "a b"], "here")


def test_real_export_is_nnunets_documented_format_with_the_segmenters_classes(tiny):
    from sonodiff.segment.data import build_sets, label_classes

    folder, info = export(tiny)
    assert check_documented_format(folder) == info
    assert info["labels"] == {"background": 0, "lv_cavity": 1, "myocardium": 2, "left_atrium": 3, "sector": 4}
    sets = build_sets(tiny["dataset"].manifest, "real")
    train = pd.concat([sets["train"], sets["val"]])
    assert info["numTraining"] == len(train) == 8 and info["sonodiff"]["val_cases"] == list(sets["val"]["sample_id"])
    classes = label_classes(5, 4, True)
    for split, table in (("Tr", train), ("Ts", sets["test"])):
        assert sorted(p.name for p in (folder / f"labels{split}").iterdir()) == sorted(f"{s}.png" for s in table["sample_id"])
        for row in table.itertuples():
            assert np.array_equal(read(folder / f"images{split}" / f"{row.sample_id}_0000.png")[1], read(row.image)[1])
            assert np.array_equal(read(folder / f"labels{split}" / f"{row.sample_id}.png")[1],
                                  classes.to_class[read(row.label)[1]])
    assert not [p for p in folder.parent.iterdir() if p != folder]       # no temporary left beside it


def test_synthetic_export_under_echo_from_noise_merges_the_sector_into_background(tiny):
    folder, info = export(tiny, "synthetic_bmaps", ECHO, "Dataset501_tiny_synthetic_bmaps")
    check_documented_format(folder)
    assert info["labels"] == {"background": 0, "lv_cavity": 1, "myocardium": 2, "left_atrium": 3}
    assert info["numTraining"] == 4 * 2 * 2 and info["sonodiff"]["prepared_ids"] == [0, 1, 2, 3]
    samples = pd.read_csv(tiny["samples"]["bmaps"], dtype=str)
    assert sorted(p.name for p in (folder / "imagesTr").iterdir()) == sorted(f"{s}_0000.png" for s in samples["sample_id"])
    case = samples["sample_id"][0]
    original = read(tiny["root"] / "samples" / "bmaps" / "images" / f"{case}.png")[1]
    assert np.array_equal(read(folder / "imagesTr" / f"{case}_0000.png")[1], original)
    labels = np.stack([read(p)[1] for p in (folder / "labelsTr").iterdir()])
    assert labels.max() == 3 and (labels == 0).any()
    assert len(list((folder / "imagesTs").iterdir())) == 4                 # the real test split


def test_export_replaces_an_old_folder_and_a_failed_one_leaves_it(tiny):
    folder, _ = export(tiny)
    (folder / "stale.txt").write_text("old")
    export(tiny)
    assert not (folder / "stale.txt").exists()
    (folder / "keep.txt").write_text("previous export")
    with pytest.raises(InputError, match="no samples manifest"):
        export(tiny, "synthetic_baseline")
    assert (folder / "keep.txt").exists() and not [p for p in folder.parent.iterdir() if p != folder]


def test_export_refuses_bad_folder_names_and_colliding_sample_ids(tiny, tmp_path):
    with pytest.raises(InputError, match="Dataset<three-digit id>_<name>"):
        export(tiny, name="Dataset5_tiny_real")
    df = read_manifest(tiny["dataset"].manifest)
    df.loc[0, "sample_id"], df.loc[1, "sample_id"] = "p0.0", "p0 0"
    write_manifest(df, tiny["dataset"].manifest)
    with pytest.raises(InputError, match="'p0.0' and 'p0 0' both become nnU-Net case 'p0_0'"):
        export(tiny)


def test_nnunets_own_integrity_check_passes(tiny, capsys):
    pytest.importorskip("nnunetv2")
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

    for source, cfg, name in (("real", SONODIFF, "Dataset500_tiny_real"),
                              ("synthetic_bmaps", ECHO, "Dataset501_tiny_synthetic_bmaps")):
        folder, _ = export(tiny, source, cfg, name)
        verify_dataset_integrity(str(folder), 1)
        out = capsys.readouterr().out
        assert "verify_dataset_integrity Done" in out and "Error" not in out
