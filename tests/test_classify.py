"""The classification check (Freiche et al. 2025): AUC, sets, training, paired differences, the table."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from sonodiff.classify.auc import average_ranks, binary_auc, ovr_macro_auc, present_classes_auc
from sonodiff.classify.data import class_order, parse_source, training_set
from sonodiff.classify.evaluate import compare_sources, paired_auc_difference
from sonodiff.classify.train import build_classifier, fit, run_classification
from sonodiff.contracts.classification import read_classification_record, read_scores
from sonodiff.contracts.dataset import PreparedDataset, write_dataset
from sonodiff.contracts.manifest import write_manifest
from sonodiff.errors import InputError
from sonodiff.io import write_png
from sonodiff.report.classification_table import write_classification_table
from tiny_data import sector_mask

CLASSES = ("benign", "malignant", "normal")
BRIGHTNESS = {"benign": 50, "malignant": 128, "normal": 205}
SIZE = 12


# ------------------------------------------------------------------ AUC against sklearn

def _tied_probabilities(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    counts = rng.integers(0, 3, (n, k)) + 1   # few distinct rows: many tied scores
    return counts / counts.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("seed", range(5))
def test_ovr_macro_auc_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    scores = _tied_probabilities(rng, 60, 3)
    labels = np.r_[0, 1, 2, rng.integers(0, 3, 57)]
    assert len(np.unique(scores[:, 0])) < 20
    want = roc_auc_score(labels, scores, multi_class="ovr", average="macro")
    assert ovr_macro_auc(scores, labels) == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_binary_auc_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    scores = np.round(rng.random(40), 1)
    labels = np.r_[0, 1, rng.integers(0, 2, 38)]
    assert binary_auc(scores, labels == 1) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_average_ranks_share_ties():
    assert average_ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]


def test_a_class_without_images_makes_the_macro_auc_undefined():
    rng = np.random.default_rng(0)
    scores, labels = _tied_probabilities(rng, 20, 3), rng.integers(0, 2, 20)
    assert math.isnan(ovr_macro_auc(scores, labels))
    assert math.isnan(binary_auc(scores[:, 0], np.zeros(20, bool)))
    # over the classes present (renormalised), two classes give the binary AUC of one against the other
    p = scores[:, :2] / scores[:, :2].sum(axis=1, keepdims=True)
    assert present_classes_auc(scores, labels) == pytest.approx(roc_auc_score(labels, p[:, 1]))


# ------------------------------------------------------------------ tiny BUSI-like data

def _image(rng: np.random.Generator, cls: str, size: int) -> np.ndarray:
    return np.clip(BRIGHTNESS[cls] + rng.normal(0, 12, (size, size)), 0, 255).astype(np.uint8)


def make_busi(root: Path, counts: dict[str, dict[str, int]], size: int = SIZE, seed: int = 0,
              name: str = "tinybusi") -> PreparedDataset:
    """A prepared dataset with a class column: ``counts[split][class]`` images; every second test
    patient has two images."""
    rng = np.random.default_rng(seed)
    rows = []
    for split, per_class in counts.items():
        for cls, n in per_class.items():
            for i in range(n):
                sid = f"{split}_{cls}_{i:02d}"
                patient = f"{split}_{cls}_{i // 2 if split == 'test' else i:02d}"
                path = write_png(root / "images" / f"{sid}.png", _image(rng, cls, size))
                rows.append({"sample_id": sid, "patient_id": patient, "split": split, "view": "", "phase": "",
                             "slice_index": 0, "image": str(path), "label": "", "source_file": "",
                             "duplicate_group": "", "class": cls})
    write_png(root / "sector.png", sector_mask(size))
    write_dataset(root / "manifest.csv", root / "dataset.json", pd.DataFrame(rows),
                  {"name": name, "format": "busi", "img_size": size, "labels": {"background": 0},
                   "structures": {}, "probe": {"type": "linear"}})
    return PreparedDataset.in_dir(root)


def make_samples(folder: Path, per_class: int = 6, seed: int = 1, split: str = "train",
                 with_class: bool = True) -> Path:
    """A sample set (balanced, unconditional) with the prompts' class column."""
    rng = np.random.default_rng(seed)
    rows = []
    for cls in CLASSES:
        for i in range(per_class):
            sid = f"syn_{cls}_{i:02d}"
            path = write_png(folder / "images" / f"{sid}.png", _image(rng, cls, SIZE))
            rows.append({"sample_id": sid, "image": str(path), "label": "", "real_image": "",
                         "source_sample_id": "", "patient_id": "", "split": split, "seed": i,
                         **({"class": cls} if with_class else {})})
    write_manifest(pd.DataFrame(rows), folder / "manifest.csv")
    return folder / "manifest.csv"


def tiny_cfg(**classify) -> dict:
    return {"dataset": "tinybusi", "seed": 0, "device": "cpu", "metrics": {"bootstrap": 200},
            "classify": {"arch": "resnet18", "steps": 10, "batch_size": 8, "lr": 1.0e-3, "weight_decay": 1.0e-4,
                         "seeds": [0, 1], "variants": ["x"], "fraction": 0.2, "fraction_variant": "x",
                         "external": None, **classify}}


TRAIN_COUNTS = {"train": {"benign": 8, "malignant": 4, "normal": 3}, "val": {"benign": 1, "malignant": 1, "normal": 1},
                "test": {"benign": 6, "malignant": 4, "normal": 4}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three sources trained on the tiny data, scored on its test split and a 20 px external set."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("classify")
    dataset = make_busi(root / "data", TRAIN_COUNTS)
    external = make_busi(root / "external", {"test": {"benign": 5, "malignant": 5}}, size=20, seed=3,
                         name="tinyyap")
    samples = make_samples(root / "samples")
    out = {}
    for source, manifests, seeds, fraction in (("real", [], [0, 1], None), ("real+synthetic_x", [samples], [0], None),
                                               ("synthetic_x", [samples], [0], 0.2)):
        folder = root / "classify" / source
        record = run_classification(dataset, source, manifests, tiny_cfg(seeds=seeds), folder / "record.json",
                                    folder / "scores.npz", external=external, fraction=fraction, progress=False)
        out[source] = (folder / "record.json", folder / "scores.npz", record)
    return {"root": root, "dataset": dataset, "samples": samples, "runs": out}


def test_training_on_separable_classes_ranks_them(runs):
    for source, (_, _, record) in runs["runs"].items():
        assert record["classes"] == list(CLASSES)
        test, external = record["test_sets"]["test"], record["test_sets"]["external"]
        assert test["auc"]["value"] > 0.9, (source, test["auc"])
        assert external["auc"]["value"] > 0.9, (source, external["auc"])
        assert external["classes_present"] == ["benign", "malignant"]
        assert test["n_images"] == 14 and test["n_patients"] == 7
        assert test["auc"]["ci"] is not None and test["auc"]["ci"][0] <= test["auc"]["ci"][1]
    real = runs["runs"]["real"][2]
    assert len(real["test_sets"]["test"]["auc"]["per_seed"]) == 2
    assert real["train"]["n_images"] == 15 and real["train"]["n_synthetic"] == 0
    mixed = runs["runs"]["real+synthetic_x"][2]
    assert mixed["train"]["n_images"] == 15 + 18 and mixed["kind"] == "real+synthetic"
    assert runs["runs"]["synthetic_x"][2]["generator_fraction"] == 0.2


def test_record_and_scores_round_trip(runs):
    record_path, scores_path, record = runs["runs"]["real"]
    assert read_classification_record(record_path)["test_sets"]["test"]["auc"]["value"] == pytest.approx(
        record["test_sets"]["test"]["auc"]["value"])
    classes, sets = read_scores(scores_path)
    assert classes == list(CLASSES) and set(sets) == {"test", "external"}
    test = sets["test"]
    assert test["scores_by_seed"].shape == (2, 14, 3)
    np.testing.assert_allclose(test["scores"], test["scores_by_seed"].mean(axis=0))
    np.testing.assert_allclose(test["scores"].sum(axis=1), 1.0, atol=1e-6)
    assert list(test["sample_id"]) == sorted(test["sample_id"]) and test["labels"].dtype == np.int64


def test_a_seed_trains_the_same_twice(runs):
    dataset = runs["dataset"]
    train = training_set(dataset, "real", [], class_order(dataset))
    cls = tiny_cfg(steps=2)["classify"]
    a, b = (fit(train, 3, cls, 0, SIZE, torch.device("cpu"), progress=False) for _ in range(2))
    assert a["history"] == b["history"]
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    c = fit(train, 3, cls, 1, SIZE, torch.device("cpu"), progress=False)
    assert not torch.equal(a["state_dict"]["fc.weight"], c["state_dict"]["fc.weight"])


def test_paired_difference_of_a_source_with_itself_is_zero(runs):
    _, sets = read_scores(runs["runs"]["real"][1])
    fig = paired_auc_difference(sets["test"], sets["test"], 200, 0)
    assert fig["value"] == 0.0 and fig["ci"] == [0.0, 0.0]
    assert fig["n_patients"] == 7 and fig["n_images"] == 14


def test_paired_difference_aligns_by_sample_id(runs):
    _, a = read_scores(runs["runs"]["real"][1])
    _, b = read_scores(runs["runs"]["synthetic_x"][1])
    order = np.arange(14)[::-1]
    shuffled = {k: (v[:, order] if k == "scores_by_seed" else v[order]) for k, v in b["test"].items()}
    assert paired_auc_difference(a["test"], shuffled, 100, 0) == paired_auc_difference(a["test"], b["test"], 100, 0)


def test_synthetic_rows_of_the_test_split_are_refused(runs, tmp_path):
    leaky = make_samples(tmp_path / "leaky", per_class=2, split="test")
    with pytest.raises(InputError, match="test-split patients") as err:
        training_set(runs["dataset"], "real+synthetic_x", [leaky], list(CLASSES))
    assert str(leaky) in str(err.value)


def test_a_sample_set_without_classes_is_refused(runs, tmp_path):
    bare = make_samples(tmp_path / "bare", per_class=1, with_class=False)
    with pytest.raises(InputError, match="no class column"):
        training_set(runs["dataset"], "synthetic_x", [bare], list(CLASSES))


def test_sources_and_sample_sets_must_agree(runs):
    assert parse_source("real+synthetic_bmaps").variant == "bmaps"
    assert parse_source("synthetic_baseline").kind == "synthetic"
    with pytest.raises(InputError):
        parse_source("synthetic")
    with pytest.raises(InputError, match="no sample sets"):
        training_set(runs["dataset"], "real", [runs["samples"]], list(CLASSES))
    with pytest.raises(InputError, match="one or more"):
        training_set(runs["dataset"], "synthetic_x", [], list(CLASSES))


@pytest.mark.parametrize("size, stride, pool", [(16, 1, False), (32, 1, True), (64, 2, True)])
def test_small_images_keep_their_resolution(size, stride, pool):
    model = build_classifier("resnet18", 3, size)
    assert model.conv1.in_channels == 1 and model.conv1.stride == (stride, stride)
    assert isinstance(model.maxpool, torch.nn.MaxPool2d) == pool
    assert model(torch.zeros(2, 1, size, size)).shape == (2, 3)


def test_the_table_shows_ours_the_differences_and_the_published_values(runs, tmp_path):
    records = [r for r, _, _ in runs["runs"].values()]
    scores = [s for _, s, _ in runs["runs"].values()]
    summaries = compare_sources(records, scores, bootstrap={"resamples": 100, "seed": 1})
    assert [d["source"] for d in summaries[0]["differences"]] == ["real+synthetic_x", "synthetic_x"]
    out = {fmt: tmp_path / f"classification.{fmt}" for fmt in ("csv", "md", "tex")}
    write_classification_table(summaries, out["csv"], out["md"], out["tex"])
    md = out["md"].read_text()
    for text in ("real (train split)", "real + synthetic x",
                 "synthetic only x, generator trained on 20% of the train split", "tinybusi test split", "external: tinyyap", "Δ vs real", "0.810", "0.870", "0.940",
                 "Yap et al. 2017 dataset B", "14 images of 7 patients", "10 images of 6 patients"):
        assert text in md, text
    csv = pd.read_csv(out["csv"])
    assert len(csv) == 3
    assert csv["Freiche et al. 2025 published"].tolist() == [0.81, 0.87, 0.94]
    assert "\\begin{tabular}" in out["tex"].read_text()
    json.dumps(summaries)  # plain data
