"""The prepared dataset: what the data stage writes and every later stage reads.

A prepared dataset is a folder holding

- ``manifest.csv``: one row per 2D sample (:data:`DATASET_COLUMNS`, then format-specific
  columns such as BUSI's ``class``), paths relative to the manifest's folder; ``duplicate_group``
  names the group (``dup001``...) of patients linked by duplicate images, empty when none: the
  patients of a group share one split unless an official split says otherwise;
- ``images/<sample_id>.png`` (uint8 grey, ``img_size`` square) and, for labelled datasets,
  ``labels/<sample_id>.png`` (prepared ids: background 0, structures 1..K, sector K+1);
- ``sector.png``: the dataset's imaging sector (255 inside);
- ``dataset.json``: name, format, img_size, labels (name -> id), structures, sector_id, probe
  (``{"type": "convex" | "linear"}``), counts per split, and ``duplicates``: ``settings``,
  ``counts`` (``groups``, ``patients``, ``images``, ``exact_pairs``, ``near_pairs``, ``conflicts``,
  ``groups_across_splits``) and ``groups`` (``group``, ``patients``, ``splits``, ``pairs`` of sample
  ids with ``kind`` exact/near and ``similarity``, ``conflicts``: classes or labels that differ).

Readers take the three files explicitly (as rules declare them); :meth:`PreparedDataset.in_dir`
finds them in a folder for the CLI and tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import numpy as np
import pandas as pd

from sonodiff.contracts import layout
from sonodiff.contracts.manifest import read_manifest, write_manifest
from sonodiff.errors import InputError
from sonodiff.io import read_json, read_png, read_pngs, stack_images, write_json, write_png

if TYPE_CHECKING:  # the engine (torch) is imported by the methods that need it
    from sonodiff.diffusion.depth import Probe

#: Columns of a prepared dataset's manifest, in order.
DATASET_COLUMNS = (
    "sample_id", "patient_id", "split", "view", "phase", "slice_index",
    "image", "label", "source_file", "duplicate_group",
)
SPLITS = ("train", "val", "test")


def parse_probe(value: Any, where: str | Path = "dataset.json") -> Probe:
    """The probe geometry of a ``dataset.json`` (``{"type": ...}``) or a config (a plain name)."""
    from sonodiff.diffusion.depth import Probe

    name = value.get("type", Probe.CONVEX.value) if isinstance(value, Mapping) else (value or Probe.CONVEX.value)
    try:
        return Probe(str(name))
    except ValueError:
        raise InputError(where, f"probe {name!r} is not one of {[p.value for p in Probe]}") from None


def read_dataset_info(path: str | Path) -> dict:
    """A prepared dataset's description (``dataset.json``) alone, for a job that needs nothing else."""
    if not Path(path).is_file():
        raise InputError(path, "dataset description not found")
    return read_json(path)


def read_sector(path: str | Path) -> np.ndarray:
    """A sector mask file as a (H, W) bool array: ``sector.png`` > 127 (255 inside, 0 outside)."""
    return read_png(path) > 127


@dataclass(frozen=True)
class PreparedDataset:
    """The files of one prepared dataset (paths as the rule declared them)."""

    manifest: Path
    info_path: Path
    sector_path: Path

    def __init__(self, manifest: str | Path, info: str | Path, sector: str | Path):
        object.__setattr__(self, "manifest", Path(manifest))
        object.__setattr__(self, "info_path", Path(info))
        object.__setattr__(self, "sector_path", Path(sector))

    @classmethod
    def in_dir(cls, folder: str | Path) -> "PreparedDataset":
        folder = Path(folder)
        return cls(folder / layout.MANIFEST, folder / layout.DATASET_INFO, folder / layout.SECTOR)

    @property
    def folder(self) -> Path:
        return self.manifest.parent

    # ---------------------------------------------------------------- dataset.json
    @cached_property
    def info(self) -> dict:
        return read_dataset_info(self.info_path)

    @property
    def img_size(self) -> int:
        return int(self.info["img_size"])

    @property
    def labels(self) -> dict[str, int]:
        """Prepared label names -> ids (background and sector included)."""
        return {str(k): int(v) for k, v in self.info.get("labels", {}).items()}

    @property
    def label_names(self) -> dict[int, str]:
        """Ids -> names of every label but background 0 (the sector included)."""
        return {v: k for k, v in self.labels.items() if v != 0}

    @property
    def has_labels(self) -> bool:
        return bool(self.info.get("structures"))

    @property
    def num_classes(self) -> int | None:
        """Label ids of the dataset (``max id + 1``), or None when it has no structures."""
        return max(self.labels.values()) + 1 if self.has_labels else None

    @property
    def sector_id(self) -> int | None:
        value = self.info.get("sector_id")
        return None if value is None else int(value)

    @property
    def probe(self) -> Probe:
        return parse_probe(self.info.get("probe"), self.info_path)

    # ---------------------------------------------------------------- manifest and pixels
    def rows(self, split: str | None = None, required: Iterable[str] = ("sample_id", "split", "image")) -> pd.DataFrame:
        """Manifest rows (of ``split`` when given), sorted by ``sample_id``; paths absolute."""
        df = read_manifest(self.manifest, required=required)
        if split is not None:
            df = df[df["split"] == split]
        return df.sort_values("sample_id").reset_index(drop=True)

    def sector(self) -> np.ndarray:
        """The sector mask (H, W) as bool (:func:`read_sector`)."""
        return read_sector(self.sector_path)

    def depth_map(self):
        """The B-map depth map d(p) (H, W) in [0, 1], torch float32: from the sector mask and the
        probe (:func:`sonodiff.diffusion.depth.depth_from_sector_mask`)."""
        from sonodiff.diffusion.depth import depth_from_sector_mask

        return depth_from_sector_mask(read_png(self.sector_path), self.probe)

    def images(self, rows: pd.DataFrame) -> np.ndarray:
        """uint8 (N, H, W) images of manifest ``rows``."""
        return read_pngs(list(rows["image"]), self.manifest)

    def label_maps(self, rows: pd.DataFrame) -> np.ndarray:
        """uint8 (N, H, W) label maps of manifest ``rows``, checked against the dataset's ids."""
        self._require_labels(rows)
        return self._check_ids(read_pngs(list(rows["label"]), self.manifest))

    def pairs(self, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """uint8 (N, H, W) images and label maps of manifest ``rows``, read pair by pair: each map
        must have its image's size (:func:`read_pair`) and the dataset's ids."""
        self._require_labels(rows)
        pairs = [read_pair(image, label) for image, label in zip(rows["image"], rows["label"])]
        return (stack_images([p[0] for p in pairs], self.manifest),
                self._check_ids(stack_images([p[1] for p in pairs], self.manifest)))

    def _require_labels(self, rows: pd.DataFrame) -> None:
        if not self.has_labels or (rows["label"] == "").any():
            raise InputError(self.manifest, "the dataset has no label maps")

    def _check_ids(self, maps: np.ndarray) -> np.ndarray:
        if maps.size and int(maps.max()) >= int(self.num_classes):
            raise InputError(self.manifest, f"label id {int(maps.max())} >= number of labels {self.num_classes}")
        return maps


def read_pair(image: str | Path, label: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """An image and its label map as uint8 (H, W) arrays (:func:`check_pair`)."""
    pixels, ids = read_png(image), read_png(label)
    check_pair(image, pixels, label, ids)
    return pixels, ids


def check_pair(image_path: str | Path, image: np.ndarray, label_path: str | Path, label: np.ndarray) -> None:
    """A label map must have the size of its image: else an error naming both files and sizes."""
    if image.shape != label.shape:
        raise InputError(label_path, f"label map of {_size(label)} pixels, but its image {image_path} "
                                     f"has {_size(image)} (height x width)")


def _size(a: np.ndarray) -> str:
    return "x".join(str(n) for n in a.shape)


# -------------------------------------------------------------------- writers (data stage)

def image_path(folder: str | Path, sample_id: str) -> Path:
    return Path(folder) / layout.IMAGES / f"{sample_id}.png"


def label_path(folder: str | Path, sample_id: str) -> Path:
    return Path(folder) / layout.LABELS / f"{sample_id}.png"


def pixel_entries(labelled: bool) -> list[str]:
    """The pixel folders and the sector mask of a prepared dataset (installed whole by the writer)."""
    return [layout.IMAGES, layout.SECTOR] + ([layout.LABELS] if labelled else [])


def write_sector(folder: str | Path, sector: np.ndarray) -> Path:
    return write_png(Path(folder) / layout.SECTOR, np.asarray(sector, bool).astype(np.uint8) * 255)


def write_dataset(manifest: str | Path, info: str | Path, rows: pd.DataFrame, description: Mapping) -> None:
    """Write the manifest, then ``dataset.json`` (last: a reader never sees one without the other's files)."""
    write_manifest(rows, manifest)
    write_json(info, dict(description))


def remove_dataset_records(folder: str | Path, names: Iterable[str] = (layout.MANIFEST, layout.DATASET_INFO)) -> None:
    """Delete a stale manifest and description (``names`` in ``folder``) before new pixels are installed."""
    for name in names:
        (Path(folder) / name).unlink(missing_ok=True)
