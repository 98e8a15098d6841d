"""Tiny raw datasets in the real layouts (CAMUS both releases, BUSI, a folder; SegThy's is in
test_data_segthy.py), written
here with SimpleITK and PIL, and the resolved config that goes with them.

Helpers only (no tests): ``from test_data_factories import ...``.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import yaml
from PIL import Image

from sonodiff.config import resolve, validate_config
from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.data.prepare import prepare_dataset

ROOT = Path(__file__).resolve().parents[1]
CAMUS_LABELS = {"background": 0, "lv_cavity": 1, "myocardium": 2, "left_atrium": 3}
SEGTHY_LABELS = {"background": 0, "thyroid": 1, "carotid": [2, 4], "jugular": [3, 5]}


def job_config(name: str, entry: dict, **sections) -> dict:
    """Resolved config of one dataset ``name`` given its config entry (other keys: defaults)."""
    raw = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    raw["datasets"] = {name: copy.deepcopy(entry)}
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value}
    return resolve(validate_config(raw), name)


def prepare_into(raw: Path, folder: Path, cfg: dict) -> dict:
    """Prepare ``raw`` into ``folder`` under the contract's file names; return ``dataset.json``."""
    files = PreparedDataset.in_dir(folder)
    return prepare_dataset(raw, files.manifest, files.info_path, files.sector_path, cfg, progress=False)


def fan(h: int, w: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A phased-array-like fan image (apex at row 0) with LV cavity, myocardium and atrium."""
    y, x = np.mgrid[0:h, 0:w]
    r, ang = np.hypot(x - w / 2, y + 1), np.arctan2(x - w / 2, y + 1)
    inside = (np.abs(ang) < 0.6) & (r < 0.95 * h)
    img = np.where(inside, 60 + 120 * rng.random((h, w)), 0).astype(np.uint8)
    d = np.hypot(x - w / 2, y - h / 2 + rng.integers(-2, 3))
    lab = np.zeros((h, w), np.uint8)
    lab[d < h / 6] = 1
    lab[(d >= h / 6) & (d < h / 4)] = 2
    lab[np.hypot(x - w / 2, y - 0.8 * h) < h / 10] = 3
    lab[~inside] = 0
    return img, lab


def write_sitk(arr: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(arr), str(path))
    return path


def write_camus_nifti(root: Path, groups: dict[str, list[int]] | None = None, h: int = 40, w: int = 32,
                      seed: int = 0) -> Path:
    """CAMUS NIfTI release: ``database_nifti/`` + ``database_split/subgroup_*.txt``."""
    groups = groups or {"training": [1, 2, 3, 4], "validation": [5], "testing": [6]}
    rng = np.random.default_rng(seed)
    for group, ids in groups.items():
        for i in ids:
            pid = f"patient{i:04d}"
            d = root / "database_nifti" / pid
            for view in ("2CH", "4CH"):
                (d / f"Info_{view}.cfg").parent.mkdir(parents=True, exist_ok=True)
                (d / f"Info_{view}.cfg").write_text("ED: 1\nES: 9\nNbFrame: 10\nSex: F\nAge: 60\n")
                for phase in ("ED", "ES"):
                    img, lab = fan(h, w, rng)
                    write_sitk(img, d / f"{pid}_{view}_{phase}.nii.gz")
                    write_sitk(lab, d / f"{pid}_{view}_{phase}_gt.nii.gz")
        split = root / "database_split" / f"subgroup_{group}.txt"
        split.parent.mkdir(parents=True, exist_ok=True)
        split.write_text("".join(f"patient{i:04d}\n" for i in ids))
    return root


def write_camus_2019(root: Path, train: list[int], test: list[int], h: int = 40, w: int = 32,
                     seed: int = 0) -> Path:
    """CAMUS 2019 release: ``training/`` and ``testing/`` with ``.mhd`` + ``.raw``."""
    rng = np.random.default_rng(seed)
    for folder, ids in (("training", train), ("testing", test)):
        for i in ids:
            pid = f"patient{i:04d}"
            for view in ("2CH", "4CH"):
                for phase in ("ED", "ES"):
                    img, lab = fan(h, w, rng)
                    write_sitk(img, root / folder / pid / f"{pid}_{view}_{phase}.mhd")
                    write_sitk(lab, root / folder / pid / f"{pid}_{view}_{phase}_gt.mhd")
    return root


def write_png(arr: np.ndarray, path: Path, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(arr)
    (img.convert(mode) if mode else img).save(path)
    return path


def write_busi(root: Path, counts: dict[str, int] | None = None, h: int = 30, w: int = 40,
               seed: int = 0) -> Path:
    """BUSI layout: ``Dataset_BUSI_with_GT/<class>/<class> (N).png`` + ``_mask.png``, some ``_mask_1.png``."""
    counts = counts or {"benign": 4, "malignant": 4, "normal": 3}
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    for cls, n in counts.items():
        d = root / "Dataset_BUSI_with_GT" / cls
        for i in range(1, n + 1):
            img = (40 + 150 * rng.random((h, w))).astype(np.uint8)
            write_png(img, d / f"{cls} ({i}).png", mode="RGB")
            mask = np.zeros((h, w), np.uint8)
            if cls != "normal":
                mask[np.hypot(y - h / 3, x - w / 3) < 4] = 255
            write_png(mask, d / f"{cls} ({i})_mask.png")
            if cls == "malignant" and i % 2 == 1:
                second = np.zeros((h, w), np.uint8)
                second[np.hypot(y - 2 * h / 3, x - 2 * w / 3) < 3] = 255
                write_png(second, d / f"{cls} ({i})_mask_1.png")
    return root
