"""Conversion rate of the prepare stage (and of label-map augmentation) on a synthetic CAMUS tree.

Writes a CAMUS NIfTI-release tree (``--patients`` x 4 images of ``--raw-height`` x
``--raw-width`` pixels, SimpleITK) in a scratch folder, then times
:func:`sonodiff.data.prepare.prepare_dataset` to ``--img-size`` and
:func:`sonodiff.augment.augment_dataset` (``--copies`` per train/val map). Prints images/s.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_prepare.py --patients 50 --img-size 128
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import yaml

from sonodiff.augment import augment_dataset
from sonodiff.config import resolve, validate_config
from sonodiff.contracts import layout
from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.data.prepare import prepare_dataset

ROOT = Path(__file__).resolve().parents[1]


def write_tree(root: Path, patients: int, h: int, w: int, seed: int = 0) -> None:
    """A CAMUS NIfTI tree: fan images (apex at row 0) with cavity, myocardium and atrium labels."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    r, ang = np.hypot(x - w / 2, y + 1), np.arctan2(x - w / 2, y + 1)
    inside = (np.abs(ang) < 0.6) & (r < 0.95 * h)
    ids = [f"patient{i:04d}" for i in range(1, patients + 1)]
    for pid in ids:
        for view in ("2CH", "4CH"):
            for phase in ("ED", "ES"):
                img = np.where(inside, 30 + 180 * rng.random((h, w)), 0).astype(np.uint8)
                d = np.hypot(x - w / 2, y - h / 2)
                lab = np.select([d < h / 6, d < h / 4, np.hypot(x - w / 2, y - 0.8 * h) < h / 10], [1, 2, 3], 0)
                lab = np.where(inside, lab, 0).astype(np.uint8)
                folder = root / "database_nifti" / pid
                folder.mkdir(parents=True, exist_ok=True)
                sitk.WriteImage(sitk.GetImageFromArray(img), str(folder / f"{pid}_{view}_{phase}.nii.gz"))
                sitk.WriteImage(sitk.GetImageFromArray(lab), str(folder / f"{pid}_{view}_{phase}_gt.nii.gz"))
    n_test = n_val = max(1, patients // 10)
    groups = {"training": ids[: patients - n_val - n_test], "validation": ids[patients - n_val - n_test:-n_test],
              "testing": ids[-n_test:]}
    (root / "database_split").mkdir(parents=True, exist_ok=True)
    for name, members in groups.items():
        (root / "database_split" / f"subgroup_{name}.txt").write_text("".join(p + "\n" for p in members))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=50, help="patients (4 images each)")
    parser.add_argument("--img-size", type=int, default=128)
    parser.add_argument("--raw-height", type=int, default=256)
    parser.add_argument("--raw-width", type=int, default=208)
    parser.add_argument("--copies", type=int, default=5)
    args = parser.parse_args()

    raw_cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    raw_cfg["datasets"] = {"bench": {"format": "camus", "source": {"path": "unused"}, "img_size": args.img_size,
                                     "labels": {"background": 0, "lv_cavity": 1, "myocardium": 2,
                                                "left_atrium": 3}}}
    raw_cfg["augment"]["copies"] = args.copies
    cfg = resolve(validate_config(copy.deepcopy(raw_cfg)), "bench")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_tree(tmp / "raw", args.patients, args.raw_height, args.raw_width)
        t0 = time.perf_counter()
        data = PreparedDataset.in_dir(tmp / "data")
        info = prepare_dataset(tmp / "raw", data.manifest, data.info_path, data.sector_path, cfg, progress=False)
        t_prep = time.perf_counter() - t0
        n = sum(info["counts"][s] for s in ("train", "val", "test"))
        t0 = time.perf_counter()
        aug = augment_dataset(data.manifest, data.info_path, data.sector_path, tmp / "aug" / layout.MANIFEST, cfg,
                              progress=False)
        t_aug = time.perf_counter() - t0
    print(f"prepare: {n} images {args.raw_height}x{args.raw_width} -> {args.img_size} px in {t_prep:.2f} s "
          f"= {n / t_prep:.1f} images/s")
    print(f"augment: {len(aug)} label maps at {args.img_size} px in {t_aug:.2f} s = {len(aug) / t_aug:.1f} maps/s")


if __name__ == "__main__":
    main()
