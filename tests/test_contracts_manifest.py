"""Manifests are confined: a path that leaves the manifest's folder (``../../etc/passwd``, an
absolute path) is refused by every reader, naming the manifest, the row, the column and the path;
the references of a later stage into an earlier one's ``images/`` and ``labels/`` still read."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.contracts.labelmaps import read_labelmaps
from sonodiff.contracts.manifest import read_manifest, write_manifest
from sonodiff.contracts.samples import read_plan, read_samples
from sonodiff.errors import InputError


def _png(path, size=(4, 4)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros(size, np.uint8)).save(path)
    return str(path)


def _csv(path, **columns) -> str:
    """A manifest written by hand (as a corrupt or hostile one would be), two rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"sample_id": ["a", "b"], "patient_id": ["p", "p"], "split": ["train", "train"], **columns}) \
        .to_csv(path, index=False)
    return str(path)


@pytest.fixture()
def tree(tmp_path):
    """A prepared dataset and the augmented maps that refer to it, written by the contracts."""
    data, augment = tmp_path / "results" / "data" / "d", tmp_path / "results" / "augment" / "d"
    rows = [{"sample_id": s, "patient_id": "p", "split": "train", "image": _png(data / "images" / f"{s}.png"),
             "label": _png(data / "labels" / f"{s}.png"), "source_file": str(tmp_path / "raw" / f"{s}.nii")}
            for s in ("a", "b")]
    write_manifest(pd.DataFrame(rows), data / "manifest.csv")
    maps = [{"sample_id": f"{r['sample_id']}_aug0", "source_sample_id": r["sample_id"], "patient_id": "p",
             "split": "train", "copy": 0, "label": _png(augment / "labels" / f"{r['sample_id']}_aug0.png"),
             "source_label": r["label"], "real_image": r["image"]} for r in rows]
    write_manifest(pd.DataFrame(maps), augment / "manifest.csv")
    return tmp_path


def test_references_into_another_contract_and_provenance_read_back(tree):
    data = read_manifest(tree / "results" / "data" / "d" / "manifest.csv")
    assert data["source_file"].tolist() == [str(tree / "raw" / "a.nii"), str(tree / "raw" / "b.nii")]
    maps = read_labelmaps(tree / "results" / "augment" / "d" / "manifest.csv")
    assert maps["real_image"].tolist() == data["image"].tolist()
    assert maps["source_label"].tolist() == data["label"].tolist()
    # a manifest anywhere that names another set's images (a metrics test rewrites one so)
    write_manifest(maps[["sample_id", "label"]], tree / "elsewhere" / "maps.csv")
    assert read_manifest(tree / "elsewhere" / "maps.csv")["label"].tolist() == maps["label"].tolist()


@pytest.mark.parametrize("value, says", [
    ("../../etc/passwd", "outside the manifest's folder"),
    ("/etc/passwd", "absolute path"),
    ("images/../../../outside.png", "outside the manifest's folder"),
    ("../d/sector.png", "outside the manifest's folder"),              # another folder, not its images/labels
    ("../nomanifest/images/a.png", "outside the manifest's folder"),   # images/ of a folder without a manifest
])
def test_a_path_out_of_the_folder_is_refused_naming_manifest_row_column_and_path(tree, value, says):
    (tree / "results" / "data" / "nomanifest" / "images").mkdir(parents=True)
    manifest = _csv(tree / "results" / "data" / "x" / "manifest.csv", image=["images/a.png", value])
    with pytest.raises(InputError) as err:
        read_manifest(manifest)
    message = str(err.value)
    assert message.startswith(f"{manifest}: row 2 (sample_id b), column image: ") and value in message
    assert says in message and "\n" not in message


@pytest.mark.parametrize("reader", ["dataset", "labelmaps", "samples", "plan"])
def test_every_reader_refuses_it(tree, reader):
    folder = tree / "results" / reader
    bad = {"image": ["images/a.png", "../../../../../etc/passwd"]}
    if reader == "dataset":
        call = lambda: PreparedDataset.in_dir(folder).rows(required=("sample_id", "split", "image"))  # noqa: E731
        _csv(folder / "manifest.csv", **bad)
    elif reader == "labelmaps":
        call = lambda: read_labelmaps(folder / "manifest.csv")  # noqa: E731
        _csv(folder / "manifest.csv", source_sample_id=["a", "b"], label=["labels/a.png", "/etc/passwd"],
             real_image=["", ""])
    elif reader == "samples":
        call = lambda: read_samples(folder / "manifest.csv", required=("sample_id", "image"))  # noqa: E731
        _csv(folder / "manifest.csv", **bad)
    else:
        call = lambda: read_plan(folder / "plan.csv")  # noqa: E731
        _csv(folder / "plan.csv", source_sample_id=["a", "b"], label=["", ""], seed=[0, 1], batch=[0, 0],
             real_image=["../../results/data/d/images/a.png", "../../results/data/d/../../../x.png"])
    with pytest.raises(InputError, match=r"row 2 \(sample_id b\), column (image|label|real_image)"):
        call()
