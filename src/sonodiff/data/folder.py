"""A user's own folder: images (``image_glob``) and optional label maps (``label_glob``).

Labels are matched to images by file stem, a label stem may end in ``_gt``, ``_mask``,
``_label`` or ``_seg``. Without ``label_glob`` (or with config labels holding only the
background) the dataset is unlabeled: the manifest's label column is empty and the workflow
trains an unconditional model. Patient ids: when the images sit in subfolders of their deepest
common folder, the first subfolder names the patient (``<patient>/<image>.png``); otherwise each
image is its own patient.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from sonodiff.data.readers import find_files, safe_id, stem
from sonodiff.data.units import Unit
from sonodiff.errors import InputError

log = logging.getLogger(__name__)

LABEL_SUFFIX = re.compile(r"_(gt|mask|label|labels|seg)$", re.IGNORECASE)


def list_units(raw: Path, data: dict) -> list[Unit]:
    """One unit per image; patient ids from the folder structure (module docstring)."""
    raw = Path(raw)
    labeled = len(data.get("labels", {})) > 1
    label_glob = data.get("label_glob", "") if labeled else ""
    if labeled and not label_glob:
        raise InputError("config key label_glob", "the labels name structures but label_glob is empty")
    label_files = find_files(raw, [label_glob]) if label_glob else []
    label_set = set(label_files)
    images = [f for f in find_files(raw, [data["image_glob"]]) if f not in label_set]
    if not images:
        raise InputError(raw, f"no images match image_glob {data['image_glob']!r}")
    labels: dict[str, Path] = {}
    for f in label_files:
        key = LABEL_SUFFIX.sub("", stem(f))
        if key in labels:
            raise InputError(f, f"two label maps for image stem {key} (also {labels[key]})")
        labels[key] = f
    base = Path(os.path.commonpath([str(p.parent) for p in images]))
    units: dict[str, Unit] = {}
    used: set[str] = set()
    for image in images:
        rel = image.relative_to(base)
        patient = safe_id(rel.parts[0]) if len(rel.parts) > 1 else safe_id(stem(image))
        key = safe_id("_".join([*rel.parts[:-1], stem(image)]))
        if key in units:
            raise InputError(image, f"sample id {key} appears twice (also {units[key].image})")
        lab = labels.get(stem(image))
        used.add(stem(image))
        if labeled and lab is None:
            log.warning("%s: no label map of the same stem; skipped", image)
            continue
        units[key] = Unit(key=key, patient_id=patient, image=image, labels=(lab,) if lab else ())
    for key in sorted(set(labels) - used):
        log.warning("%s: label map without an image; ignored", labels[key])
    return list(units.values())
