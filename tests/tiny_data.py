"""Tiny prepared datasets, augmented label maps and configs for the train/sample/CLI tests."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from PIL import Image

from sonodiff.config import load_config, resolve, validate_config
from sonodiff.io import write_json
from sonodiff.contracts.manifest import write_manifest

ROOT = Path(__file__).resolve().parents[1]

TINY = {
    "diffusion": {"num_steps": 10},
    "model": {"channels": [8, 16], "attention_levels": [False, True], "num_res_blocks": 1,
              "num_head_channels": 8, "norm_num_groups": 4, "spade_channels": 8},
    "train": {"steps": 12, "batch_size": 4, "checkpoint_every": 4, "log_every": 2, "ema_rate": 0.9,
              "lr": 1.0e-3},
    "sample": {"sampler": "ddim", "steps": 4, "batch_size": 3, "shards": 2, "count": 5},
}


def sector_mask(size: int) -> np.ndarray:
    """A downward fan (255 inside) whose apex lies above row 0."""
    rows, cols = np.mgrid[0:size, 0:size]
    return np.where(np.abs(cols - (size - 1) / 2) <= 2 + 0.45 * rows, 255, 0).astype(np.uint8)


def make_dataset(root: Path, n: int = 10, size: int = 16, labelled: bool = True, seed: int = 0,
                 classes: tuple[str, ...] | None = None) -> Path:
    """A prepared dataset at ``root``: train/val rows, PNGs, sector.png and dataset.json. With
    ``classes``, row i has class ``classes[i % K]`` in a ``class`` column (and a blob whose
    brightness grows with the class index)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(exist_ok=True)
    (root / "labels").mkdir(exist_ok=True)
    sector = sector_mask(size) > 0
    rows = []
    for i in range(n):
        sid = f"p{i:02d}_img"
        label = np.where(sector, 2, 0).astype(np.uint8)
        r, c = rng.integers(size // 4, 3 * size // 4, size=2)
        yy, xx = np.mgrid[0:size, 0:size]
        label[((yy - r) ** 2 + (xx - c) ** 2 <= (size // 5) ** 2) & sector] = 1
        blob = 200 if classes is None else 120 + 60 * (i % len(classes))
        image = np.where(label == 1, blob, np.where(label == 2, 90, 0)) + rng.normal(0, 10, (size, size))
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(root / "images" / f"{sid}.png")
        Image.fromarray(label).save(root / "labels" / f"{sid}.png")
        rows.append({"sample_id": sid, "patient_id": f"p{i:02d}", "split": "train" if i < n - 3 else "val",
                     "view": "", "phase": "", "slice_index": 0, "image": str(root / "images" / f"{sid}.png"),
                     "label": str(root / "labels" / f"{sid}.png") if labelled else "", "source_file": "",
                     **({"class": classes[i % len(classes)]} if classes else {})})
    write_manifest(pd.DataFrame(rows), root / "manifest.csv")
    Image.fromarray(sector_mask(size)).save(root / "sector.png")
    labels = {"background": 0, "blob": 1, "sector": 2} if labelled else {"background": 0}
    write_json(root / "dataset.json", {
        "name": root.name, "format": "camus", "img_size": size, "labels": labels,
        "structures": {"blob": 1} if labelled else {}, "sector_id": 2 if labelled else None,
        "probe": {"type": "convex"}, "counts": {"train": n - 3, "val": 3, "test": 0}})
    return root


def make_augmented(data_dir: Path, out: Path, copies: int = 2) -> Path:
    """An augment manifest: each train/val label map ``copies`` times (rolled by k pixels)."""
    df = pd.read_csv(data_dir / "manifest.csv", dtype=str)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    rows = []
    for _, row in df.iterrows():
        label = np.asarray(Image.open(data_dir / row["label"]))
        for k in range(copies):
            sid = f"{row['sample_id']}_aug{k}"
            Image.fromarray(np.roll(label, k, axis=1)).save(out / "labels" / f"{sid}.png")
            rows.append({"sample_id": sid, "source_sample_id": row["sample_id"], "patient_id": row["patient_id"],
                         "split": row["split"], "copy": k, "label": str(out / "labels" / f"{sid}.png"),
                         "source_label": str(data_dir / row["label"]), "real_image": str(data_dir / row["image"])})
    write_manifest(pd.DataFrame(rows), out / "manifest.csv")
    return out / "manifest.csv"


def deep_update(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = deep_update(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def tiny_config(tmp: Path | None = None, variant: str = "bmaps", **sections) -> dict:
    """The resolved config of dataset ``tiny`` (TINY over the default config, then ``sections``).

    With ``tmp``, also writes the unresolved config to ``tmp/config.yaml`` (for the CLI).
    """
    raw = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    raw = deep_update(raw, TINY)
    raw = deep_update(raw, sections)
    raw["device"] = "cpu"
    raw["datasets"] = {"tiny": {"format": "camus", "source": {"path": "unused"}, "img_size": 16,
                                "labels": {"background": 0, "blob": 1}, "probe": "convex"}}
    cfg = validate_config(raw)
    if tmp is not None:
        (tmp / "config.yaml").write_text(yaml.safe_dump(raw))
        assert load_config(tmp / "config.yaml") == cfg
    return resolve(cfg, "tiny", variant)


#: The latent family at the tests' size: 16 px images, 8 px latents, 4 px at the UNet's bottom.
TINY_LATENT = {"family": "latent", "img_size": 16,
               "latent": {"autoencoder": {"channels": [8, 16], "latent_channels": 4, "norm_num_groups": 4,
                                          "steps": 20, "batch_size": 4, "lr": 1.0e-3},
                          "unet": {"channels": [16, 32], "attention_head_dim": 8, "norm_num_groups": 8},
                          "text_encoder": {"hidden_size": 16, "intermediate_size": 32, "layers": 1, "heads": 2,
                                           "max_length": 8},
                          "controlnet": {"conditioning_channels": [8, 16], "steps": 6, "lr": 1.0e-3}}}


def tiny_latent_config(variant: str = "bmaps", dataset: dict | None = None, **sections) -> dict:
    """The resolved config of the latent-family dataset ``tiny`` (TINY_LATENT, then ``dataset``)."""
    raw = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    raw = deep_update(deep_update(raw, TINY), sections)
    raw["device"] = "cpu"
    entry = {"format": "busi", "source": {"path": "unused"}, "labels": {"background": 0, "blob": 1},
             "probe": "convex"}
    raw["datasets"] = {"tiny": deep_update(deep_update(entry, TINY_LATENT), dataset or {})}
    return resolve(validate_config(raw), "tiny", variant)


def prepared(root: Path):
    """The prepared dataset at ``root`` (from :func:`make_dataset`) as the contract object."""
    from sonodiff.contracts.dataset import PreparedDataset

    return PreparedDataset.in_dir(root)


def make_busi_folder(root: Path, per_class: int = 5, size: int = 32, seed: int = 0) -> Path:
    """A raw folder in BUSI's layout (``<class>/<class> (N).png`` and ``_mask.png``): grey noise
    with a dark disc lesion (benign round, malignant a smaller, darker one; normal none)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    for cls, radius, grey in (("benign", size // 5, 40), ("malignant", size // 7, 20), ("normal", 0, 0)):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for n in range(1, per_class + 1):
            r, c = rng.integers(size // 3, 2 * size // 3, size=2)
            mask = ((yy - r) ** 2 + (xx - c) ** 2 <= radius ** 2) if radius else np.zeros((size, size), bool)
            image = np.clip(rng.normal(150, 25, (size, size)), 30, 255)
            image[mask] = grey + rng.normal(0, 5, int(mask.sum()))
            Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(root / cls / f"{cls} ({n}).png")
            Image.fromarray((mask * 255).astype(np.uint8)).save(root / cls / f"{cls} ({n})_mask.png")
    return root
