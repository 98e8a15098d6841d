"""BUSI (Al-Dhabyani et al. 2020): breast ultrasound, ``{benign,malignant,normal}/<name> (N).png``.

Masks are ``<name> (N)_mask.png``, with more lesions in ``_mask_1.png``, ``_mask_2.png``...;
the masks of one image (spelled exactly as its ``<name> (N)``) are merged by OR into one lesion
label (raw value 1; config labels ``{background: 0, lesion: 1}``). The class is kept in the
manifest's ``class`` column. BUSI gives no patient ids: each image is its own patient, and the
seeded split is stratified by class.

Refused, naming the files: two images of one name and number (``benign (01).png`` beside
``benign (1).png``), two masks of one image and index (``_mask_01`` beside ``_mask_1``), a mask
without its image (also one spelled ``benign (01)_mask.png`` for ``benign (1).png``), an image
without a mask.

BUSI holds duplicates: ``benign (433)`` and ``malignant (145)`` have identical pixels, and about a
dozen pairs are one scan re-cropped (e.g. ``benign (42)``/``malignant (51)``, ``benign (284)``/
``benign (285)``). :mod:`sonodiff.data.duplicates` finds them at prepare time and puts each such
group of images in one split; a group whose classes differ is reported.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from sonodiff.data.readers import find_dirs, index_files, pair_files, safe_id
from sonodiff.data.units import Unit
from sonodiff.errors import InputError

log = logging.getLogger(__name__)

CLASSES = ("benign", "malignant", "normal")
NAME = re.compile(r"^(?P<name>.+?) \((?P<n>\d+)\)(?P<mask>_mask(?:_\d+)?)?\.png$", re.IGNORECASE)


def _class_units(folder: Path, cls: str) -> list[Unit]:
    """The units of one class folder. Identities: an image is its name and number (``benign (01)``
    and ``benign (1)`` are one image: refused, naming both); a mask belongs to the image whose
    ``<name> (N)`` it spells exactly, and is that image's ``_mask`` or ``_mask_K`` (K once)."""
    images, masks = [], []
    for f in sorted(folder.iterdir()):
        if not f.is_file() or f.name.startswith("."):
            continue
        m = NAME.match(f.name)
        if not m:
            log.warning("%s: not a BUSI file name; ignored", f)
            continue
        (masks if m["mask"] else images).append(f)

    numbered = index_files(images, lambda f: (_parts(f)["name"].casefold(), int(_parts(f)["n"])), "image number",
                           lambda key: f"{key[0]} ({key[1]})")
    index_files(masks, lambda f: (_spelled(_parts(f)), _mask_index(_parts(f)["mask"])), "mask",
                lambda key: f"{key[0]}{'_mask' if key[1] < 0 else f'_mask_{key[1]}'}")
    pairs = pair_files({f: (_spelled(_parts(f)),) for f in images}, {f: (_spelled(_parts(f)),) for f in masks},
                       lambda f: f"mask without its image {_spelled(_parts(f))}.png", several=True, what="mask")
    units = []
    for (_, n), image in sorted(numbered.items()):
        if image not in pairs:
            raise InputError(image, f"no mask ({_spelled(_parts(image))}_mask.png)")
        name = _parts(image)["name"]
        sid = safe_id(f"{cls}_{n}" if name.lower() == cls else f"{cls}_{name}_{n}")
        units.append(Unit(key=sid, patient_id=sid, image=image, labels=pairs[image],
                          merge_masks=True, extra={"class": cls}))
    return units


def _parts(f: Path) -> re.Match:
    return NAME.match(f.name)


def _spelled(m: re.Match) -> str:
    """``<name> (N)`` as the file spells it: a mask pairs with the image of exactly this stem."""
    return f"{m['name']} ({m['n']})"


def _mask_index(suffix: str) -> int:
    """``_mask`` -> -1, ``_mask_K`` -> K (``_mask_01`` and ``_mask_1`` are one mask)."""
    return -1 if suffix.lower() == "_mask" else int(suffix.rsplit("_", 1)[1])


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
