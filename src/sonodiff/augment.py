"""Label-map augmentation for inference (Stojanovski et al. 2023, "Echo from noise", section 2.2).

Each label map of the ``augment.splits`` splits (never test; ``augment`` may be set per dataset,
``datasets.<d>.augment``) gets ``augment.copies`` random deformations, a random affine followed
by an elastic deformation, both with nearest-neighbour interpolation so that values stay label ids:

1. affine (torchvision ``RandomAffine`` semantics): angle ``~ U(-rotation_deg, rotation_deg)``;
   shift ``t_x ~ U(-a W, a W)``, ``t_y ~ U(-b H, b H)`` with ``translate = (a, b)``, rounded to
   pixels; isotropic scale ``~ U(scale)``; x-shear ``~ U(-shear_deg, shear_deg)``; fill 0;
2. elastic (TorchIO ``RandomElasticDeformation``): the map as a ``(1, 1, H, W)`` volume, a
   coarse grid of ``elastic_control_points`` control points whose displacements are
   ``~ U(-D_d, D_d)`` per axis, zero on the outer grid border (``locked_borders = 1``, as the
   paper's code), B-spline interpolated. ``D = elastic_max_displacement * img_size / 256``: the
   paper's pixels at 256 px, scaled to this image size.
3. clip to the source's own sector, the cone of its real image (as Echo from noise does):
   with a sector label K + 1, ``S_s = {p : L_s(p) != 0}`` (inside the cone every pixel of the
   source map L_s is a structure or the sector label); without one, ``S_s = S``, the dataset's
   sector mask (``sector.png``, the majority cone). Then ``L[~S_s] = 0`` and, with a sector label,
   ``L[(L == 0) & S_s] = K + 1``. The sector label is removed before deforming, so only
   structures move and every copy fills exactly its source's cone.

Undeformed maps (:mod:`sonodiff.contracts.labelmaps`): every map of the ``val`` split (when
``val`` is in ``augment.splits``) also enters as itself, ``sample_id = source_sample_id`` and
``copy = -1``, so that the image generated from it can be compared with its real image (paired
metrics); with ``copies: 0`` every split of ``augment.splits`` enters undeformed, nothing else.

Seeds: copy ``k`` of sample ``s`` draws from ``numpy.random.SeedSequence([seed, crc32(s), k])``,
so a copy is the same however the work is ordered or sharded.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torchio as tio
import torchvision.transforms.functional as TF
from tqdm import tqdm

from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.contracts.labelmaps import (
    LABELMAP_COLUMNS, UNDEFORMED_COPY, labelmap_path, labels_folder, write_labelmaps,
)
from sonodiff.contracts.manifest import read_manifest
from sonodiff.errors import InputError
from sonodiff.io import read_png, write_png

log = logging.getLogger(__name__)

REFERENCE_SIZE = 256  # image size of the paper's displacement values


@dataclass(frozen=True)
class AugmentParams:
    """Ranges of one augmentation (config section ``augment``)."""

    rotation_deg: float = 5.0
    translate: tuple[float, float] = (0.0, 0.05)
    scale: tuple[float, float] = (0.8, 1.05)
    shear_deg: float = 5.0
    control_points: tuple[int, int, int] = (10, 10, 4)
    max_displacement: tuple[float, float, float] = (0.0, 30.0, 30.0)
    locked_borders: int = 1

    @classmethod
    def from_config(cls, aug: Mapping) -> "AugmentParams":
        return cls(float(aug["rotation_deg"]), tuple(aug["translate"]), tuple(aug["scale"]),
                   float(aug["shear_deg"]), tuple(int(v) for v in aug["elastic_control_points"]),
                   tuple(float(v) for v in aug["elastic_max_displacement"]))


def sample_seed(seed: int, sample_id: str, copy: int) -> np.random.SeedSequence:
    """Seed sequence of one copy: ``SeedSequence([seed, crc32(sample_id), copy])``."""
    return np.random.SeedSequence([int(seed) & 0xFFFFFFFF, zlib.crc32(sample_id.encode()), int(copy)])


def random_affine(label: np.ndarray, params: AugmentParams, rng: np.random.Generator) -> np.ndarray:
    """Step 1: random affine of a label map, nearest neighbour, fill 0."""
    h, w = label.shape
    angle = rng.uniform(-params.rotation_deg, params.rotation_deg)
    max_dx, max_dy = params.translate[0] * w, params.translate[1] * h
    shift = [int(round(rng.uniform(-max_dx, max_dx))), int(round(rng.uniform(-max_dy, max_dy)))]
    scale = rng.uniform(*params.scale)
    shear = [rng.uniform(-params.shear_deg, params.shear_deg), 0.0]
    out = TF.affine(torch.from_numpy(label)[None], angle=float(angle), translate=shift, scale=float(scale),
                    shear=[float(s) for s in shear], interpolation=TF.InterpolationMode.NEAREST, fill=[0.0])
    return out[0].numpy()


def elastic_control_points(params: AugmentParams, size: int, rng: np.random.Generator) -> tuple[np.ndarray, tuple]:
    """Coarse displacement grid ``(*control_points, 3)``, ``~ U(-D, D)``, borders locked to 0."""
    disp = tuple(d * size / REFERENCE_SIZE for d in params.max_displacement)
    coarse = (rng.random((*params.control_points, 3)) - 0.5) * 2.0 * np.asarray(disp)
    for i in range(params.locked_borders):
        coarse[i, :] = 0
        coarse[-1 - i, :] = 0
        coarse[:, i] = 0
        coarse[:, -1 - i] = 0
    return coarse.astype(np.float32), disp


def random_elastic(label: np.ndarray, params: AugmentParams, rng: np.random.Generator) -> np.ndarray:
    """Step 2: TorchIO elastic deformation of a ``(H, W)`` map as a ``(1, 1, H, W)`` volume."""
    coarse, disp = elastic_control_points(params, max(label.shape), rng)
    transform = tio.ElasticDeformation(control_points=coarse, max_displacement=disp,
                                       image_interpolation="nearest", label_interpolation="nearest")
    subject = tio.Subject(label=tio.LabelMap(tensor=torch.from_numpy(label.astype(np.int16))[None, None]))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*folding.*")
        out = transform(subject)["label"].data[0, 0].numpy()
    return np.rint(out).astype(np.uint8)


def source_sector(ids: np.ndarray, sector: np.ndarray, sector_id: int | None) -> np.ndarray:
    """S_s, the sector of the source map ``ids``: ``ids != 0`` with a sector label, else the
    dataset's sector mask ``sector`` (step 3 of the module docstring)."""
    return ids != 0 if sector_id is not None else sector


def augment_label_map(ids: np.ndarray, sector: np.ndarray, sector_id: int | None,
                      params: AugmentParams, seed: np.random.SeedSequence) -> np.ndarray:
    """One augmented copy of a prepared label map (steps 1-3 of the module docstring), clipped to
    :func:`source_sector` (``sector``, the dataset's mask, only without a sector label)."""
    rng = np.random.default_rng(seed)
    own = source_sector(ids, sector, sector_id)
    structures = ids.copy()
    if sector_id is not None:
        structures[structures == sector_id] = 0
    out = random_elastic(random_affine(structures, params, rng), params, rng)
    out[~own] = 0
    if sector_id is not None:
        out[(out == 0) & own] = sector_id
    return out


def undeformed_splits(aug: Mapping) -> set[str]:
    """Splits whose maps also enter undeformed: ``val`` (paired metrics) if augmented, and every
    split of ``augment.splits`` with ``copies: 0``."""
    splits = set(aug["splits"]) - {"test"}
    return splits if int(aug["copies"]) == 0 else splits & {"val"}


def map_versions(rec, ids: np.ndarray, mask: np.ndarray, sector_id: int | None, params: AugmentParams,
                 aug: Mapping, seed: int) -> Iterator[tuple[int, str, np.ndarray]]:
    """(copy, sample_id, map) of one prepared row ``rec``: its undeformed map first
    (``UNDEFORMED_COPY``, ``sample_id`` = the source's) where :func:`undeformed_splits` asks for
    it, then copies 0..copies-1 (``<source>_aug<k>``)."""
    if rec.split in undeformed_splits(aug):
        yield UNDEFORMED_COPY, rec.sample_id, ids
    for k in range(int(aug["copies"])):
        yield k, f"{rec.sample_id}_aug{k}", augment_label_map(ids, mask, sector_id, params,
                                                               sample_seed(seed, rec.sample_id, k))


def augment_dataset(manifest: str | Path, info: str | Path, sector: str | Path, out_manifest: str | Path,
                    cfg: Mapping, progress: bool = True) -> pd.DataFrame:
    """Augment the label maps of the prepared dataset ``manifest``, ``info``, ``sector``; write
    the label maps (:mod:`sonodiff.contracts.labelmaps`) and their manifest ``out_manifest``.

    Output columns (:data:`~sonodiff.contracts.labelmaps.LABELMAP_COLUMNS`): ``sample_id``
    (``<source>_aug<k>``, or the source's own id for an undeformed map), ``source_sample_id``,
    ``patient_id``, ``split``, ``copy`` (k, or -1 undeformed), ``label``, ``source_label``,
    ``real_image``. The label folder appears whole (built in a temporary folder), the manifest is
    written last.
    """
    dataset, out_manifest = PreparedDataset(manifest, info, sector), Path(out_manifest)
    aug = cfg["augment"]
    splits: Sequence[str] = [s for s in aug["splits"] if s != "test"]
    df = read_manifest(dataset.manifest, required=["sample_id", "patient_id", "split", "image", "label"])
    df = df[df["split"].isin(splits)]
    if (df["label"] == "").any() or not dataset.has_labels:
        raise InputError(dataset.manifest, "the dataset has no label maps to augment")
    if df.empty:
        raise InputError(dataset.manifest, f"no samples in splits {list(splits)}")
    mask = dataset.sector()
    sector_id = dataset.sector_id
    params = AugmentParams.from_config(aug)
    allowed = set(dataset.labels.values())
    out_dir = out_manifest.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=out_dir))
    staged = tmp / out_manifest.name  # where the manifest would be: its label maps go beside it
    rows = []
    try:
        labels_folder(staged).mkdir()
        for rec in tqdm(df.itertuples(index=False), total=len(df), desc="augment", unit="map",
                        disable=not progress):
            ids = read_png(rec.label)
            if ids.shape != mask.shape:
                raise InputError(rec.label, f"shape {ids.shape} differs from {dataset.sector_path} {mask.shape}")
            bad = set(np.unique(ids).tolist()) - allowed
            if bad:
                raise InputError(rec.label, f"label ids {sorted(bad)} not in the labels of {dataset.info_path}")
            for k, sid, out in map_versions(rec, ids, mask, sector_id, params, aug, cfg["seed"]):
                write_png(labelmap_path(staged, sid), out)
                rows.append({"sample_id": sid, "source_sample_id": rec.sample_id,
                             "patient_id": rec.patient_id, "split": rec.split, "copy": k,
                             "label": labelmap_path(out_manifest, sid),
                             "source_label": rec.label, "real_image": rec.image})
        if labels_folder(out_manifest).exists():
            out_manifest.unlink(missing_ok=True)
            shutil.rmtree(labels_folder(out_manifest))
        labels_folder(staged).rename(labels_folder(out_manifest))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = pd.DataFrame(rows, columns=list(LABELMAP_COLUMNS))
    write_labelmaps(out, out_manifest)
    return out
