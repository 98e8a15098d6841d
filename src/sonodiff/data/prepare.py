"""Convert a raw dataset into the prepared-dataset contract (``results/data/{dataset}/``).

Steps per 2D sample: intensities to uint8 (:func:`sonodiff.data.units.scale_to_uint8`), optional
zero-padding to a square (centred), resize to ``img_size`` (image: Pillow bilinear, which
low-pass filters when shrinking; labels: nearest), raw label values -> prepared ids
(:class:`~sonodiff.data.labels.LabelSpec`), and the sector label K+1 where the thresholded image
(:mod:`sonodiff.data.sector`) holds no structure. Duplicate images across patients (exact and
re-cropped copies, :mod:`sonodiff.data.duplicates`, on by default) link their patients into groups;
splits are patient-level and keep each group whole (:mod:`sonodiff.data.split`), except where an
official split says otherwise (kept, with a warning naming the files).

Output (written into a temporary folder, then moved into place; ``manifest.csv`` and
``dataset.json`` last, so a reader never sees a manifest without its files)::

    manifest.csv   sample_id, patient_id, split, view, phase, slice_index, image, label,
                   source_file, duplicate_group (+ class for BUSI)
    images/<sample_id>.png   uint8, img_size x img_size
    labels/<sample_id>.png   uint8 prepared ids (labeled datasets only)
    sector.png     dataset sector (255 inside): majority vote over the training images
    dataset.json   name, format, img_size, labels, structures, sector_id, probe, counts,
                   duplicates (settings, counts, groups with their pairs and conflicts)
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from sonodiff.contracts import layout
from sonodiff.contracts.dataset import (DATASET_COLUMNS, image_path, label_path, pixel_entries,
                                        remove_dataset_records, write_dataset, write_sector)
from sonodiff.data import busi, camus, folder, segthy
from sonodiff.data.duplicates import DuplicateFinder, DuplicateSettings, describe, group_patients
from sonodiff.data.labels import LabelSpec
from sonodiff.data.sector import add_sector_label, majority_mask, sector_mask
from sonodiff.data.split import SPLITS, carve_validation, grouped_split
from sonodiff.data.units import Unit, load_unit
from sonodiff.errors import InputError
from sonodiff.io import write_png

log = logging.getLogger(__name__)

#: Converters by ``format``: ``list_units(raw_dir, data_config) -> list[Unit]``.
FORMATS: dict[str, Callable[[Path, dict], list[Unit]]] = {
    "camus": camus.list_units,
    "segthy": segthy.list_units,
    "busi": busi.list_units,
    "folder": folder.list_units,
}


def register_format(name: str, list_units: Callable[[Path, dict], list[Unit]]) -> None:
    """Add a converter (a dataset format) without editing this module."""
    FORMATS[name] = list_units


def list_dataset(raw: str | Path, data: Mapping, spec: LabelSpec) -> list[Unit]:
    """The units of a raw dataset, checked for duplicate ids; unlabeled units dropped if labeled."""
    raw = Path(raw)
    if not raw.is_dir():
        raise InputError(raw, "raw dataset folder not found")
    fmt = data["format"]
    if fmt not in FORMATS:
        raise InputError("config key format", f"unknown dataset format {fmt!r}")
    units = FORMATS[fmt](raw, dict(data))
    seen: dict[str, Unit] = {}
    for u in units:
        if u.key in seen:
            raise InputError(u.image, f"patient/sample id {u.key} appears twice (also {seen[u.key].image})")
        seen[u.key] = u
    if spec.labeled:
        unlabeled = [u for u in units if not u.labels]
        if unlabeled:
            log.warning("%d images without label maps skipped (e.g. %s)", len(unlabeled), unlabeled[0].image)
        units = [u for u in units if u.labels]
    else:
        units = [Unit(**{**u.__dict__, "labels": (), "merge_masks": False}) for u in units]
    if not units:
        raise InputError(raw, f"no {fmt} images found")
    return units


def assign_splits(units: list[Unit], data: Mapping, split_cfg: Mapping,
                  groups: Mapping[str, list[str]] | None = None, dataset: str = "") -> dict[str, str]:
    """Patient -> split: the official split where there is one and ``official_split`` is on,
    training patients of a ``train+val`` official split carved with ``val / (train + val)``;
    else the seeded split of ``split.fractions`` (stratified by ``class`` where units have one).

    ``groups`` (duplicate groups, id -> patients) are kept whole in every seeded part; an official
    split is authoritative and may split a group (:func:`sonodiff.data.duplicates.describe` warns).
    Too few patients for the seeded splits of non-zero fractions is an :class:`InputError` at
    ``split.fractions`` naming ``dataset`` (:func:`sonodiff.data.split.check_enough`)."""
    patients = sorted({u.patient_id for u in units})
    fractions, seed = split_cfg["fractions"], int(split_cfg["seed"])
    official = {u.patient_id: u.official_split for u in units}
    if data.get("official_split", True) and all(official.values()):
        for u in units:
            if u.official_split != official[u.patient_id]:
                raise InputError(u.image, f"patient id {u.patient_id} appears in two official splits")
        out = {p: s for p, s in official.items() if s != "train+val"}
        pool = [p for p, s in official.items() if s == "train+val"]
        if pool:
            f_train, f_val = float(fractions["train"]), float(fractions["val"])
            out.update(carve_validation(pool, f_val / (f_train + f_val) if f_train + f_val else 0.0, seed, groups,
                                        dataset))
        return out
    strata = {u.patient_id: u.extra["class"] for u in units if "class" in u.extra} or None
    return grouped_split(patients, fractions, seed, strata, groups, dataset)


def pad_to_square(arr: np.ndarray) -> np.ndarray:
    """Zero-pad the shorter axis (centred) so that ``H == W``."""
    h, w = arr.shape
    size = max(h, w)
    top, left = (size - h) // 2, (size - w) // 2
    out = np.zeros((size, size), dtype=arr.dtype)
    out[top:top + h, left:left + w] = arr
    return out


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 image to ``size x size``, Pillow bilinear (antialiased when shrinking)."""
    if image.shape == (size, size):
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))


def resize_label(label: np.ndarray, size: int) -> np.ndarray:
    """uint8 label map to ``size x size``, nearest neighbour."""
    if label.shape == (size, size):
        return label
    return np.asarray(Image.fromarray(label).resize((size, size), Image.Resampling.NEAREST))


def convert_sample(image: np.ndarray, label: np.ndarray | None, spec: LabelSpec, data: Mapping,
                   ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """One 2D sample to ``(image, prepared ids or None, sector mask)`` at ``img_size``."""
    size = int(data["img_size"])
    ids = spec.remap(label) if label is not None else None
    if data.get("pad_square", False):
        image = pad_to_square(image)
        ids = pad_to_square(ids) if ids is not None else None
    image = resize_image(image, size)
    ids = resize_label(ids, size) if ids is not None else None
    sector = sector_mask(image, float(data.get("sector_threshold", 0.02)))
    if ids is not None:
        sector |= ids > 0
        if spec.sector_id is not None:
            ids = add_sector_label(ids, sector, spec.sector_id)
    return image, ids, sector


def output_folder(manifest: Path, info: Path, sector: Path) -> Path:
    """The one folder of the three declared outputs (the pixel folders are installed beside them);
    :class:`InputError` names the file that is elsewhere, or a sector mask not called ``sector.png``."""
    folder = manifest.parent.resolve()
    for path in (info, sector):
        if path.parent.resolve() != folder:
            raise InputError(path, f"not in the folder of the manifest {manifest}")
    if sector.name != layout.SECTOR:
        raise InputError(sector, f"the sector mask of a prepared dataset is {layout.SECTOR}")
    return manifest.parent


def _install(tmp: Path, out_dir: Path, names: list[str]) -> None:
    for name in names:
        dst = out_dir / name
        if dst.is_dir():
            shutil.rmtree(dst)
        elif dst.exists():
            dst.unlink()
        os.replace(tmp / name, dst)


def prepare_dataset(raw: str | Path, manifest: str | Path, info: str | Path, sector: str | Path,
                    cfg: Mapping, progress: bool = True) -> dict:
    """Convert ``raw`` into the prepared dataset ``manifest``, ``info``, ``sector`` (one folder,
    which also receives ``images/`` and ``labels/``); return ``info``'s content.

    ``cfg`` is the resolved job config (:func:`sonodiff.config.resolve`). Raises
    :class:`InputError` for bad input and then leaves nothing new in the folder.
    """
    raw, manifest, info_path = Path(raw), Path(manifest), Path(info)
    out_dir = output_folder(manifest, info_path, Path(sector))
    data, name = cfg["data"], cfg["dataset"]
    spec = LabelSpec.from_config(data["labels"], data.get("sector_label", True),
                                 where=f"config key datasets.{name}.labels")
    units = list_dataset(raw, data, spec)
    assign_splits(units, data, cfg["split"], dataset=name)  # split errors before any pixel is read
    settings = DuplicateSettings.from_config(data.get("duplicates"), f"config key datasets.{name}.duplicates")
    finder = DuplicateFinder(settings)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=out_dir))
    try:
        rows, masks = _convert_units(units, spec, data, tmp, out_dir, finder, f"prepare {name}", progress)
        if not rows:
            raise InputError(raw, "no 2D samples left after slicing")
        pairs = finder.pairs()
        groups = group_patients((finder.samples[p.a].patient_id, finder.samples[p.b].patient_id) for p in pairs)
        sampled = {row["source_file"] for row in rows}  # a volume may keep no slice: its patient has no sample
        splits = assign_splits([u for u in units if u.image in sampled], data, cfg["split"], groups, dataset=name)
        group_of = {p: g for g, members in groups.items() for p in members}
        for row in rows:
            row["split"], row["duplicate_group"] = splits[row["patient_id"]], group_of.get(row["patient_id"], "")
        write_sector(tmp, _dataset_sector(rows, masks, int(data["img_size"]), name))
        df = pd.DataFrame(rows)
        extra = [c for c in df.columns if c not in DATASET_COLUMNS]
        df = df[list(DATASET_COLUMNS) + extra]
        df["slice_index"] = df["slice_index"].astype("Int64")
        description = dataset_info(name, data, spec, df, describe(finder, pairs, groups, splits))
        remove_dataset_records(out_dir, (manifest.name, info_path.name))
        _install(tmp, out_dir, pixel_entries(spec.labeled))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if created and not any(out_dir.iterdir()):
            out_dir.rmdir()  # a failed first run leaves no folder behind either
        raise
    shutil.rmtree(tmp, ignore_errors=True)
    write_dataset(manifest, info_path, df, description)
    log.info("%s: %s; duplicates %s", name, description["counts"], description["duplicates"]["counts"])
    return description


def _convert_units(units: list[Unit], spec: LabelSpec, data: Mapping, tmp: Path, out_dir: Path,
                   finder: DuplicateFinder, desc: str, progress: bool) -> tuple[list[dict], list[np.ndarray]]:
    """Load, convert and write every sample into ``tmp``; return the manifest rows (split still
    unset) and each sample's packed sector mask. Every loaded sample goes to ``finder``."""
    rows, masks, ids_seen = [], [], set()
    for unit in tqdm(units, desc=desc, unit="file", disable=not progress):
        for sample in load_unit(unit, spec, data):
            if sample.sample_id in ids_seen:
                raise InputError(unit.image, f"sample id {sample.sample_id} appears twice")
            ids_seen.add(sample.sample_id)
            finder.add(sample.sample_id, unit.patient_id, str(unit.image), sample.image, sample.label,
                       unit.extra.get("class"))
            image, ids, mask = convert_sample(sample.image, sample.label, spec, data)
            write_png(image_path(tmp, sample.sample_id), image)
            if ids is not None:
                write_png(label_path(tmp, sample.sample_id), ids)
            masks.append(np.packbits(mask))
            row = {
                "sample_id": sample.sample_id, "patient_id": unit.patient_id, "split": "",
                "view": unit.view, "phase": unit.phase, "slice_index": sample.slice_index,
                "image": image_path(out_dir, sample.sample_id),
                "label": label_path(out_dir, sample.sample_id) if ids is not None else "",
                "source_file": unit.image, "duplicate_group": "",
            }
            rows.append({**row, **unit.extra})
    return rows, masks


def _dataset_sector(rows: list[dict], masks: list[np.ndarray], size: int, name: str) -> np.ndarray:
    """Majority vote of the training samples' sector masks (of all samples if none is training)."""
    train = [m for row, m in zip(rows, masks) if row["split"] == "train"] or masks
    votes = np.zeros(size * size, np.int64)
    for packed in train:
        votes += np.unpackbits(packed, count=size * size)
    sector = majority_mask(votes.reshape(size, size), len(train))
    if not sector.any():
        raise InputError(f"config key datasets.{name}.sector_threshold",
                         "the dataset sector is empty; lower the threshold")
    return sector


def dataset_info(name: str, data: Mapping, spec: LabelSpec, df: pd.DataFrame,
                 duplicates: Mapping | None = None) -> dict:
    """The content of ``dataset.json`` (``duplicates``: :func:`sonodiff.data.duplicates.describe`)."""
    counts: dict[str, int] = {}
    for split in SPLITS:
        part = df[df["split"] == split]
        counts[split] = int(len(part))
        counts[f"patients_{split}"] = int(part["patient_id"].nunique())
    if counts["train"] == 0 or counts["val"] == 0 or counts["test"] == 0:
        log.warning("%s: a split is empty (%s)", name, counts)
    return {
        "name": name,
        "format": data["format"],
        "img_size": int(data["img_size"]),
        "labels": spec.ids,
        "structures": spec.structures,
        "sector_id": spec.sector_id,
        "probe": {"type": data.get("probe", "convex")},
        "counts": counts,
        **({"duplicates": dict(duplicates)} if duplicates is not None else {}),
    }
