"""CAMUS (Leclerc et al. 2019): 2D apical views, both public releases.

- NIfTI release: ``database_nifti/patientXXXX/patientXXXX_{2CH,4CH}_{ED,ES}.nii.gz`` with
  ``..._gt.nii.gz``, and ``database_split/subgroup_{training,validation,testing}.txt`` (one
  patient per line), read from the files.
- 2019 release: ``training/patientXXXX/*.mhd`` (+ ``.raw``) and ``testing/...``, same stems;
  official split training (train + a seeded val carve-out) and testing.

Labels: 0 background, 1 LV cavity, 2 myocardium, 3 left atrium. Images are read with the probe
at row 0. Sequences (``_sequence``, ``_half_sequence``) are not used.

Checks (each a one-line :class:`~sonodiff.errors.InputError` naming the file):

- split files (read where ``official_split`` is on): every patient id in one file only, every
  patient with images in a file, every id of a file a patient with images (the error names the
  file, the first missing ids and their count);
- ground truth: a labelled dataset needs the ``_gt`` of every image, in every split of the NIfTI
  release and in the 2019 release's ``training/``; the 2019 ``testing/`` ships none, so its
  images without one are skipped (by :func:`sonodiff.data.prepare.list_dataset`, one warning);
- a ``_gt`` without its image, two files of one stem (``.nii.gz`` beside ``.mhd``), a patient
  id found twice, no CAMUS layout at all.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from sonodiff.data.readers import find_dirs, index_files
from sonodiff.data.split import check_split_lists
from sonodiff.data.units import Unit
from sonodiff.errors import InputError

log = logging.getLogger(__name__)

VIEWS = ("2CH", "4CH")
PHASES = ("ED", "ES")
SUBGROUPS = {"training": "train", "validation": "val", "testing": "test"}
PATIENT = re.compile(r"^patient\d+$")
SUFFIXES = (".nii.gz", ".nii", ".mhd")


def _one_dir(raw: Path, name: str) -> Path | None:
    found = find_dirs(raw, name)
    if len(found) > 1:
        raise InputError(raw, f"several {name}/ folders: {', '.join(map(str, found))}")
    return found[0] if found else None


def _find(folder: Path, stem: str) -> Path | None:
    """The file ``<stem>.nii.gz``, ``.nii`` or ``.mhd`` in ``folder``; two of them are an error naming both."""
    files = [p for p in (folder / f"{stem}{suffix}" for suffix in SUFFIXES) if p.is_file()]
    return index_files(files, lambda p: stem, "stem").get(stem)


def _patient_units(folder: Path, official: str | None, needs_gt: bool) -> list[Unit]:
    """The units of one patient folder; ``needs_gt``: a missing ``_gt`` is an error naming it."""
    pid = folder.name
    units = []
    for view in VIEWS:
        for phase in PHASES:
            stem = f"{pid}_{view}_{phase}"
            image, gt = _find(folder, stem), _find(folder, f"{stem}_gt")
            if image is None:
                if gt is not None:
                    raise InputError(gt, f"label map without its image {stem}.*")
                continue
            if gt is None and needs_gt:
                raise InputError(folder / f"{stem}_gt{image.name[len(stem):]}",
                                 f"ground truth of {image.name} not found; a labelled dataset needs "
                                 f"it (split {official or 'seeded'})")
            units.append(Unit(key=stem, patient_id=pid, image=image,
                              labels=(gt,) if gt is not None else (), view=view, phase=phase,
                              official_split=official))
    if not units:
        log.warning("%s: no %s_{2CH,4CH}_{ED,ES} images", folder, pid)
    return units


def _patients(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and PATIENT.match(p.name))


def read_subgroups(split_dir: Path) -> dict[str, str]:
    """Patient -> split from ``subgroup_{training,validation,testing}.txt``."""
    out: dict[str, str] = {}
    where: dict[str, Path] = {}
    for group, split in SUBGROUPS.items():
        path = split_dir / f"subgroup_{group}.txt"
        if not path.is_file():
            raise InputError(path, "split file not found")
        for line in path.read_text().splitlines():
            pid = line.strip()
            if not pid:
                continue
            if pid in out:
                raise InputError(path, f"patient id {pid} appears twice (also in {where[pid].name})")
            out[pid], where[pid] = split, path
    return out


def check_subgroups(groups: dict[str, str], split_dir: Path, present: set[str], nifti: Path) -> None:
    """Every id of the split files is a patient with images in ``nifti`` and every such patient is
    in a split file; else an error naming the split file (or folder), the first missing ids and
    their count (:func:`sonodiff.data.split.check_split_lists`)."""
    lists = {split_dir / f"subgroup_{group}.txt": [pid for pid, s in groups.items() if s == split]
             for group, split in SUBGROUPS.items()}
    check_split_lists(lists, present, str(nifti))


def _nifti_units(nifti: Path, raw: Path, official_split: bool, needs_gt: bool) -> list[Unit]:
    split_dir = _one_dir(raw, "database_split")
    groups = read_subgroups(split_dir) if (official_split and split_dir is not None) else None
    if official_split and split_dir is None:
        log.warning("%s: no database_split/ folder; using a seeded split", raw)
    units = []
    for folder in _patients(nifti):
        units.extend(_patient_units(folder, groups.get(folder.name) if groups is not None else None, needs_gt))
    if groups is not None:
        check_subgroups(groups, split_dir, {u.patient_id for u in units}, nifti)
    return units


def _release2019_units(training: Path | None, testing: Path | None, needs_gt: bool) -> list[Unit]:
    """Units of ``training/`` (``_gt`` needed in a labelled dataset) and ``testing/`` (no ``_gt``
    in the release: images without one are kept unlabelled, then skipped if labelled)."""
    seen: dict[str, Path] = {}
    units = []
    for folder_root, official in ((training, "train+val"), (testing, "test")):
        if folder_root is None:
            continue
        for folder in _patients(folder_root):
            if folder.name in seen:
                raise InputError(folder, f"patient id {folder.name} appears twice (also {seen[folder.name]})")
            seen[folder.name] = folder
            units.extend(_patient_units(folder, official, needs_gt and official != "test"))
    return units


def list_units(raw: Path, data: dict) -> list[Unit]:
    """Units of a CAMUS tree (either release), with the official split where asked for."""
    raw = Path(raw)
    official = bool(data.get("official_split", True))
    labeled = len(data.get("labels", {})) > 1
    nifti = _one_dir(raw, "database_nifti")
    if nifti is not None:
        units = _nifti_units(nifti, raw, official, labeled)
    else:
        training, testing = _one_dir(raw, "training"), _one_dir(raw, "testing")
        if training is None and testing is None:
            raise InputError(raw, "no CAMUS layout (database_nifti/, or training/ and testing/)")
        units = _release2019_units(training, testing, labeled)
    if not official:
        units = [Unit(**{**u.__dict__, "official_split": None}) for u in units]
    return units
