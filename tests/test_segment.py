"""Segmentation check: Dice per structure, sources and sets, leakage guard, table layout.

Builders at the top make tiny prepared datasets, augmented label maps and samples on disk
(``tests/test_segment_train.py`` reuses them).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sonodiff.errors import InputError
from sonodiff.contracts.manifest import write_manifest

# ----------------------------------------------------------------------------- tiny data

CAMUS_LABELS = {"background": 0, "lv_cavity": 1, "myocardium": 2, "left_atrium": 3, "sector": 4}
DISK_LABELS = {"background": 0, "disk": 1, "sector": 2}
INTENSITY = {"camus": np.array([0, 30, 200, 90, 130]), "disks": np.array([0, 220, 60])}


def _disk(size: int, cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def make_label(kind: str, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """CAMUS-like (cavity in myocardium, atrium below, sector) or one bright disk on a sector."""
    lab = np.zeros((size, size), np.uint8)
    if kind == "camus":
        lab[:, 2:size - 2] = 4
        cy, cx = rng.integers(9, 13), rng.integers(13, 19)
        lab[_disk(size, cy, cx, 7)] = 2
        lab[_disk(size, cy, cx, 4)] = 1
        lab[_disk(size, cy + 12, cx, 3)] = 3
    else:
        lab[:, :] = 2
        cy, cx, r = rng.uniform(8, size - 8), rng.uniform(8, size - 8), rng.uniform(3, 7)
        lab[_disk(size, cy, cx, r)] = 1
    return lab


def make_image(kind: str, lab: np.ndarray, rng: np.random.Generator, noise: float = 25.0) -> np.ndarray:
    img = INTENSITY[kind][lab] + rng.normal(0, noise, lab.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _png(arr: np.ndarray, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return str(path)


def make_prepared(root: Path, splits: dict[str, str], per_patient: int = 2, kind: str = "camus",
                  size: int = 32, seed: int = 0) -> Path:
    """A prepared dataset ``root/data`` with ``per_patient`` images per patient; returns the manifest."""
    rng = np.random.default_rng(seed)
    d = root / "data"
    rows = []
    for pid, split in splits.items():
        for k in range(per_patient):
            sid = f"{pid}_{k}"
            lab = make_label(kind, rng, size)
            rows.append({"sample_id": sid, "patient_id": pid, "split": split, "view": "4CH",
                         "phase": "ED", "slice_index": k,
                         "image": _png(make_image(kind, lab, rng), d / "images" / f"{sid}.png"),
                         "label": _png(lab, d / "labels" / f"{sid}.png"), "source_file": ""})
    write_manifest(pd.DataFrame(rows), d / "manifest.csv")
    labels = CAMUS_LABELS if kind == "camus" else DISK_LABELS
    info = {"name": "tiny", "format": "camus" if kind == "camus" else "folder", "img_size": size,
            "labels": labels, "structures": {k: v for k, v in labels.items() if k not in ("background", "sector")},
            "sector_id": labels["sector"], "probe": {"type": "convex"}}
    (d / "dataset.json").write_text(json.dumps(info))
    return d / "manifest.csv"


def make_augment_and_samples(root: Path, prepared_manifest: Path, variant: str, copies: int = 2,
                             kind: str = "camus", seed: int = 1) -> tuple[Path, Path]:
    """Augmented maps of the train/val rows (here: copies of the maps) and samples of them."""
    from sonodiff.contracts.manifest import read_manifest

    rng = np.random.default_rng(seed)
    prep = read_manifest(prepared_manifest)
    prep = prep[prep["split"].isin(["train", "val"])]
    aug, smp = [], []
    for row in prep.itertuples():
        for c in range(copies):
            aid = f"{row.sample_id}_aug{c}"
            lab = np.asarray(Image.open(row.label))
            label = _png(lab, root / "augment" / "labels" / f"{aid}.png")
            aug.append({"sample_id": aid, "source_sample_id": row.sample_id, "patient_id": row.patient_id,
                        "split": row.split, "copy": c, "label": label, "source_label": row.label,
                        "real_image": row.image})
            image = _png(make_image(kind, lab, rng), root / "samples" / variant / "images" / f"{aid}.png")
            smp.append({"sample_id": aid, "image": image, "label": label, "real_image": row.image,
                        "source_sample_id": aid, "patient_id": row.patient_id, "split": row.split, "seed": c})
    write_manifest(pd.DataFrame(aug), root / "augment" / "manifest.csv")
    write_manifest(pd.DataFrame(smp), root / "samples" / variant / "manifest.csv")
    return root / "augment" / "manifest.csv", root / "samples" / variant / "manifest.csv"


SPLITS = {"p0": "train", "p1": "train", "p2": "train", "p3": "val", "p4": "test", "p5": "test"}


@pytest.fixture()
def tiny(tmp_path):
    manifest = make_prepared(tmp_path, SPLITS)
    augmented, samples = make_augment_and_samples(tmp_path, manifest, "bmaps")
    return {"root": tmp_path, "manifest": manifest, "augmented": augmented, "samples": samples,
            "info": json.loads((manifest.parent / "dataset.json").read_text())}


# ----------------------------------------------------------------------------- Dice

def test_camus_structures_from_dataset_json(tiny):
    from sonodiff.contracts.dataset import PreparedDataset
    from sonodiff.segment.evaluate import structure_definitions

    s = structure_definitions(tiny["info"])
    assert list(s) == ["lv_endo", "lv_epi", "la"]
    assert s["lv_epi"]["ids"] == [1, 2] and s["lv_endo"]["ids"] == [1] and s["la"]["ids"] == [3]
    assert PreparedDataset.in_dir(tiny["manifest"].parent).num_classes == 5  # background, 3 structures, sector
    with pytest.raises(InputError, match="info.json: no structures"):
        structure_definitions({"format": "folder", "labels": {"background": 0}}, "info.json")
    generic = structure_definitions({"format": "segthy", "labels": {"background": 0, "thyroid": 1, "carotid": 2,
                                     "jugular": 3, "sector": 4},
                                     "structures": {"jugular": 3, "thyroid": 1, "carotid": 2}})
    assert list(generic) == ["thyroid", "carotid", "jugular"]
    assert [v["ids"] for v in generic.values()] == [[1], [2], [3]]


def test_dice_self_is_one_disjoint_is_zero_per_structure():
    from sonodiff.segment.evaluate import CAMUS_STRUCTURES, dice_per_structure

    structures = {k: {"label": n, "ids": list(i)} for k, (n, i) in CAMUS_STRUCTURES.items()}
    rng = np.random.default_rng(0)
    labels = np.stack([make_label("camus", rng) for _ in range(3)])
    assert np.allclose(dice_per_structure(labels, labels, structures), 1.0)
    # disjoint: every structure shifted out of its own place -> no overlap for any structure
    empty = np.zeros_like(labels)
    shifted = np.zeros_like(labels)
    shifted[:, :4, :4] = 1
    shifted[:, :4, 28:] = 2
    shifted[:, 28:, :4] = 3
    d = dice_per_structure(shifted, labels, structures)
    assert np.allclose(d, 0.0)
    assert np.allclose(dice_per_structure(empty, labels, structures), 0.0)


def test_epicardium_is_the_union_of_cavity_and_myocardium():
    from sonodiff.segment.evaluate import CAMUS_STRUCTURES, dice_per_structure

    structures = {k: {"label": n, "ids": list(i)} for k, (n, i) in CAMUS_STRUCTURES.items()}
    labels = make_label("camus", np.random.default_rng(1))[None]
    swapped = labels.copy()
    swapped[labels == 1] = 2                        # cavity called myocardium
    d = dice_per_structure(swapped, labels, structures)[0]
    assert d[0] == pytest.approx(0.0)               # LV endo lost
    assert d[1] == pytest.approx(1.0)               # LV epi (1 and 2 together) untouched
    assert d[2] == pytest.approx(1.0)
    half = labels.copy()
    half[(labels == 2) & (np.arange(32)[None, :, None] < 12)] = 4   # part of myocardium lost
    d = dice_per_structure(half, labels, structures)[0]
    assert d[0] == pytest.approx(1.0) and 0.0 < d[1] < 1.0


def test_dice_matches_the_closed_form():
    """MONAI's Dice per structure equals 2 |P & T| / (|P| + |T|) computed by hand, NaN where T is empty."""
    import torch

    from sonodiff.segment.evaluate import CAMUS_STRUCTURES, dice_per_structure

    structures = {k: {"label": n, "ids": list(i)} for k, (n, i) in CAMUS_STRUCTURES.items()}
    rng = np.random.default_rng(4)
    true = np.stack([make_label("camus", rng) for _ in range(6)])
    true[0][true[0] == 3] = 4                       # one image without the atrium: NaN there
    pred = np.where(rng.random(true.shape) < 0.15, rng.integers(0, 5, true.shape), true).astype(np.uint8)
    ours = dice_per_structure(pred, true, structures)
    expected = np.full(ours.shape, np.nan)
    for j, spec in enumerate(structures.values()):
        p, t = np.isin(pred, spec["ids"]), np.isin(true, spec["ids"])
        for i in range(len(true)):
            if t[i].any():
                expected[i, j] = 2 * (p[i] & t[i]).sum() / (p[i].sum() + t[i].sum())
    assert np.isnan(ours[0, 2]) and np.array_equal(np.isnan(ours), np.isnan(expected))
    assert np.allclose(ours, expected, atol=1e-6, equal_nan=True) and 0.5 < np.nanmean(ours) < 1.0
    assert np.array_equal(dice_per_structure(torch.from_numpy(pred), torch.from_numpy(true), structures), ours,
                          equal_nan=True)


def test_dice_is_nan_where_the_structure_is_absent():
    from sonodiff.segment.evaluate import dice_per_structure, mean_dice

    structures = {"a": {"label": "a", "ids": [1]}, "b": {"label": "b", "ids": [2]}}
    true = np.zeros((2, 8, 8), np.uint8)
    true[:, :4] = 1
    true[0, 6:] = 2
    d = dice_per_structure(true, true, structures)
    assert np.isnan(d[1, 1]) and np.allclose(d[~np.isnan(d)], 1.0)
    assert mean_dice(d) == pytest.approx(1.0)


def test_summary_over_seeds_mean_seed_std_and_paper_mean_column():
    from sonodiff.segment.evaluate import seed_mean_dice, structure_means, summarize_seeds

    rng = np.random.default_rng(0)
    dice = rng.uniform(0.6, 1.0, size=(3, 40, 3))                  # seed, image, structure
    dice[:, :5, 2] = np.nan                                         # structure absent: NaN for every seed
    s = summarize_seeds(dice, ["a", "b", "c"])
    per_seed = np.array([np.nanmean(d, axis=0) for d in dice])      # m_kj
    assert s["c"]["per_seed"] == pytest.approx(per_seed[:, 2].tolist())
    assert s["c"]["mean"] == pytest.approx(per_seed[:, 2].mean())
    assert s["c"]["seed_std"] == pytest.approx(per_seed[:, 2].std(ddof=1))
    assert s["structure_mean"]["per_seed"] == pytest.approx(per_seed.mean(axis=1).tolist())
    assert s["structure_mean"]["seed_std"] == pytest.approx(per_seed.mean(axis=1).std(ddof=1))
    averaged = seed_mean_dice(dice)                                 # d_ij: its image mean is the seed mean
    assert np.isnan(averaged[:5, 2]).all() and structure_means(averaged) == pytest.approx(per_seed.mean(axis=0))
    one = summarize_seeds(dice[:1], ["a", "b", "c"])
    assert np.isnan(one["a"]["seed_std"]) and one["a"]["mean"] == pytest.approx(per_seed[0, 0])
    # the papers' Mean column is the mean of the structure means: 88.5, 92.3, 86.3 -> 89.0 +- 2.5
    pub = np.array([88.5, 92.3, 86.3])
    assert (round(pub.mean(), 1), round(pub.std(), 1)) == (89.0, 2.5)


# ----------------------------------------------------------------------------- sources and sets

def test_parse_source_and_network_check():
    from sonodiff.segment.sources import check_network, parse_source, source_variants

    assert parse_source("real").real and parse_source("real").variant is None
    s = parse_source("real+synthetic_bmaps", ["bmaps", "baseline"])
    assert s.real and s.variant == "bmaps"
    assert source_variants(["real", "synthetic_bmaps", "real+synthetic_baseline"]) == ["baseline", "bmaps"]
    for bad in ["", "synthetic_", "realsynthetic_x", "fake"]:
        with pytest.raises(InputError):
            parse_source(bad)
    with pytest.raises(InputError, match="no configured variant"):
        parse_source("synthetic_nope", ["bmaps"])
    paper = {"channels": [2, 4, 8, 16, 32, 64, 128, 256], "strides": [2] * 7}
    check_network(256, paper)
    with pytest.raises(InputError, match="segment.strides"):
        check_network(128, paper)                 # 1 px at the bottom: instance norm fails
    with pytest.raises(InputError):
        check_network(32, {"channels": [8, 16], "strides": [2, 2]})


def test_build_sets_per_source(tiny):
    from sonodiff.segment.data import build_sets

    real = build_sets(tiny["manifest"], "real")
    assert set(real["train"]["patient_id"]) == {"p0", "p1", "p2"}
    assert set(real["val"]["patient_id"]) == {"p3"}
    assert set(real["test"]["patient_id"]) == {"p4", "p5"}
    syn = build_sets(tiny["manifest"], "synthetic_bmaps", {"bmaps": tiny["samples"]})
    assert len(syn["train"]) == 3 * 2 * 2 and len(syn["val"]) == 1 * 2 * 2
    assert (syn["train"]["origin"] == "synthetic_bmaps").all()
    assert all("/samples/bmaps/images/" in p for p in syn["train"]["image"])
    assert all("/augment/labels/" in p for p in syn["train"]["label"])    # paired with its label map
    assert syn["test"].equals(real["test"])
    both = build_sets(tiny["manifest"], "real+synthetic_bmaps", {"bmaps": tiny["samples"]})
    assert len(both["train"]) == len(real["train"]) + len(syn["train"])
    with pytest.raises(InputError, match="no samples manifest"):
        build_sets(tiny["manifest"], "synthetic_baseline", {"bmaps": tiny["samples"]})


def test_png_set_reads_images_and_labels(tiny):
    from sonodiff.segment.data import PngSegmentationSet, build_sets

    sets = build_sets(tiny["manifest"], "real")
    ds = PngSegmentationSet(sets["train"], 5, 32)
    image, label = ds[0]
    assert image.shape == (1, 32, 32) and image.dtype == np.float32
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert label.dtype == np.int64 and set(np.unique(label).tolist()) <= {0, 1, 2, 3, 4}
    assert np.array_equal(image[0], np.asarray(Image.open(sets["train"]["image"][0]), np.float32) / 255.0)
    images, labels = ds.batch([2, 0])
    assert images.shape == labels.shape == (2, 1, 32, 32)
    assert np.array_equal(images[1], image) and np.array_equal(labels[1], label)
    with pytest.raises(InputError, match="outside the 3 prepared classes"):
        PngSegmentationSet(sets["train"], 3, 32)[0]
    with pytest.raises(InputError, match="expected"):
        PngSegmentationSet(sets["train"], 5, 64)[0]


# ----------------------------------------------------------------------------- leakage guard

def test_leakage_guard_passes_on_clean_data(tiny):
    from sonodiff.segment.leakage import check_leakage

    report = check_leakage(tiny["manifest"], tiny["augmented"], {"bmaps": tiny["samples"]},
                           ["real", "synthetic_bmaps", "real+synthetic_bmaps"])
    assert "no test patient leaks (p4, p5)" in report


def _leak(path: Path, column: str, value_from: dict) -> None:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[0, column] = value_from[column]
    if column == "patient_id":
        df.loc[0, "split"] = "test"
    df.to_csv(path, index=False)


@pytest.mark.parametrize("which", ["augmented", "samples"])
@pytest.mark.parametrize("column", ["patient_id", "source_sample_id", "real_image"])
def test_leakage_guard_fires_and_names_the_patient(tiny, which, column):
    from sonodiff.segment.leakage import check_leakage

    target = tiny[which]
    rel_test_image = Path("../" * (2 if which == "samples" else 1)) / "data" / "images" / "p4_1.png"
    leak = {"patient_id": "p4", "source_sample_id": "p4_1", "real_image": str(rel_test_image)}
    _leak(target, column, leak)
    with pytest.raises(InputError, match=r"test patients in .*p4") as err:
        check_leakage(tiny["manifest"], tiny["augmented"], {"bmaps": tiny["samples"]}, ["synthetic_bmaps"])
    assert str(target) in str(err.value) or which in str(err.value)


def test_leakage_guard_fires_on_a_sample_traced_through_its_augmented_map(tiny):
    from sonodiff.segment.leakage import check_leakage

    aug = pd.read_csv(tiny["augmented"], dtype=str, keep_default_na=False)
    aug.loc[0, ["source_sample_id", "patient_id"]] = ["p5_0", "p1"]    # map of a test image, mislabelled
    aug.to_csv(tiny["augmented"], index=False)
    with pytest.raises(InputError, match="p5"):
        check_leakage(tiny["manifest"], tiny["augmented"], {"bmaps": tiny["samples"]}, ["real"])


def test_patient_in_two_splits_is_refused(tmp_path):
    from sonodiff.segment.leakage import check_leakage

    manifest = make_prepared(tmp_path, {"p0": "train", "p1": "test"})
    df = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    df.loc[1, "patient_id"] = "p1"                  # p1 now in train and test
    df.to_csv(manifest, index=False)
    with pytest.raises(InputError, match="more than one split: p1"):
        check_leakage(manifest, None, {}, ["real"])


# ----------------------------------------------------------------------------- table

def _metrics(dataset: str, source: str, dice: np.ndarray, patients: list[str] | None = None,
             fmt: str = "camus", resamples: int = 200) -> dict:
    """A segmentation record (the shape :func:`sonodiff.segment.train.segmentation_record` writes)
    from Dice (seeds, images, 3 CAMUS structures)."""
    from sonodiff.segment.evaluate import CAMUS_STRUCTURES, seed_mean_dice, summarize_seeds

    dice = np.asarray(dice, dtype=float)
    dice = dice[None] if dice.ndim == 2 else dice
    keys, n = list(CAMUS_STRUCTURES), dice.shape[1]
    patients = patients or [f"p{i // 2}" for i in range(n)]
    columns = lambda d: {k: d[:, j].tolist() for j, k in enumerate(keys)}  # noqa: E731
    return {"dataset": dataset, "format": fmt, "source": source, "seeds": list(range(len(dice))),
            "structures": {k: {"label": name, "ids": list(i)} for k, (name, i) in CAMUS_STRUCTURES.items()},
            "dice": summarize_seeds(dice, keys), "bootstrap": {"resamples": resamples, "seed": 0},
            "counts": {"test": n, "test_patients": len(set(patients)), "seeds": len(dice)},
            "per_image": {"sample_id": [f"s{i}" for i in range(n)], "patient_id": patients,
                          **columns(seed_mean_dice(dice)),
                          "by_seed": [{"seed": k, **columns(d)} for k, d in enumerate(dice)]}}


def _write(tmp_path, records) -> tuple[pd.DataFrame, str, str]:
    from sonodiff.report.segmentation_table import write_segmentation_table

    paths = []
    for m in records:
        p = tmp_path / m["dataset"] / m["source"] / "metrics.json"
        p.parent.mkdir(parents=True)
        p.write_text(json.dumps(m))
        paths.append(p)
    out = {ext: tmp_path / f"segmentation.{ext}" for ext in ("csv", "md", "tex")}
    write_segmentation_table(paths, out["csv"], out["md"], out["tex"])
    return pd.read_csv(out["csv"]), out["md"].read_text(), out["tex"].read_text()


def test_table_layout_has_our_rows_paired_differences_counts_and_published_rows(tmp_path):
    from sonodiff.report.segmentation_table import difference_rows

    rng = np.random.default_rng(0)
    base = rng.uniform(0.7, 0.9, size=(20, 3))
    seeds = np.stack([base, base + 0.01])                           # two seeds, 1 point apart
    records = [_metrics("phantom_camus", source, seeds + shift)
               for source, shift in (("real", 0.05), ("synthetic_baseline", 0.0), ("synthetic_bmaps", 0.02))]
    df, md, tex = _write(tmp_path, records)
    assert list(df["source"][:3]) == ["real", "synthetic_baseline", "synthetic_bmaps"]
    paired = df[df["kind"] == "paired difference"].set_index("source")
    assert list(paired.index) == ["synthetic_baseline - real (paired)", "synthetic_bmaps - real (paired)",
                                  "synthetic_bmaps - synthetic_baseline (paired)"]
    row = paired.loc["synthetic_bmaps - synthetic_baseline (paired)"]
    assert row["lv_endo_mean"] == pytest.approx(2.0, abs=1e-3)      # b minus a, in %
    assert row["lv_endo_ci_low"] == pytest.approx(2.0, abs=1e-3) and row["mean_ci_high"] == pytest.approx(2.0, abs=1e-3)
    assert paired.loc["synthetic_baseline - real (paired)", "la_mean"] == pytest.approx(-5.0, abs=1e-3)
    assert (paired["n_test"] == 20).all() and (paired["n_patients"] == 10).all()
    pub = df[df["kind"] == "published"].set_index("source")
    stoj = pub.loc[[s for s in pub.index if s.startswith("Stojanovski")][0]]
    gil = pub.loc[[s for s in pub.index if s.startswith("Gilbert")][0]]
    assert [stoj[f"{k}_mean"] for k in ("lv_endo", "lv_epi", "la")] == [88.5, 92.3, 86.3]
    assert [stoj[f"{k}_std"] for k in ("lv_endo", "lv_epi", "la")] == [6.0, 3.9, 10.7]
    assert [gil[f"{k}_mean"] for k in ("lv_endo", "lv_epi", "la")] == [79.4, 88.6, 71.3]
    assert [gil[f"{k}_std"] for k in ("lv_endo", "lv_epi", "la")] == [9.9, 5.4, 23.7]
    ours = df.iloc[1]                                               # synthetic_baseline
    assert ours["lv_endo_mean"] == pytest.approx(100 * (base[:, 0].mean() + 0.005), abs=1e-3)
    assert ours["lv_endo_std"] == pytest.approx(100 * 0.01 / np.sqrt(2), abs=1e-3)   # across seeds, ddof 1
    assert ours["mean_mean"] == pytest.approx(100 * (base.mean(axis=0).mean() + 0.005), abs=1e-3)
    assert ours["lv_endo_ci_low"] < ours["lv_endo_mean"] < ours["lv_endo_ci_high"]
    assert ours["mean_ci_low"] < ours["mean_mean"] < ours["mean_ci_high"]
    assert (ours["n_test"], ours["n_patients"], ours["n_seeds"]) == (20, 10, 2)
    assert "| Training/Validation dataset | LV endo | LV epi | LA | Mean |" in md
    assert "| Stojanovski et al. 2023, all SDM frames (published, CAMUS) | 88.5 ± 6.0 | 92.3 ± 3.9 | 86.3 ± 10.7 | 89.0 ± 2.5 |" in md
    assert "79.4 ± 9.9 | 88.6 ± 5.4 | 71.3 ± 23.7 | 79.7 ± 7.1" in md
    assert "Test set: 20 test images of 10 patients; 2 seeds per source." in md
    assert "(20 test images of 10 patients; 2 seeds per source)" in tex.split("\\caption")[1].splitlines()[0]
    assert "$LV_{endo}$ & $LV_{epi}$ & $LA$" in tex and "88.5 $\\pm$ 6.0 & 92.3 $\\pm$ 3.9" in tex
    assert f"real & {ours['lv_endo_mean'] + 5:.1f} $\\pm$ 0.7" in tex and "{\\tiny [" in tex  # ours
    assert "Paired rows" in md and "positive: b scores higher" in md and "Published rows" in md
    assert "synthetic\\_bmaps" in tex and tex.count("\\begin{tabular}") == 1
    front = difference_rows(tmp_path / "segmentation.csv")["phantom_camus"]
    assert [r[0] for r in front] == ["synthetic_baseline - real", "synthetic_bmaps - real",
                                     "synthetic_bmaps - synthetic_baseline"]
    comparison, _, fig, lower_is_better = front[2]
    assert fig["value"] == pytest.approx(2.0, abs=1e-3) and fig["ci"] == pytest.approx([2.0, 2.0], abs=1e-3)
    assert (fig["n_patients"], fig["n_images"], lower_is_better) == (10, 20, False)


def _planted(rng, n_patients=12, per_patient=3, effect=0.0, seeds=2):
    """Per-image Dice with patient effects (sd 0.08), image noise (sd 0.02) and seed noise (sd 0.01),
    plus ``effect`` for the source."""
    patient = np.repeat(rng.normal(0.0, 0.08, n_patients), per_patient)
    image = rng.normal(0.0, 0.02, (n_patients * per_patient, 3))
    noise = rng.normal(0.0, 0.01, (seeds, n_patients * per_patient, 3))
    return np.clip(0.75 + patient[None, :, None] + image[None] + noise + effect, 0, 1)


def test_paired_row_detects_planted_better_synthetic_and_covers_zero_on_identical_sources():
    from sonodiff.report.segmentation_table import build_table

    rng = np.random.default_rng(1)
    patients = [f"p{i // 3}" for i in range(36)]

    def paired(a, b, resamples=200):
        df = build_table([_metrics("d", "real", a, patients, resamples=resamples),
                          _metrics("d", "synthetic_bmaps", b, patients, resamples=resamples)])
        return df.set_index("source").loc["synthetic_bmaps - real (paired)"]

    real = _planted(rng)
    up = paired(real, np.clip(real + 0.03 + rng.normal(0.0, 0.01, real.shape), 0, 1))
    assert 0.0 < up["lv_endo_ci_low"] < up["lv_endo_mean"] < up["lv_endo_ci_high"] and up["mean_ci_low"] > 0.0
    same = paired(real, real)
    assert all(same[f"{k}_ci_low"] <= 0.0 == same[f"{k}_mean"] <= same[f"{k}_ci_high"] for k in ("la", "mean"))
    # other trainings of the same quality on the same images: the interval covers 0 about 95% of the time
    covered = 0
    for _ in range(10):
        row = paired(real, np.clip(real + rng.normal(0.0, 0.01, real.shape), 0, 1), resamples=100)
        covered += bool(row["lv_endo_ci_low"] < 0.0 < row["lv_endo_ci_high"])
    assert covered >= 8
    # the interval is over patients: with planted patient effects it is wider than over images
    from sonodiff.stats import bootstrap_ci

    ours = build_table([_metrics("d", "real", real, patients)]).iloc[0]
    image_ci = bootstrap_ci(np.mean, [real.mean(axis=0)[:, 0]], 200, 0)
    assert ours["lv_endo_ci_high"] - ours["lv_endo_ci_low"] > 1.5 * 100 * (image_ci[1] - image_ci[0])


def test_table_with_one_test_patient_says_so_and_gives_no_interval(tmp_path):
    rng = np.random.default_rng(2)
    records = [_metrics("thy", s, _planted(rng, n_patients=1, per_patient=5), ["v1"] * 5, fmt="segthy")
               for s in ("real", "synthetic_bmaps")]
    df, md, _ = _write(tmp_path, records)
    assert df["lv_endo_ci_low"].isna().all() and df["mean_ci_high"].isna().all()
    assert "One test patient: no interval" in md and "5 test images of 1 patients" in md


def test_table_has_no_published_rows_for_other_datasets():
    from sonodiff.report.segmentation_table import build_table

    m = _metrics("thy", "real", np.full((4, 3), 0.8), fmt="segthy")
    df = build_table([m])
    assert list(df["kind"]) == ["ours"] and df["n_seeds"].tolist() == [1] and df["lv_endo_std"].isna().all()
