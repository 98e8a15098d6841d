"""Units of raw data (one image or volume with its label files) and their 2D samples.

Every converter (:mod:`camus`, :mod:`segthy`, :mod:`busi`, :mod:`folder`) lists :class:`Unit`
objects; :func:`load_unit` reads one, checks it and yields its 2D samples (one for a 2D image,
the kept slices of a 3D volume) as uint8 images with raw label values.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np

from sonodiff.data.labels import LabelSpec
from sonodiff.data.outlines import fill_outlines
from sonodiff.data.readers import read_array
from sonodiff.data.slicing import slice_volume
from sonodiff.errors import InputError

log = logging.getLogger(__name__)

#: Values of :attr:`Unit.official_split`; ``train+val`` means "carve a seeded val set out".
OFFICIAL_SPLITS = ("train", "val", "test", "train+val")


@dataclass(frozen=True)
class Unit:
    """One raw image or volume and what the manifest says about it.

    ``labels`` holds one label map, or several binary masks that are merged by OR
    (``merge_masks``, BUSI), or nothing (unlabeled). ``fill_outlines``: the label map holds
    contours, filled into regions when read (:mod:`sonodiff.data.outlines`; folder format).
    """

    key: str
    patient_id: str
    image: Path
    labels: tuple[Path, ...] = ()
    merge_masks: bool = False
    fill_outlines: bool = False
    view: str = ""
    phase: str = ""
    official_split: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Sample:
    """One 2D sample: uint8 image and raw label values (or None)."""

    sample_id: str
    unit: Unit
    slice_index: int | None
    image: np.ndarray
    label: np.ndarray | None


def scale_to_uint8(arr: np.ndarray, where: str | Path) -> np.ndarray:
    """Raw intensities to uint8: kept when already in 0..255 integers, else min-max scaled.

    Scaling: ``u = round(255 (x - min) / (max - min))`` over the whole image or volume (so the
    slices of one volume share one scale). A constant image is an error (empty).
    """
    lo, hi = arr.min(), arr.max()
    if hi == lo:
        raise InputError(where, f"empty image (every voxel is {lo})")
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.integer) and lo >= 0 and hi <= 255:
        return arr.astype(np.uint8)
    scaled = (arr.astype(np.float32) - np.float32(lo)) * np.float32(255.0 / (float(hi) - float(lo)))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _read_label(unit: Unit, spec: LabelSpec, shape: tuple[int, ...]) -> np.ndarray | None:
    if not unit.labels:
        return None
    maps = []
    for path in unit.labels:
        lab = read_array(path)
        if lab.shape != shape:
            raise InputError(path, f"label shape {lab.shape} differs from image shape {shape} ({unit.image})")
        maps.append((path, lab))
    if unit.merge_masks:
        merged = np.zeros(shape, dtype=bool)
        for _, mask in maps:
            top = float(mask.max())
            if top > 0:
                merged |= mask > top / 2.0
        return spec.check(merged.astype(np.int64), unit.labels[0])
    path, lab = maps[0]
    if unit.fill_outlines:
        lab = fill_outlines(lab, path)
    return spec.check(lab, path)


def load_unit(unit: Unit, spec: LabelSpec, data: Mapping) -> Iterator[Sample]:
    """Read, check and slice one unit; yield its 2D samples.

    ``data`` is the dataset's config entry (``slice_axis``, ``required_label``,
    ``min_label_pixels``). Raises :class:`InputError` naming the file for unreadable, empty or
    NaN images, shape mismatches and unexpected label values.
    """
    image = read_array(unit.image)
    if image.ndim not in (2, 3):
        raise InputError(unit.image, f"expected a 2D image or a 3D volume, got shape {image.shape}")
    label = _read_label(unit, spec, image.shape)
    image8 = scale_to_uint8(image, unit.image)
    if image.ndim == 2:
        yield Sample(unit.key, unit, None, image8, label)
        return
    required = spec.raw_values(data["required_label"]) if data.get("required_label") and label is not None else ()
    kept = 0
    for index, img, lab in slice_volume(image8, label, int(data.get("slice_axis", 2)), required,
                                        int(data.get("min_label_pixels", 1))):
        kept += 1
        yield Sample(f"{unit.key}_s{index:04d}", unit, index, img, lab)
    if not kept:
        log.warning("%s: no slice kept (required label %s, min_label_pixels %s)",
                    unit.image, data.get("required_label"), data.get("min_label_pixels"))
