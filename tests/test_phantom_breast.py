"""The breast phantom in the BUSI layout: lesion contrast, posterior enhancement (benign) and
shadowing (malignant) from the attenuation map, outline convexity, balanced classes, determinism,
and the round trip through the real BUSI converter and prepare stage."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.measure import regionprops
from test_data_factories import job_config, prepare_into

from sonodiff.contracts import layout
from sonodiff.contracts.manifest import read_manifest
from sonodiff.data import busi
from sonodiff.data.labels import LabelSpec
from sonodiff.data.units import load_unit
from sonodiff.errors import InputError
from sonodiff.phantom import BREAST, simulate_busi, simulate_phantom
from sonodiff.phantom import breast, raw_layout
from sonodiff.phantom.tissue import AttenuatedScene, Tissue

SIZE = 48
PATIENTS = 9
SEED = 4
ENTRY = {"format": "busi", "source": {"path": "unused"}, "img_size": SIZE,
         "labels": {"background": 0, "lesion": 1}, "probe": "linear"}


def read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def busi_root(tmp_path_factory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("busi")
    names = simulate_busi(root, patients=PATIENTS, mode="fast", size=SIZE, seed=SEED, progress=False)
    return root, names


def cases(root: Path, cls: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(image as float, mask as bool) of every image of class ``cls``."""
    out = []
    for image_path in sorted((root / cls).glob(f"{cls} (*).png")):
        if image_path.stem.endswith("_mask"):
            continue
        mask = read(image_path.with_name(f"{image_path.stem}_mask.png")) > 127
        out.append((read(image_path).astype(float), mask))
    return out


def regions(mask: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean regions around a lesion: ``inside``; ``beside`` (the lesion's rows, the columns 2 px
    or more beyond its extent); ``below`` (the central half of its columns, from 2 px under its
    deepest pixel down by its height, at least 6 rows) and ``below_beside`` (those rows, the beside
    columns)."""
    rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    r0, r1, c0, c1 = rows[0], rows[-1], cols[0], cols[-1]
    n, w = mask.shape[0], c1 - c0 + 1
    col = np.arange(mask.shape[1])
    beside_cols = (col < c0 - 2) | (col > c1 + 2)
    core_cols = (col >= c0 + w // 4) & (col <= c1 - w // 4)
    row = np.arange(n)[:, None]
    lesion_rows = (row >= r0) & (row <= r1)
    below_rows = (row >= r1 + 2) & (row < min(r1 + 2 + max(6, r1 - r0 + 1), n))
    return {"inside": mask, "beside": lesion_rows & beside_cols, "below": below_rows & core_cols,
            "below_beside": below_rows & beside_cols}


def ratios(image: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """(inside / beside, below / beside at the same depths) of the mean grey levels."""
    r = regions(mask)
    assert r["beside"].sum() >= 20 and r["below"].sum() >= 12 and r["below_beside"].sum() >= 40
    return (image[r["inside"]].mean() / image[r["beside"]].mean(),
            image[r["below"]].mean() / image[r["below_beside"]].mean())


def convexity(mask: np.ndarray) -> float:
    """Area / convex hull area (scikit-image's solidity) of the lesion."""
    (props,) = regionprops(mask.astype(np.uint8))
    return float(props.solidity)


# ---------------------------------------------------------------------------------------- layout


def test_busi_layout_files_and_masks(busi_root):
    root, names = busi_root
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["benign", "malignant", "normal"]
    counts = Counter(name.split(" ")[0] for name in names)
    for cls in breast.CLASSES:
        expected = set()
        for n in range(1, counts[cls] + 1):
            image_path, mask_path = raw_layout.busi_paths(root, cls, n)
            expected |= {image_path.name, mask_path.name}
        assert {p.name for p in (root / cls).iterdir()} == expected
        assert expected == {f"{cls} ({n}).png" for n in range(1, counts[cls] + 1)} | {
            f"{cls} ({n})_mask.png" for n in range(1, counts[cls] + 1)}
        for image, mask in cases(root, cls):
            assert image.shape == mask.shape == (SIZE, SIZE)
            assert (image > 0).mean() > 0.95          # the linear array's rectangle fills the image
            assert mask.any() == (cls != "normal")   # normal masks are all zero
    for path in root.rglob("*.png"):
        with Image.open(path) as img:
            assert img.mode == "L" and img.size == (SIZE, SIZE)
        if path.stem.endswith("_mask"):
            assert set(np.unique(read(path))) <= {0, 255}
    info = json.loads((root / "phantom.json").read_text())
    assert info["phantom"] == "breast" and info["probe"]["kind"] == "linear"
    assert info["probe"]["fc"] >= 7e6 and info["probe"]["depth"] <= 0.05


def test_classes_balanced_and_stable():
    def block(b):
        return np.random.default_rng([SEED, 3, b])

    for n in (3, 7, 9, 10):
        counts = Counter(breast.patient_classes(n, block))
        assert set(counts) <= set(breast.CLASSES) and max(counts.values()) - min(counts.values()) <= 1
        assert sum(counts.values()) == n and (n < 3 or set(counts) == set(breast.CLASSES))
    assert breast.patient_classes(10, block)[:7] == breast.patient_classes(7, block)
    # the order within the blocks is seeded, not fixed
    orders = {tuple(breast.patient_classes(9, lambda b, s=s: np.random.default_rng([s, 3, b]))) for s in range(6)}
    assert len(orders) > 1


def test_simulated_classes_balanced(busi_root):
    _, names = busi_root
    assert Counter(name.split(" ")[0] for name in names) == {c: PATIENTS // 3 for c in breast.CLASSES}


# ---------------------------------------------------------------------------------------- physics


def test_attenuation_map_integrates_excess_loss():
    """A slab z1 < z < z2 of attenuation alpha_1: echoes from above it are unchanged, those from
    below it change by 2 f (alpha_1 - alpha_0) (z2 - z1) dB, those inside by the part crossed."""
    z1, z2 = 0.010, 0.018
    for alpha in (0.1, 1.9):
        scene = AttenuatedScene(lambda x, z: ((z > z1) & (z < z2)).astype(np.intp),
                                [Tissue("t", 0, 0.0, False), Tissue("slab", 0, 0.0, False, alpha)], None, BREAST)
        x = np.linspace(-0.015, 0.015, 7)
        full = 2 * BREAST.fc / 1e6 * (alpha - BREAST.attenuation) * (z2 - z1) * 100
        assert np.allclose(scene.loss_db(x, np.full(7, 0.005)), 0.0, atol=1e-9)
        assert np.allclose(scene.loss_db(x, np.full(7, 0.030)), full, rtol=0.03)
        assert np.allclose(scene.loss_db(x, np.full(7, 0.014)), full / 2, rtol=0.06)
        ratio = scene.echo(x, np.full(7, 0.030)) / scene.echo(x, np.full(7, 0.005))
        assert np.allclose(10 * np.log10(ratio), -full, rtol=0.03)


def test_lesions_darker_than_tissue_beside(busi_root):
    root, _ = busi_root
    for cls in ("benign", "malignant"):
        for image, mask in cases(root, cls):
            inside, _ = ratios(image, mask)
            assert inside < 0.7, cls


def test_posterior_enhancement_benign_and_shadowing_malignant(busi_root):
    """Below a benign (low-attenuation) lesion the tissue is brighter than beside it at the same
    depths; below a malignant (high-attenuation) one it is darker."""
    root, _ = busi_root
    benign = [ratios(*c)[1] for c in cases(root, "benign")]
    malignant = [ratios(*c)[1] for c in cases(root, "malignant")]
    assert benign and malignant
    assert min(benign) > 1.05, benign
    assert max(malignant) < 0.85, malignant


def test_malignant_outline_less_convex(busi_root):
    root, _ = busi_root
    benign = [convexity(m) for _, m in cases(root, "benign")]
    malignant = [convexity(m) for _, m in cases(root, "malignant")]
    assert min(benign) > 0.9, benign
    assert max(malignant) < min(benign) - 0.05, (benign, malignant)


def test_draw_patient_checks_class():
    with pytest.raises(ValueError, match="breast class"):
        breast.draw_patient(np.random.default_rng(0), "cyst")
    for p in range(6):
        patient = breast.draw_patient(np.random.default_rng([0, p]), "malignant")
        assert patient.skin < patient.gland < patient.lesion.z < patient.retro < patient.muscle < BREAST.depth


# ---------------------------------------------------------------------------------------- determinism


def test_same_seed_same_bytes(busi_root, tmp_path):
    root, _ = busi_root
    simulate_busi(tmp_path / "again", patients=PATIENTS, mode="fast", size=SIZE, seed=SEED, progress=False)
    assert tree_bytes(tmp_path / "again") == tree_bytes(root)
    simulate_busi(tmp_path / "other", patients=3, mode="fast", size=SIZE, seed=SEED + 1, progress=False)
    other = {k: v for k, v in tree_bytes(tmp_path / "other").items() if not k.endswith("_mask.png")}
    ours = set(tree_bytes(root).values())
    assert other and not any(v in ours for k, v in other.items() if k.endswith(".png"))


# ---------------------------------------------------------------------------------------- converter


def test_busi_converter_reads_the_phantom(busi_root, tmp_path):
    """The real BUSI reader and prepare stage: every image a sample, its class kept, the lesion
    label the mask."""
    root, names = busi_root
    spec = LabelSpec.from_config(ENTRY["labels"], True)
    units = busi.list_units(root, dict(ENTRY))
    assert len(units) == PATIENTS
    assert Counter(u.extra["class"] for u in units) == {c: PATIENTS // 3 for c in breast.CLASSES}
    for unit in units:
        (sample,) = load_unit(unit, spec, ENTRY)
        assert np.array_equal(sample.image, read(unit.image))
        assert np.array_equal(sample.label == 1, read(unit.labels[0]) > 127), unit.key
    info = prepare_into(root, tmp_path / "prepared", job_config("phantom_busi", ENTRY))
    df = read_manifest(tmp_path / "prepared" / layout.MANIFEST)
    assert len(df) == PATIENTS and "class" in df.columns
    assert Counter(df["class"]) == {c: PATIENTS // 3 for c in breast.CLASSES}
    assert info["labels"]["lesion"] == 1
    masks = {f"{n.split(' ')[0]}_{n.split('(')[1].rstrip(')')}": n for n in names}
    assert set(df["sample_id"]) == set(masks)
    for _, row in df.iterrows():
        lab = read(Path(row["label"]))
        cls, stem = row["class"], masks[row["sample_id"]]
        mask = read(root / cls / f"{stem}_mask.png") > 127
        assert lab.shape == mask.shape and np.array_equal(lab == 1, mask), row["sample_id"]


# ---------------------------------------------------------------------------------------- config


def _cfg(**changes):
    sim = {"phantom": "breast", "patients": 3, "mode": "fast", "size": 16, "seed": 2, **changes}
    return {"dataset": "phantom_busi", "data": {"format": "busi", "source": {"simulate": sim}}}


def test_simulate_phantom_breast_is_busi(tmp_path):
    out = simulate_phantom(_cfg(), tmp_path / "raw", progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["benign", "malignant", "normal", "phantom.json"]
    assert len(busi.list_units(out, dict(ENTRY))) == 3
    cfg = _cfg()
    cfg["data"]["format"] = "folder"
    with pytest.raises(InputError, match=r"^config key datasets\.phantom_busi\.format: "):
        simulate_phantom(cfg, tmp_path / "bad", progress=False)
    with pytest.raises(InputError, match="at least 1"):
        simulate_phantom(_cfg(patients=0), tmp_path / "none", progress=False)
    assert not (tmp_path / "bad").exists() and not (tmp_path / "none").exists()
