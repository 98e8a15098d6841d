"""Simulate whole phantom datasets and write them in the real datasets' layouts.

Every random draw comes from ``numpy.random.default_rng([seed, stream, ...])`` keyed by what it is
for (anatomy of patient p, speckle of image (p, view, phase) or of slice k of sweep s (p, s, k),
the split, the breast phantom's classes of patients 3b..3b+2), so the same seed gives the same files whatever the mode, size or order of simulation,
and one patient's anatomy does not change when more patients are asked for.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Mapping

import numpy as np
from tqdm import tqdm

from sonodiff.errors import InputError
from sonodiff.io import atomic_dir, write_png
from sonodiff.phantom import breast, cardiac, liver, neck, raw_layout
from sonodiff.phantom.bmode import Physics, Simulator
from sonodiff.phantom.probe import ABDOMEN, BREAST, CARDIAC, NECK, Transducer

log = logging.getLogger(__name__)

ANATOMY, SPECKLE, SPLIT, CLASS = 0, 1, 2, 3
DEFAULT_FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}


def _provenance(root: Path, phantom: str, transducer: Transducer, physics: Physics, settings: Mapping) -> None:
    """``phantom.json``: what was simulated and how (no timestamps, so it is reproducible); the
    transducer is stored under ``probe``."""
    info = {"phantom": phantom, "settings": dict(settings), "probe": dataclasses.asdict(transducer),
            "physics": dataclasses.asdict(physics)}
    (root / "phantom.json").write_text(json.dumps(info, indent=2, sort_keys=True, default=float) + "\n")


def simulate_camus(root: str | Path, patients: int, mode: str = "fast", size: int = 64, seed: int = 0,
                   fractions: Mapping[str, float] = DEFAULT_FRACTIONS, transducer: Transducer = CARDIAC,
                   physics: Physics = cardiac.PHYSICS, progress: bool = True) -> dict[str, list[str]]:
    """Write a CAMUS-layout phantom (2 views x 2 phases per patient) into ``root``; return the split."""
    root = Path(root)
    sim = Simulator(transducer, mode, size, physics)
    x, z = transducer.image_points(size)
    sector = transducer.sector_mask(size)
    spacing = transducer.image_spacing(size)[::-1]   # numpy axes: (row, column)
    ids = [raw_layout.camus_patient_id(i + 1) for i in range(patients)]
    jobs = [(p, v, ph) for p in range(patients) for v in cardiac.VIEWS for ph in cardiac.PHASES]
    drawn: dict[int, cardiac.CardiacPatient] = {}
    for p, view, phase in tqdm(jobs, desc="phantom_camus", unit="img", disable=not progress):
        if p not in drawn:
            drawn[p] = cardiac.draw_patient(np.random.default_rng([seed, ANATOMY, p]))
        patient = drawn[p]
        scene = cardiac.scene(patient, view, phase)
        rng = np.random.default_rng([seed, SPECKLE, p, cardiac.VIEWS.index(view), cardiac.PHASES.index(phase)])
        image = sim.image(scene, rng, cardiac.QUALITY_NOISE_DB[patient.quality])
        labels = scene.labels(x, z)
        labels[~sector] = 0
        raw_layout.write_nifti(image, raw_layout.camus_image_path(root, ids[p], view, phase), spacing)
        raw_layout.write_nifti(labels.astype(np.uint8), raw_layout.camus_image_path(root, ids[p], view, phase, gt=True), spacing)
        if phase == cardiac.PHASES[-1]:
            raw_layout.write_camus_info(root, ids[p], view, {
                "ED": 1, "ES": patient.es_frame, "NbFrame": patient.nb_frame, "Sex": patient.sex,
                "Age": patient.age, "ImageQuality": patient.quality, "EF": patient.ef,
                "FrameRate": patient.frame_rate})
            if view == cardiac.VIEWS[-1]:
                drawn.pop(p)
    split = raw_layout.split_patients(ids, fractions, np.random.default_rng([seed, SPLIT]))
    raw_layout.write_camus_split(root, split)
    _provenance(root, "camus", transducer, physics, {"patients": patients, "mode": mode, "size": size, "seed": seed})
    return split


def simulate_segthy(root: str | Path, patients: int, mode: str = "fast", size: int = 64, slices: int = 8,
                    seed: int = 0, slice_axis: int = 2, sweeps: int = 2, transducer: Transducer = NECK,
                    physics: Physics = neck.PHYSICS, progress: bool = True) -> list[str]:
    """Write a SegThy-layout phantom into ``root``: ``patients`` volunteers with ``sweeps`` image and
    label volumes each; return the volume ids (``001_P1_1_left`` ...).

    Volume ``(p, s)`` is named by :func:`raw_layout.segthy_volume_id` (the side is a name only). The
    sweeps of one volunteer image the same neck (one anatomy draw) in interleaved planes
    (:func:`sonodiff.phantom.neck.sweep_positions`), each with its own speckle.
    Each volume stacks ``slices`` 2-D B-mode images (size x size, probe at row 0) along
    ``slice_axis``: slicing the array returned by ``sitk.GetArrayFromImage`` along that axis gives
    the 2-D images back, with the probe at row 0.
    """
    if slice_axis not in (0, 1, 2):
        raise InputError("config key slice_axis", f"must be 0, 1 or 2, not {slice_axis}")
    if sweeps < 1:
        raise InputError("config key source.simulate.sweeps", f"must be at least 1, not {sweeps}")
    root = Path(root)
    sim = Simulator(transducer, mode, size, physics)
    x, z = transducer.image_points(size)
    col_mm, row_mm = transducer.image_spacing(size)
    ids = []
    bar = tqdm(total=patients * sweeps * slices, desc="phantom_segthy", unit="img", disable=not progress)
    for p in range(patients):
        patient = neck.draw_patient(np.random.default_rng([seed, ANATOMY, p]))
        for s in range(sweeps):
            ys = neck.sweep_positions(patient, slices, s, sweeps)
            images, labels = [], []
            for k, y in enumerate(ys):
                scene = neck.scene(patient, float(y))
                rng = np.random.default_rng([seed, SPECKLE, p, s, k])
                images.append(sim.image(scene, rng))
                labels.append(scene.labels(x, z).astype(np.uint8))
                bar.update()
            step_mm = float(ys[1] - ys[0]) * 1e3 if slices > 1 else 1.0
            spacing = [row_mm, col_mm]
            spacing.insert(slice_axis, step_mm)
            volume_id = raw_layout.segthy_volume_id(p, s, sweeps)
            image_path, label_path = raw_layout.segthy_paths(root, volume_id)
            raw_layout.write_nifti(np.moveaxis(np.stack(images), 0, slice_axis), image_path, spacing)
            raw_layout.write_nifti(np.moveaxis(np.stack(labels), 0, slice_axis), label_path, spacing)
            ids.append(volume_id)
    bar.close()
    _provenance(root, "segthy", transducer, physics, {"patients": patients, "sweeps": sweeps, "mode": mode,
                                                      "size": size, "slices": slices, "seed": seed,
                                                      "slice_axis": slice_axis})
    return ids


def simulate_liver(root: str | Path, patients: int, mode: str = "fast", size: int = 64, frames: int = 4,
                   seed: int = 0, transducer: Transducer = ABDOMEN, physics: Physics = liver.PHYSICS,
                   progress: bool = True) -> list[str]:
    """Write an unlabelled liver phantom in the ``folder`` layout: ``<patient>/frame<k>.png``.

    Each patient gets ``frames`` images, parallel planes of one sweep through the same liver
    (:func:`sonodiff.phantom.liver.frame_positions`), each ``size`` x ``size`` with the convex fan
    (0 outside it). No label maps. Returns the patient ids (``patient01`` ...).
    """
    root = Path(root)
    sim = Simulator(transducer, mode, size, physics)
    width = max(2, len(str(patients)))
    names = [f"patient{i + 1:0{width}d}" for i in range(patients)]
    bar = tqdm(total=patients * frames, desc="phantom_liver", unit="img", disable=not progress)
    for p, name in enumerate(names):
        patient = liver.draw_patient(np.random.default_rng([seed, ANATOMY, p]), transducer)
        noise_db = liver.HABITUS_NOISE_DB[patient.habitus]
        for k, y in enumerate(liver.frame_positions(patient, frames)):
            rng = np.random.default_rng([seed, SPECKLE, p, k])
            image = sim.image(liver.scene(patient, float(y), transducer), rng, noise_db)
            path = raw_layout.folder_image_path(root, name, k, frames)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_png(path, image)
            bar.update()
    bar.close()
    _provenance(root, "liver", transducer, physics, {"patients": patients, "mode": mode, "size": size,
                                                     "slices": frames, "seed": seed})
    return names


def simulate_busi(root: str | Path, patients: int, mode: str = "fast", size: int = 64, seed: int = 0,
                  transducer: Transducer = BREAST, physics: Physics = breast.PHYSICS,
                  progress: bool = True) -> list[str]:
    """Write a BUSI-layout breast phantom into ``root``: one image per patient, ``<class>/<class>
    (N).png`` with its mask ``<class> (N)_mask.png`` (:func:`raw_layout.busi_paths`).

    Patient p's class comes from :func:`sonodiff.phantom.breast.patient_classes` (balanced: every
    three patients are one normal, one benign, one malignant in a seeded order) and N counts the
    patients of that class from 1. Each image is ``size`` x ``size`` (the linear array's
    rectangle, probe at row 0); the mask is 255 on the lesion's pixels and 0 elsewhere (all 0 for
    ``normal``). Returns the image stems in patient order (``benign (1)``, ``normal (1)`` ...).
    """
    if patients < 1:
        raise InputError("config key source.simulate.patients", f"must be at least 1, not {patients}")
    root = Path(root)
    sim = Simulator(transducer, mode, size, physics)
    x, z = transducer.image_points(size)
    classes = breast.patient_classes(patients, lambda b: np.random.default_rng([seed, CLASS, b]))
    numbers: Counter[str] = Counter()
    names = []
    for p, cls in enumerate(tqdm(classes, desc="phantom_busi", unit="img", disable=not progress)):
        numbers[cls] += 1
        patient = breast.draw_patient(np.random.default_rng([seed, ANATOMY, p]), cls, transducer)
        scene = breast.scene(patient, transducer)
        image = sim.image(scene, np.random.default_rng([seed, SPECKLE, p]))
        mask = np.where(scene.labels(x, z) == breast.LABELS["lesion"], 255, 0).astype(np.uint8)
        image_path, mask_path = raw_layout.busi_paths(root, cls, numbers[cls])
        write_png(image_path, image)
        write_png(mask_path, mask)
        names.append(f"{cls} ({numbers[cls]})")
    _provenance(root, "breast", transducer, physics, {"patients": patients, "mode": mode, "size": size,
                                                      "seed": seed})
    return names


#: The on-disk format each phantom is written in.
FORMATS = {"camus": "camus", "segthy": "segthy", "liver": "folder", "breast": "busi"}


def simulate_phantom(cfg: Mapping, out_dir: str | Path, progress: bool = True) -> Path:
    """Simulate the phantom dataset of a resolved job config into ``out_dir`` (atomically).

    Reads ``cfg["data"]["source"]["simulate"]`` (phantom, patients, mode, size, slices, sweeps, seed), the
    dataset's ``format`` and ``slice_axis``, and ``cfg["split"]["fractions"]`` for the CAMUS
    phantom's official split. ``slices`` is the SegThy phantom's slices per volume and the liver
    phantom's images per patient. The breast phantom (format ``busi``) reads phantom, patients, mode,
    size and seed only. The liver phantom checks that the dataset's ``image_glob``
    finds the images it wrote. The folder appears whole or not at all.
    """
    data = cfg["data"]
    name = cfg.get("dataset", "dataset")
    sim = data["source"].get("simulate")
    where = f"config key datasets.{name}.source.simulate"
    if not sim:
        raise InputError(f"config key datasets.{name}.source", "has no simulate entry")
    phantom = sim["phantom"]
    if phantom not in FORMATS:
        raise InputError(f"{where}.phantom", f"unknown phantom {phantom!r} ({', '.join(FORMATS)})")
    if data.get("format") != FORMATS[phantom]:
        raise InputError(f"config key datasets.{name}.format",
                         f"a {phantom} phantom is written in the {FORMATS[phantom]} layout, not {data.get('format')!r}")
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        if phantom == "camus":
            fractions = cfg.get("split", {}).get("fractions", DEFAULT_FRACTIONS)
            simulate_camus(tmp, sim["patients"], sim["mode"], sim["size"], sim["seed"], fractions,
                           progress=progress)
        elif phantom == "segthy":
            simulate_segthy(tmp, sim["patients"], sim["mode"], sim["size"], sim.get("slices", 8), sim["seed"],
                            data.get("slice_axis", 2), sim.get("sweeps", 2), progress=progress)
        elif phantom == "breast":
            simulate_busi(tmp, sim["patients"], sim["mode"], sim["size"], sim["seed"], progress=progress)
        else:
            simulate_liver(tmp, sim["patients"], sim["mode"], sim["size"], sim.get("slices", 8), sim["seed"],
                           progress=progress)
            glob = data.get("image_glob", "")
            if not glob or not any(Path(tmp).glob(glob)):
                raise InputError(f"config key datasets.{name}.image_glob",
                                 f"{glob!r} finds none of the liver phantom's images (use '*/*.png')")
    log.info("wrote %s phantom to %s", phantom, out_dir)
    return out_dir
