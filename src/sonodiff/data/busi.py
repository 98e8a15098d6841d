"""BUSI (Al-Dhabyani et al. 2020): breast ultrasound, ``{benign,malignant,normal}/<name> (N).png``.

Masks are ``<name> (N)_mask.png``, with more lesions in ``_mask_1.png``, ``_mask_2.png``...;
they are merged by OR into one lesion label (raw value 1; config labels
``{background: 0, lesion: 1}``). The class is kept in the manifest's ``class`` column. BUSI
gives no patient ids: each image is its own patient, and the seeded split is stratified by class.

BUSI holds duplicates: ``benign (433)`` and ``malignant (145)`` have identical pixels, and about a
dozen pairs are one scan re-cropped (e.g. ``benign (42)``/``malignant (51)``, ``benign (284)``/
``benign (285)``). :mod:`sonodiff.data.duplicates` finds them at prepare time and puts each such
group of images in one split; a group whose classes differ is reported.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from sonodiff.data.readers import find_dirs, safe_id
from sonodiff.data.units import Unit
from sonodiff.errors import InputError

log = logging.getLogger(__name__)

CLASSES = ("benign", "malignant", "normal")
NAME = re.compile(r"^(?P<name>.+?) \((?P<n>\d+)\)(?P<mask>_mask(?:_\d+)?)?\.png$", re.IGNORECASE)


def _class_units(folder: Path, cls: str) -> list[Unit]:
    images: dict[tuple[str, int], Path] = {}
    masks: dict[tuple[str, int], list[Path]] = {}
    for f in sorted(folder.iterdir()):
        if not f.is_file() or f.name.startswith("."):
            continue
        m = NAME.match(f.name)
        if not m:
            log.warning("%s: not a BUSI file name; ignored", f)
            continue
        key = (m["name"], int(m["n"]))
        if m["mask"]:
            masks.setdefault(key, []).append(f)
        else:
            images[key] = f
    for key, files in masks.items():
        if key not in images:
            raise InputError(files[0], "mask without its image")
    units = []
    for (name, n), image in sorted(images.items()):
        if (name, n) not in masks:
            raise InputError(image, f"no mask ({name} ({n})_mask.png)")
        sid = safe_id(f"{cls}_{n}" if name.lower() == cls else f"{cls}_{name}_{n}")
        units.append(Unit(key=sid, patient_id=sid, image=image, labels=tuple(sorted(masks[(name, n)])),
                          merge_masks=True, extra={"class": cls}))
    return units


def list_units(raw: Path, data: dict) -> list[Unit]:
    """Units of a BUSI tree, one per image, masks merged by OR."""
    raw = Path(raw)
    units = []
    for cls in CLASSES:
        folders = find_dirs(raw, cls)
        if len(folders) > 1:
            raise InputError(raw, f"several {cls}/ folders: {', '.join(map(str, folders))}")
        if folders:
            units.extend(_class_units(folders[0], cls))
    if not units:
        raise InputError(raw, "no BUSI images ({benign,malignant,normal}/<name> (N).png)")
    return units
