"""Training data: the prepared train split in memory, and a data order fixed by (seed, step).

Images are uint8 PNGs mapped to ``x0 = png / 127.5 - 1`` in [-1, 1]; label maps are the
prepared ids (background 0, structures 1..K, sector K+1), one-hot encoded by the model. The
whole split is held in memory as uint8 (1800 CAMUS images at 128 px are 30 MB).

Data order. With N images and a global batch G (batch size x processes), step s reads the
global positions ``p = s G + r B + j`` (process r, j < B). Position p is image
``perm_e[p mod N]`` of epoch ``e = p div N``, where ``perm_e`` is a permutation drawn from
``generator(seed, "epoch", e)``. The order is thus a pure function of (seed, step): a resumed
run reads exactly the batches an uninterrupted one would, with nothing to restore but the step.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sonodiff.errors import InputError
from sonodiff.io import read_json
from sonodiff.manifest import read_manifest
from sonodiff.train.seeds import generator


def read_png(path: str | Path) -> np.ndarray:
    """A grayscale PNG as a uint8 (H, W) array."""
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("L") if img.mode not in ("L", "P") else img, dtype=np.uint8)
    except (OSError, ValueError) as err:
        raise InputError(path, f"unreadable image ({err})") from err


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]: ``x = u / 127.5 - 1``."""
    return images.float() / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8: ``u = round((x + 1) 127.5)`` clipped to [0, 255]."""
    return ((x.float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)


def num_classes(info: dict) -> int | None:
    """Label ids of a prepared dataset (``max id + 1``), or None when it has no structures."""
    if not info.get("structures"):
        return None
    return max(int(v) for v in info["labels"].values()) + 1


@dataclass
class TrainingSet:
    """The train split: ``images`` (N, 1, H, W) uint8, ``labels`` (N, H, W) uint8 or None."""

    images: torch.Tensor
    labels: torch.Tensor | None
    num_classes: int | None
    sample_ids: list[str]

    def __len__(self) -> int:
        return self.images.shape[0]

    def batch(self, step: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        """(x0 in [-1, 1], labels or None) of process ``rank`` at ``step`` (see module docstring)."""
        idx = batch_indices(len(self), step, batch_size, seed, rank, world_size)
        x0 = to_model_range(self.images[idx])
        labels = self.labels[idx].long() if self.labels is not None else None
        return x0, labels


@lru_cache(maxsize=4)
def _epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    return torch.randperm(n, generator=generator(seed, "epoch", epoch))


def batch_indices(n: int, step: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> torch.Tensor:
    """Image indices of process ``rank`` at ``step``: ``perm_{p div n}[p mod n]`` for its positions p."""
    start = step * batch_size * world_size + rank * batch_size
    positions = range(start, start + batch_size)
    return torch.stack([_epoch_permutation(n, seed, p // n)[p % n] for p in positions])


def load_training_set(data_dir: str | Path, split: str = "train") -> TrainingSet:
    """Read the ``split`` rows of a prepared dataset (``manifest.csv``, ``dataset.json``)."""
    data_dir = Path(data_dir)
    info = read_json(data_dir / "dataset.json")
    classes = num_classes(info)
    manifest = read_manifest(data_dir / "manifest.csv", required=["sample_id", "split", "image", "label"])
    rows = manifest[manifest["split"] == split].sort_values("sample_id")
    if rows.empty:
        raise InputError(data_dir / "manifest.csv", f"no rows with split {split!r}")
    images = np.stack([read_png(p) for p in rows["image"]])
    size = int(info.get("img_size", images.shape[-1]))
    if images.shape[1:] != (size, size):
        raise InputError(data_dir / "manifest.csv", f"images are {images.shape[1:]}, dataset.json says {size}")
    labels = None
    if classes is not None:
        labels_np = np.stack([read_png(p) for p in rows["label"]])
        if labels_np.max() >= classes:
            raise InputError(data_dir / "manifest.csv", f"label id {labels_np.max()} >= number of labels {classes}")
        labels = torch.from_numpy(labels_np)
    return TrainingSet(images=torch.from_numpy(images)[:, None], labels=labels, num_classes=classes,
                       sample_ids=list(rows["sample_id"]))


def depth_map(data_dir: str | Path) -> torch.Tensor:
    """The B-map depth map d(p) of a prepared dataset, (H, W) in [0, 1].

    From ``sector.png`` (255 inside the imaging sector) and the probe type of ``dataset.json``:
    convex probes get the radial depth from the fan apex fitted to the sector's edges, linear
    probes the row depth (``sonodiff.diffusion.depth_from_sector_mask``).
    """
    from sonodiff.diffusion import depth_from_sector_mask

    data_dir = Path(data_dir)
    info = read_json(data_dir / "dataset.json")
    probe = info.get("probe", "convex")
    probe = probe.get("type", "convex") if isinstance(probe, dict) else probe
    return depth_from_sector_mask(read_png(data_dir / "sector.png"), probe)
