"""Training, validation and test sets of the segmentation check, one per training source.

Sources (config ``segment.sources``):

- ``real``: prepared rows of split ``train`` train, rows of split ``val`` validate.
- ``synthetic_<variant>``: the samples of that variant (its samples manifest,
  :mod:`sonodiff.contracts.samples`), each synthetic image paired with the
  augmented label map it was sampled from (``label`` column); rows of train-split patients
  train, rows of val-split patients validate (Echo from noise, section 2.2: 8000 + 1000 maps).
- ``real+synthetic_<variant>``: both, concatenated per split.

The test set is always the real test split of the prepared dataset, for every source.
A set is a DataFrame with columns :data:`SET_COLUMNS`; :class:`PngSegmentationSet` reads its
pixels (NumPy arrays: this module needs no torch, so the leakage check and the figures stay light).

The network's classes are the prepared ids, or (a recipe without a sector class,
:mod:`sonodiff.segment.recipes`) the prepared ids with the sector id s merged into background:

    class(i) = 0 (i = s),   i (i < s),   i - 1 (i > s);     id(c) = the i != s with class(i) = c

:class:`LabelClasses` holds both lookups; predictions are mapped back to prepared ids before they
are scored or written, so Dice is always over the prepared structures.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from sonodiff.contracts.manifest import read_manifest
from sonodiff.contracts.samples import read_samples
from sonodiff.errors import InputError
from sonodiff.io import read_png
from sonodiff.segment.sources import parse_source

SET_COLUMNS = ("sample_id", "patient_id", "split", "image", "label", "origin")


def read_prepared(manifest: str | Path) -> pd.DataFrame:
    """Read a prepared dataset's manifest (rows in manifest order: the test set's order) and check
    that no patient is in two splits."""
    df = read_manifest(manifest, required=["sample_id", "patient_id", "split", "image", "label"])
    splits = df.groupby("patient_id")["split"].nunique()
    shared = sorted(splits.index[splits > 1])
    if shared:
        raise InputError(manifest, f"patients in more than one split: {', '.join(shared)}")
    return df


#: Columns of a samples manifest a synthetic source needs.
SAMPLE_COLUMNS = ("sample_id", "image", "label", "patient_id", "split")


def _as_set(df: pd.DataFrame, origin: str) -> pd.DataFrame:
    out = df.loc[:, ["sample_id", "patient_id", "split", "image", "label"]].copy()
    out["origin"] = origin
    return out.reset_index(drop=True)


def build_sets(prepared_manifest: str | Path, source: str,
               samples_manifests: Mapping[str, str | Path] | None = None) -> dict[str, pd.DataFrame]:
    """The ``train``, ``val`` and ``test`` sets of one source (module docstring).

    ``samples_manifests`` maps a variant to its samples manifest. Synthetic rows are assigned to
    train or val by their patient's split in the prepared manifest; a synthetic row whose patient
    is not a train or val patient there is an error naming the patients.
    """
    src = parse_source(source)
    prepared = read_prepared(prepared_manifest)
    patient_split = prepared.groupby("patient_id")["split"].first()
    parts: dict[str, list[pd.DataFrame]] = {"train": [], "val": []}
    if src.real:
        for split in parts:
            parts[split].append(_as_set(prepared[prepared["split"] == split], "real"))
    if src.variant is not None:
        path = (samples_manifests or {}).get(src.variant)
        if path is None:
            raise InputError(f"segment source {source}", f"no samples manifest for variant {src.variant!r}")
        samples = read_samples(path, required=SAMPLE_COLUMNS)
        home = samples["patient_id"].map(patient_split).fillna("unknown")
        bad = sorted(set(samples.loc[~home.isin(["train", "val"]), "patient_id"]))
        if bad:
            raise InputError(path, f"samples of patients that are not train or val patients of "
                                   f"{prepared_manifest}: {', '.join(bad)}")
        samples = samples.assign(split=home.to_numpy())
        for split in parts:
            parts[split].append(_as_set(samples[samples["split"] == split], f"synthetic_{src.variant}"))
    sets = {split: pd.concat(dfs, ignore_index=True) for split, dfs in parts.items()}
    sets["test"] = _as_set(prepared[prepared["split"] == "test"], "real")
    for split, df in sets.items():
        if df.empty:
            raise InputError(prepared_manifest, f"segment source {source}: the {split} set is empty")
    return sets


@dataclass(frozen=True)
class LabelClasses:
    """Lookups between prepared label ids and the network's classes (module docstring):
    ``to_class[id]`` and ``to_id[class]``, both int64."""

    to_class: np.ndarray
    to_id: np.ndarray

    @property
    def network_classes(self) -> int:
        """Output channels of the network (the training classes)."""
        return int(len(self.to_id))


def label_classes(num_ids: int, sector_id: int | None, sector_class: bool) -> LabelClasses:
    """The identity for ``sector_class`` (or a dataset without a sector label), else the sector
    merged into background (module docstring)."""
    ids = np.arange(int(num_ids), dtype=np.int64)
    if sector_class or sector_id is None or not 0 < int(sector_id) < num_ids:
        return LabelClasses(ids, ids.copy())
    kept = ids[ids != int(sector_id)]
    to_class = np.zeros(num_ids, dtype=np.int64)
    to_class[kept] = np.arange(len(kept))
    return LabelClasses(to_class, kept)


def load_label(path: str | Path, num_classes: int) -> np.ndarray:
    """A label PNG of prepared ids as a uint8 (H, W) array; ids must be below ``num_classes``."""
    arr = read_png(path)
    if arr.size and int(arr.max()) >= num_classes:
        raise InputError(path, f"label id {int(arr.max())} outside the {num_classes} prepared classes")
    return arr


def read_pair(image: str | Path, label: str | Path, num_classes: int, img_size: int) -> tuple[np.ndarray, np.ndarray]:
    """One row's uint8 image and label map of prepared ids (:func:`load_label`), each (H, W) and
    checked to be ``img_size`` square."""
    pair = read_png(image), load_label(label, num_classes)
    for path, name, arr in ((image, "image", pair[0]), (label, "label", pair[1])):
        if arr.shape != (img_size, img_size):
            raise InputError(path, f"{name} is {arr.shape}, expected ({img_size}, {img_size})")
    return pair


class PngSegmentationSet:
    """The images and label maps of a set, read from its PNG paths on first use and kept.

    ``set[i]`` is (``image`` float32 (1, H, W) = uint8 / 255 in [0, 1], ``label`` int64 (1, H, W));
    :meth:`batch` stacks rows (B, 1, H, W). Images and labels must both be ``img_size`` square,
    label ids below ``num_classes``.
    """

    def __init__(self, table: pd.DataFrame, num_classes: int, img_size: int):
        self.table = table.reset_index(drop=True)
        self.num_classes = int(num_classes)
        self.img_size = int(img_size)

    def __len__(self) -> int:
        return len(self.table)

    @cached_property
    def pixels(self) -> tuple[np.ndarray, np.ndarray]:
        """uint8 images and label maps (N, H, W) of every row, checked."""
        images, labels = [], []
        for _, row in self.table.iterrows():
            image, label = read_pair(row["image"], row["label"], self.num_classes, self.img_size)
            images.append(image)
            labels.append(label)
        shape = (0, self.img_size, self.img_size)
        return (np.stack(images) if images else np.zeros(shape, np.uint8),
                np.stack(labels) if labels else np.zeros(shape, np.uint8))

    def batch(self, indices: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``indices``: images float32 (B, 1, H, W) in [0, 1] and labels int64 (B, 1, H, W)."""
        images, labels = self.pixels
        idx = np.asarray(indices, dtype=np.int64)
        return images[idx, None].astype(np.float32) / 255.0, labels[idx, None].astype(np.int64)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        image, label = self.batch([i])
        return image[0], label[0]
