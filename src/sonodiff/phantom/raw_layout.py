"""Writing phantoms in the real datasets' on-disk layouts (CAMUS NIfTI release, SegThy, BUSI, a folder).

CAMUS (current NIfTI release)::

    database_nifti/patientXXXX/patientXXXX_{2CH,4CH}_{ED,ES}.nii.gz     uint8 image (H, W)
    database_nifti/patientXXXX/patientXXXX_{2CH,4CH}_{ED,ES}_gt.nii.gz  uint8 labels 0..3
    database_nifti/patientXXXX/Info_{2CH,4CH}.cfg                       "key: value" lines
    database_split/subgroup_{training,validation,testing}.txt         one patientXXXX per line

SegThy (the volunteer dataset of ``US_data.zip``; read by :mod:`sonodiff.data.segthy`)::

    US_volunteer_dataset/ground_truth_data/US/<id>_US.nii               image volume (uint8)
    US_volunteer_dataset/ground_truth_data/US_thyroid_label/<id>.nii    label volume (uint8, 0..5)

with ``<id> = NNN_P<v>_<sweep>_<side>`` (scan number, volunteer, sweep, side; e.g. ``005_P1_1_left``),
uncompressed ``.nii`` as in the real release. A volunteer has several sweeps (volumes).

BUSI (Al-Dhabyani et al. 2020; read by :mod:`sonodiff.data.busi`)::

    <class>/<class> (N).png         uint8 grey image (H, W), the probe at row 0
    <class>/<class> (N)_mask.png    uint8 lesion mask: 255 inside the lesion, 0 outside (all 0 in normal)

with ``<class>`` one of ``benign``, ``malignant``, ``normal`` and N counting from 1 within a class
(unpadded, as in the release).

Folder (a user's own unlabelled images, the ``folder`` format; image_glob ``*/*.png``)::

    <patient>/frame<k>.png      uint8 grey image (H, W), the probe at row 0

NIfTI files are written by SimpleITK from numpy arrays, so ``sitk.GetArrayFromImage`` returns the
array as written (2-D: (H, W), the probe at row 0); ``.nii.gz`` is gzipped, ``.nii`` is not.
SimpleITK's gzip stream has a zero timestamp, so the same arrays give byte-identical files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

CAMUS_SPLITS = {"train": "training", "val": "validation", "test": "testing"}


def write_nifti(array: np.ndarray, path: Path, spacing_mm: Sequence[float]) -> None:
    """Write ``array`` as NIfTI (gzipped where ``path`` ends in ``.gz``); ``spacing_mm`` is per numpy
    axis (reversed for ITK)."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    image.SetSpacing([float(s) for s in reversed(list(spacing_mm))])
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path), path.name.endswith(".gz"))


def camus_patient_id(index: int) -> str:
    return f"patient{index:04d}"


def camus_image_path(root: Path, patient: str, view: str, phase: str, gt: bool = False) -> Path:
    suffix = "_gt" if gt else ""
    return root / "database_nifti" / patient / f"{patient}_{view}_{phase}{suffix}.nii.gz"


def write_camus_info(root: Path, patient: str, view: str, fields: dict) -> None:
    """``Info_<view>.cfg``: one ``key: value`` line per field, in the order given."""
    path = root / "database_nifti" / patient / f"Info_{view}.cfg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k}: {v}\n" for k, v in fields.items()))


def write_camus_split(root: Path, split: dict[str, list[str]]) -> None:
    """``database_split/subgroup_{training,validation,testing}.txt`` (sorted patient ids)."""
    folder = root / "database_split"
    folder.mkdir(parents=True, exist_ok=True)
    for key, name in CAMUS_SPLITS.items():
        ids = sorted(split.get(key, []))
        (folder / f"subgroup_{name}.txt").write_text("".join(f"{p}\n" for p in ids))


#: Sides of the SegThy sweeps, in the order the phantom's sweeps take them.
SEGTHY_SIDES = ("left", "right")


def segthy_volume_id(volunteer: int, sweep: int, sweeps: int) -> str:
    """Id ``NNN_P<v>_<n>_<side>`` of sweep ``sweep`` (0-based) of volunteer ``volunteer`` (0-based)
    when every volunteer has ``sweeps``: scan ``NNN = volunteer * sweeps + sweep + 1``,
    ``v = volunteer + 1``, sweep number ``n = sweep // 2 + 1`` on the sides of :data:`SEGTHY_SIDES`
    by turns. ``(0, 0, 2) -> 001_P1_1_left``, ``(0, 1, 2) -> 002_P1_1_right``."""
    scan = volunteer * sweeps + sweep + 1
    side = SEGTHY_SIDES[sweep % len(SEGTHY_SIDES)]
    return f"{scan:03d}_P{volunteer + 1}_{sweep // len(SEGTHY_SIDES) + 1}_{side}"


def segthy_paths(root: Path, volume_id: str) -> tuple[Path, Path]:
    """Image and label volume of ``volume_id``: ``.../US/<id>_US.nii``, ``.../US_thyroid_label/<id>.nii``."""
    base = root / "US_volunteer_dataset" / "ground_truth_data"
    return base / "US" / f"{volume_id}_US.nii", base / "US_thyroid_label" / f"{volume_id}.nii"


def busi_paths(root: Path, cls: str, number: int) -> tuple[Path, Path]:
    """Image and mask of image ``number`` (1-based) of class ``cls``: ``<cls>/<cls> (N).png`` and
    ``<cls>/<cls> (N)_mask.png``."""
    folder = Path(root) / cls
    return folder / f"{cls} ({number}).png", folder / f"{cls} ({number})_mask.png"


def folder_image_path(root: Path, patient: str, frame: int, frames: int) -> Path:
    """``<patient>/frame<k>.png``, k zero-padded to the width of ``frames`` (at least 2 digits)."""
    return root / patient / f"frame{frame:0{max(2, len(str(frames)))}d}.png"


def split_patients(ids: Sequence[str], fractions: dict[str, float], rng: np.random.Generator) -> dict[str, list[str]]:
    """Seeded patient-level split: n_s = round(f_s N) (at least 1 where f_s > 0), train takes the rest."""
    ids = list(ids)
    order = [ids[i] for i in rng.permutation(len(ids))]
    n = len(ids)
    counts = {}
    for key in ("val", "test"):
        f = float(fractions.get(key, 0.0))
        counts[key] = max(1, int(round(f * n))) if f > 0 else 0
    while counts["val"] + counts["test"] > n - 1 and (counts["val"] or counts["test"]):
        big = "val" if counts["val"] >= counts["test"] else "test"
        counts[big] -= 1
    out = {"val": order[:counts["val"]], "test": order[counts["val"]:counts["val"] + counts["test"]]}
    out["train"] = order[counts["val"] + counts["test"]:]
    return out
