"""SegThy-like 3D datasets (Kroenke et al. 2022): image and label volumes matched by file stem.

Image volumes are the files matching ``image_glob`` (default ``**/data/*.nii*``), label volumes
those matching ``label_glob`` (default ``**/ground_truth_data/*.nii*``); an image and its labels
share a stem (``P01.nii.gz``). One volume per patient: the stem is the patient id. Volumes are
sliced along ``slice_axis`` (of the array ``sitk.GetArrayFromImage`` gives) by :func:`sonodiff.data.units.load_unit`; raw label values are checked
against the config (SegThy: 0 background, 1 thyroid, 2/4 carotid, 3/5 jugular).
"""

from __future__ import annotations

import logging
from pathlib import Path

from sonodiff.data.readers import find_files, safe_id, stem
from sonodiff.data.units import Unit
from sonodiff.errors import InputError

log = logging.getLogger(__name__)


def by_stem(files: list[Path]) -> dict[str, Path]:
    """Files by stem; a stem found twice is an error naming both files."""
    out: dict[str, Path] = {}
    for f in files:
        key = stem(f)
        if key in out:
            raise InputError(f, f"patient id {key} appears twice (also {out[key]})")
        out[key] = f
    return out


def list_units(raw: Path, data: dict) -> list[Unit]:
    """One unit per image volume, with the label volume of the same stem."""
    raw = Path(raw)
    label_files = find_files(raw, [data.get("label_glob", "")]) if data.get("label_glob") else []
    label_set = set(label_files)
    images = by_stem([f for f in find_files(raw, [data["image_glob"]]) if f not in label_set])
    labels = by_stem(label_files)
    if not images:
        raise InputError(raw, f"no image volumes match image_glob {data['image_glob']!r}")
    for key, path in labels.items():
        if key not in images:
            raise InputError(path, "label volume without an image volume of the same stem")
    units = []
    for key, path in images.items():
        lab = labels.get(key)
        if lab is None and label_files:
            log.warning("%s: no label volume of the same stem; skipped", path)
            continue
        units.append(Unit(key=safe_id(key), patient_id=safe_id(key), image=path,
                          labels=(lab,) if lab else ()))
    return units
