"""Figures of the latent (Stable-Diffusion-like) models on BUSI-like data: Freiche et al. 2025,
figs. 3 and 4.

- Class figure (their fig. 3): one row per class (normal, benign, malignant, then any other class
  in name order), a real image of that class in the first column (from the prepared dataset's
  ``class`` column; a test image when there is one, else val, else train: one the model did not
  train on when possible), then for every variant the first ``n`` prompt-only samples of that class
  (by ``sample_id``).
- Mask figure (their fig. 4): one row per conditioning map (``label`` of the ControlNet samples,
  maps that every variant sampled, spread over them ordered by class and path): the map, the real
  image of its source (``real_image``), then for every variant up to ``per_mask`` samples made from
  that map (one when the variant sampled one per map).

Variants come as a list of (name, samples manifest) pairs and sit side by side (baseline, then
bmaps). A missing cell (a class with fewer samples, a map without a real image) is left blank.
The sample sets are those of :mod:`sonodiff.contracts.samples` with the optional ``class``
column. Drawing is :func:`sonodiff.report.figures.render_image_grid`'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.contracts.samples import read_samples
from sonodiff.errors import InputError
from sonodiff.plotting import colorize_labels
from sonodiff.report import figures as F
from sonodiff.report.dataset_figures import variant_title

#: Class order of the rows (BUSI's); other classes follow in name order.
CLASSES = ("normal", "benign", "malignant")
CLASS_COLUMN = "class"
#: Splits a real example is taken from, in order of preference.
REAL_SPLITS = ("test", "val", "train")

Variants = Sequence[tuple[str, str | Path]]


def class_order(names: Sequence[str]) -> list[str]:
    """The classes of ``names`` (empty names dropped): :data:`CLASSES` first, then the rest sorted."""
    present = {str(n) for n in names if str(n)}
    return [c for c in CLASSES if c in present] + sorted(present - set(CLASSES))


def _class_of(df: pd.DataFrame) -> pd.Series:
    return df[CLASS_COLUMN].astype(str) if CLASS_COLUMN in df.columns else pd.Series("", index=df.index)


def _conditioned(df: pd.DataFrame) -> pd.Series:
    return df["label"].astype(str) != "" if "label" in df.columns else pd.Series(False, index=df.index)


def prompt_samples(manifest: str | Path) -> pd.DataFrame:
    """The prompt-only rows of a sample set (no conditioning map, a class), sorted by ``sample_id``."""
    df = read_samples(manifest, required=["sample_id", "image", CLASS_COLUMN])
    rows = df[~_conditioned(df) & (_class_of(df) != "")]
    if rows.empty:
        raise InputError(manifest, "no prompt-only sample (empty label, a class)")
    return rows.sort_values("sample_id").reset_index(drop=True)


def mask_samples(manifest: str | Path) -> pd.DataFrame:
    """The rows of a sample set made from a conditioning map, sorted by ``sample_id``."""
    df = read_samples(manifest, required=["sample_id", "image", "label"])
    rows = df[_conditioned(df)]
    if rows.empty:
        raise InputError(manifest, "no sample with a conditioning map (label column)")
    return rows.sort_values("sample_id").reset_index(drop=True)


def real_by_class(prepared: PreparedDataset) -> dict[str, str]:
    """Class -> one real image of it (the first by ``sample_id`` of the first split of
    :data:`REAL_SPLITS` that has the class)."""
    rows = prepared.rows(required=("sample_id", "split", "image", CLASS_COLUMN))
    out: dict[str, str] = {}
    for split in REAL_SPLITS:
        part = rows[rows["split"] == split]
        for cls, image in zip(_class_of(part), part["image"]):
            out.setdefault(cls, image)
    out.pop("", None)
    return out


def _fill_blanks(cells: list[np.ndarray | None], where: str | Path) -> list[np.ndarray]:
    """Blank (white) cells for the Nones, of the first image's shape."""
    shapes = [c.shape[:2] for c in cells if c is not None]
    if not shapes:
        raise InputError(where, "no image to draw")
    return [np.ones(shapes[0], np.float32) if c is None else c for c in cells]


def _padded(paths: Sequence[str], n: int) -> list[np.ndarray | None]:
    """The first ``n`` images of ``paths``, then Nones up to ``n``."""
    return [F.load_gray(p) for p in list(paths)[:n]] + [None] * max(0, n - len(paths))


def _variant_titles(names: Sequence[str], width: int) -> list[str]:
    """Column titles of the variants' blocks: the variant's name over its first column."""
    return [variant_title(v) if j == 0 else "" for v in names for j in range(width)]


def class_grid(variants: Sequence[tuple[str, pd.DataFrame]], real: Mapping[str, str], n: int
               ) -> tuple[list[np.ndarray | None], list[str], list[str]]:
    """Cells (row-major, None for blanks), column titles and row titles of the class figure."""
    classes = class_order([c for _, df in variants for c in _class_of(df)])
    cells: list[np.ndarray | None] = []
    for cls in classes:
        cells.append(F.load_gray(real[cls]) if cls in real else None)
        for _, df in variants:
            cells += _padded(list(df.loc[_class_of(df) == cls, "image"]), n)
    return cells, ["real"] + _variant_titles([v for v, _ in variants], n), classes


def _spread(n_items: int, n: int) -> list[int]:
    """``n`` indices spread evenly over ``range(n_items)`` (all when fewer)."""
    if n_items <= n:
        return list(range(n_items))
    return sorted({int(i) for i in np.linspace(0, n_items - 1, n).round()})


def mask_grid(variants: Sequence[tuple[str, pd.DataFrame]], n_masks: int, per_mask: int,
              sector_id: int | None = None) -> tuple[list[np.ndarray | None], list[str], list[str]]:
    """Cells (row-major, None for blanks), column titles and row titles of the mask figure."""
    shared = set.intersection(*(set(df["label"]) for _, df in variants))
    if not shared:
        raise InputError("samples manifests", "the variants share no conditioning map to compare")
    everything = pd.concat([df for _, df in variants], ignore_index=True)
    info = everything.drop_duplicates("label").set_index("label")
    klass = dict(zip(info.index, _class_of(info)))
    rank = {c: i for i, c in enumerate(class_order(list(klass.values())))}
    ordered = sorted(shared, key=lambda label: (rank.get(klass[label], len(rank)), label))
    chosen = [ordered[i] for i in _spread(len(ordered), n_masks)]
    groups = [{label: list(df.loc[df["label"] == label, "image"]) for label in chosen} for _, df in variants]
    width = max(1, min(per_mask, max(len(g[label]) for g in groups for label in chosen)))
    cells: list[np.ndarray | None] = []
    for label in chosen:
        reals = [p for p in everything.loc[everything["label"] == label].get("real_image", []) if p]
        cells += [colorize_labels(F.load_labels(label), sector_id), F.load_gray(reals[0]) if reals else None]
        for g in groups:
            cells += _padded(g[label], width)
    titles = ["mask", "real"] + _variant_titles([v for v, _ in variants], width)
    return cells, titles, [klass[label] for label in chosen]


def render_class_figure(variants: Variants, prepared: PreparedDataset, out: str | Path, n: int = 4,
                        title: str | None = None) -> Path:
    """The class figure (module docstring) of the prompt-only sample sets ``variants``."""
    frames = [(name, prompt_samples(path)) for name, path in variants]
    if not frames:
        raise InputError(out, "no variant to draw")
    cells, cols, rows = class_grid(frames, real_by_class(prepared), n)
    return F.render_image_grid(_fill_blanks(cells, out), out, ncols=len(cols), title=title,
                               col_titles=cols, row_titles=rows)


def render_mask_figure(variants: Variants, out: str | Path, n_masks: int = 4, per_mask: int = 3,
                       sector_id: int | None = None, title: str | None = None) -> Path:
    """The mask figure (module docstring) of the ControlNet sample sets ``variants``."""
    frames = [(name, mask_samples(path)) for name, path in variants]
    if not frames:
        raise InputError(out, "no variant to draw")
    cells, cols, rows = mask_grid(frames, n_masks, per_mask, sector_id)
    return F.render_image_grid(_fill_blanks(cells, out), out, ncols=len(cols), title=title,
                               col_titles=cols, row_titles=rows)


def render_latent_figures(*, dataset: str, prepared: PreparedDataset, prompt: Variants, controlnet: Variants,
                          outputs: Mapping[str, str | Path], n_columns: int = 4, n_masks: int = 4,
                          per_mask: int = 3) -> None:
    """Both figures of one dataset: ``outputs["classes"]`` from the ``prompt`` sample sets and
    ``outputs["masks"]`` from the ``controlnet`` ones, each a list of (variant, manifest)."""
    render_class_figure(prompt, prepared, outputs["classes"], n_columns,
                        title=f"{dataset}: samples per class (prompt only)")
    render_mask_figure(controlnet, outputs["masks"], n_masks, per_mask, prepared.sector_id,
                       title=f"{dataset}: samples per conditioning mask (prompt + mask)")
