"""A tiny results tree in the on-disk contracts, for the report's tests.

``make_results_tree(root, cfg)`` writes, for every dataset and variant of a validated config,
what the upstream stages would: the prepared dataset, an untrained ``model.pt`` in the training
stage's format with its ``train_log.csv``, a samples manifest with images, every table CSV, the
segmentation example figure and a few benchmark files. Images are drawn from a seeded RNG.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from sonodiff.config import resolve
from sonodiff.diffusion.depth import convex_depth, depth_from_sector_mask, linear_depth
from sonodiff.manifest import write_manifest

BENCH_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
#: Table files the report expects (REPORT_TABLES in workflow/rules/report_helpers.smk).
TABLES = ("fid", "paired", "physics", "segmentation")


def _png(path: Path, arr: np.ndarray) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(arr, dtype=np.uint8)).save(path)
    return str(path)


def _sector(size: int, probe: str) -> np.ndarray:
    if probe == "convex":
        return convex_depth(size, size, (-size / 4, size / 2), 1.25 * size, 70.0, inner_radius=size / 4).numpy() > 0
    mask = np.zeros((size, size), bool)
    mask[1:, 2:-2] = True
    return mask


def _label_map(size: int, sector: np.ndarray, k: int, n_structures: int, rng) -> np.ndarray:
    rows, cols = np.mgrid[0:size, 0:size]
    lab = np.where(sector, n_structures + 1, 0)
    for s in range(1, n_structures + 1):
        cy, cx = size * (0.3 + 0.5 * s / (n_structures + 1)), size * (0.35 + 0.1 * ((k + s) % 3))
        r = size * (0.08 + 0.02 * rng.random())
        lab[((rows - cy) ** 2 + (cols - cx) ** 2 < r ** 2) & sector] = s
    return lab


def _image(lab: np.ndarray, depth: np.ndarray, rng, gain: float = 1.0) -> np.ndarray:
    base = np.where(lab > 0, 120.0 + 25.0 * (lab % 3), 0.0)
    img = base * (1.0 - 0.6 * depth * gain) * rng.rayleigh(0.8, lab.shape)
    return np.clip(img, 0, 255)


def make_dataset(data_dir: Path, name: str, ds_cfg: dict, rng) -> dict:
    size = int(ds_cfg["img_size"])
    probe = ds_cfg.get("probe", "linear")
    structures = [n for n, v in ds_cfg["labels"].items() if n != "background"]
    ids = {"background": 0, **{n: i + 1 for i, n in enumerate(structures)}, "sector": len(structures) + 1}
    sector = _sector(size, probe)
    _png(data_dir / "sector.png", sector * 255)
    depth = depth_from_sector_mask(sector, probe).numpy()
    rows = []
    for p, split in enumerate(["train", "train", "val", "val", "test"]):
        for k in range(2):
            sid = f"{name}_p{p}_{k}"
            lab = _label_map(size, sector, p + k, len(structures), rng)
            rows.append({"sample_id": sid, "patient_id": f"p{p}", "split": split, "view": "4CH", "phase": "ED",
                         "slice_index": k, "image": _png(data_dir / "images" / f"{sid}.png", _image(lab, depth, rng)),
                         "label": _png(data_dir / "labels" / f"{sid}.png", lab), "source_file": "phantom"})
    write_manifest(pd.DataFrame(rows), data_dir / "manifest.csv")
    info = {"name": name, "format": ds_cfg["format"], "img_size": size, "labels": ids,
            "structures": {n: ids[n] for n in structures}, "sector_id": ids["sector"],
            "probe": {"type": probe}, "counts": {"train": 4, "val": 4, "test": 2}}
    (data_dir / "dataset.json").write_text(json.dumps(info, indent=2))
    return {"rows": rows, "depth": depth, "sector": sector, "num_classes": len(ids)}


def make_model(path: Path, cfg: dict, depth: np.ndarray, num_classes: int) -> None:
    """An untrained model in the training stage's ``model.pt`` format."""
    from sonodiff.models import build_model, model_spec

    torch.manual_seed(0)
    spec = model_spec(cfg, num_classes)
    model = build_model(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": "sonodiff-model/1", "state_dict": model.state_dict(), "spec": spec, "config": cfg,
                "step": 5, "depth": torch.as_tensor(depth, dtype=torch.float32)}, path)
    steps = np.arange(1, 6) * 10
    pd.DataFrame({"step": steps, "loss": 1.0 / steps, "mse": 0.9 / steps, "vb": 0.1 / steps, "lr": 1e-4,
                  "grad_norm": 1.0, "images_per_s": 50.0, "skipped_total": 0}).to_csv(path.parent / "train_log.csv",
                                                                                     index=False)


def make_samples(out_dir: Path, variant: str, data: dict, rng, gain: float) -> None:
    rows = []
    for rec in data["rows"]:
        if rec["split"] == "test":
            continue
        lab = np.asarray(Image.open(rec["label"]))
        for k in range(2):
            sid = f"{rec['sample_id']}_aug{k}"
            rows.append({"sample_id": sid, "image": _png(out_dir / "images" / f"{sid}.png",
                                                         _image(lab, data["depth"], rng, gain)),
                         "label": rec["label"], "real_image": rec["image"], "source_sample_id": rec["sample_id"],
                         "patient_id": rec["patient_id"], "split": rec["split"], "seed": k})
    write_manifest(pd.DataFrame(rows), out_dir / "manifest.csv")


def make_tables(tables: Path, datasets, variants) -> None:
    tables.mkdir(parents=True, exist_ok=True)
    recs = [{"dataset": d, "variant": v, "value": 1.5, "ci_low": 1.2, "ci_high": 1.8, "published": 2.0}
            for d in datasets for v in variants]
    for t in TABLES:
        pd.DataFrame(recs).rename(columns={"value": f"{t}_value"}).to_csv(tables / f"{t}.csv", index=False)
        (tables / f"{t}.md").write_text(f"**{t} table**\n\n| dataset | ours | published |\n| --- | ---: | ---: |\n"
                                        + "".join(f"| {d} | 1.5 [1.2, 1.8] | 2.0 |\n" for d in datasets)
                                        + "\n- [1] n/a: no weights\n")


def make_results_tree(root: Path, config: dict) -> Path:
    """Write the upstream results of every dataset and variant of ``config`` under ``root/results``."""
    results = Path(root) / "results"
    rng = np.random.default_rng(0)
    datasets, variants = sorted(config["datasets"]), sorted(config["variants"])
    for d in datasets:
        data = make_dataset(results / "data" / d, d, config["datasets"][d], rng)
        for i, v in enumerate(variants):
            cfg = resolve(config, d, v)
            make_model(results / "models" / d / v / "model.pt", cfg, data["depth"], data["num_classes"])
            make_samples(results / "samples" / d / v, v, data, rng, gain=0.5 + i)
            bench = results / "benchmarks" / "train_diffusion" / f"{d}_{v}.tsv"
            bench.parent.mkdir(parents=True, exist_ok=True)
            bench.write_text(BENCH_HEADER + f"{3 + i}\t0:00:03\t500\t1\t1\t1\t0\t0\t0\t2\n")
        _png(results / "figures" / "segment" / f"{d}.png", rng.integers(0, 255, (120, 240)))
    make_tables(results / "tables", datasets, variants)
    return results
