"""A tiny results tree in the on-disk contracts, for the report's tests.

``make_results_tree(root, cfg)`` writes, for every dataset and variant of a validated config,
what the upstream stages would, through the contract writers and at the paths of
:class:`sonodiff.contracts.layout.Layout`: the prepared dataset, a training log, a samples
manifest with images, the reverse-process snapshots, a metrics record (with the depth profiles
the report draws), every table CSV and Markdown, the segmentation example figure and a few
benchmark files. Images are drawn from a seeded RNG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sonodiff.contracts.dataset import image_path, label_path, write_dataset
from sonodiff.contracts.layout import Layout
from sonodiff.contracts.metrics_record import write_metrics_record
from sonodiff.contracts.model_file import TRAIN_LOG_COLUMNS
from sonodiff.contracts.samples import FINAL_STEP, sample_image_path, write_samples, write_snapshots
from sonodiff.diffusion.depth import convex_depth, depth_from_sector_mask
from sonodiff.io import read_png, write_json, write_png, write_text
from sonodiff.metrics.physics import depth_bins, depth_profiles, profile_curves

BENCH_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
#: Table files the report expects (REPORT_TABLES in workflow/rules/report_helpers.smk).
TABLES = ("fid", "paired", "physics", "segmentation")
#: Steps kept in the fake reverse-process snapshots (then the final x_0).
SNAPSHOT_STEPS = (19, 12, 6)


def _png(path: Path, arr: np.ndarray) -> str:
    write_png(path, np.asarray(arr, dtype=np.uint8))
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


def make_dataset(layout: Layout, name: str, ds_cfg: dict, rng) -> dict:
    size = int(ds_cfg["img_size"])
    probe = ds_cfg.get("probe", "linear")
    folder = Path(layout("dataset_manifest", dataset=name)).parent
    structures = [n for n, v in ds_cfg["labels"].items() if n != "background"]
    ids = {"background": 0, **{n: i + 1 for i, n in enumerate(structures)}, "sector": len(structures) + 1}
    sector = _sector(size, probe)
    _png(Path(layout("dataset_sector", dataset=name)), sector * 255)
    depth = depth_from_sector_mask(sector, probe).numpy()
    rows = []
    for p, split in enumerate(["train", "train", "val", "val", "test"]):
        for k in range(2):
            sid = f"{name}_p{p}_{k}"
            lab = _label_map(size, sector, p + k, len(structures), rng)
            rows.append({"sample_id": sid, "patient_id": f"p{p}", "split": split, "view": "4CH", "phase": "ED",
                         "slice_index": k, "image": _png(image_path(folder, sid), _image(lab, depth, rng)),
                         "label": _png(label_path(folder, sid), lab), "source_file": "phantom"})
    info = {"name": name, "format": ds_cfg["format"], "img_size": size, "labels": ids,
            "structures": {n: ids[n] for n in structures}, "sector_id": ids["sector"],
            "probe": {"type": probe}, "counts": {"train": 4, "val": 4, "test": 2}}
    write_dataset(layout("dataset_manifest", dataset=name), layout("dataset_info", dataset=name),
                  pd.DataFrame(rows), info)
    return {"rows": rows, "depth": depth, "sector": sector, "probe": probe}


def make_train_log(path: str) -> None:
    steps = np.arange(1, 6) * 10
    log = pd.DataFrame({"step": steps, "loss": 1.0 / steps, "mse": 0.9 / steps, "vb": 0.1 / steps, "lr": 1e-4,
                        "grad_norm": 1.0, "images_per_s": 50.0, "skipped_total": 0})
    write_text(path, log[list(TRAIN_LOG_COLUMNS)].to_csv(index=False))


def make_samples(manifest: str, data: dict, rng, gain: float) -> list[str]:
    """A samples manifest (two images per train/val label map); returns the val images."""
    folder = Path(manifest).parent
    rows = []
    for rec in data["rows"]:
        if rec["split"] == "test":
            continue
        lab = read_png(rec["label"])
        for k in range(2):
            sid = f"{rec['sample_id']}_aug{k}"
            rows.append({"sample_id": sid, "image": _png(sample_image_path(folder, sid),
                                                         _image(lab, data["depth"], rng, gain)),
                         "label": rec["label"], "real_image": rec["image"], "source_sample_id": rec["sample_id"],
                         "patient_id": rec["patient_id"], "split": rec["split"], "seed": k})
    write_samples(pd.DataFrame(rows), manifest)
    return [r["image"] for r in rows if r["split"] == "val"]


def make_snapshots(path: str, data: dict, rng) -> None:
    """One chain of frames in [-1, 1] from noise to a val image, with its label map."""
    val = next(r for r in data["rows"] if r["split"] == "val")
    x0 = read_png(val["image"]) / 127.5 - 1.0
    noise = rng.standard_normal(x0.shape)
    frames = [np.clip(w * noise + (1 - w) * x0, -1, 1) for w in (1.0, 0.6, 0.3, 0.0)]
    write_snapshots(path, [*SNAPSHOT_STEPS, FINAL_STEP], np.stack(frames), read_png(val["label"]))


def make_metrics(path: str, dataset: str, variant: str, data: dict, synthetic: list[str]) -> None:
    """A metrics record whose depth profiles are the physics metrics' own on these images."""
    bins = depth_bins(data["sector"], data["probe"])
    real = [r["image"] for r in data["rows"] if r["split"] == "val"]
    p_syn = depth_profiles(np.stack([read_png(p) for p in synthetic]), bins)
    p_real = depth_profiles(np.stack([read_png(p) for p in real]), bins)
    depth = ((np.arange(bins.shape[0]) + 0.5) / bins.shape[0]).tolist()
    na = {"value": None, "ci": None, "status": "n/a", "reason": "not computed in the report's test tree"}
    write_metrics_record(path, {
        "dataset": dataset, "variant": variant, "counts": {}, "fid": {"64": na}, "kid": {"64": na},
        "paired": {"ssim": {"mean": na}},
        "physics": {"rows": [{"metric": "depth profile", "region": "sector", "quantity": "L1 synthetic vs real", **na}],
                    "depth_profile": {"probe": data["probe"], "depth": depth, **profile_curves(p_syn, p_real)}}})


def make_differences(path: str, dataset: str, variants) -> None:
    """Variant differences: a depth-profile L1 that the last variant lowers, with its interval."""
    row = {"metric": "depth profile", "region": "sector", "quantity": "L1 synthetic vs real",
           "value": -0.02, "ci": [-0.03, -0.01], "status": "ok", "n": [20, 4], "n_clusters": [6, 6]}
    write_json(path, {"dataset": dataset, "reference": variants[0], "sign": f"variant minus {variants[0]}",
                      "counts": {}, "variants": {v: {"physics": {"rows": [row]}} for v in variants[1:]}})


def make_tables(layout: Layout, datasets, variants) -> None:
    recs = [{"dataset": d, "variant": v, "kind": "ours", "value": 1.5, "ci_low": 1.2, "ci_high": 1.8,
             "published": 2.0} for d in datasets for v in variants]
    for t in TABLES:
        write_text(layout("table", name=t, fmt="csv"), pd.DataFrame(recs).rename(columns={"value": f"{t}_value"})
                   .to_csv(index=False))
        write_text(layout("table", name=t, fmt="md"),
                   f"**{t} table**\n\n| dataset | ours | published |\n| --- | ---: | ---: |\n"
                   + "".join(f"| {d} | 1.5 [1.2, 1.8] | 2.0 |\n" for d in datasets)
                   + "\n- [1] n/a: no weights\n")


def make_results_tree(root: Path, config: dict) -> Path:
    """Write the upstream results of every dataset and variant of ``config`` under ``root/results``."""
    results = Path(root) / "results"
    layout = Layout(str(results))
    rng = np.random.default_rng(0)
    datasets, variants = sorted(config["datasets"]), sorted(config["variants"])
    for d in datasets:
        data = make_dataset(layout, d, config["datasets"][d], rng)
        for i, v in enumerate(variants):
            make_train_log(layout("train_log", dataset=d, variant=v))
            synthetic = make_samples(layout("samples_manifest", dataset=d, variant=v), data, rng, gain=0.5 + i)
            make_snapshots(layout("snapshots", dataset=d, variant=v), data, rng)
            make_metrics(layout("metrics_record", dataset=d, variant=v), d, v, data, synthetic)
            write_text(layout.benchmark("train_diffusion", f"{d}_{v}"),
                       BENCH_HEADER + f"{3 + i}\t0:00:03\t500\t1\t1\t1\t0\t0\t0\t2\n")
        _png(Path(layout("figure", kind="segment", name=d)), rng.integers(0, 255, (120, 240)))
        make_differences(layout("metrics_differences", dataset=d), d, variants)
    make_tables(layout, datasets, variants)
    return results
