"""The augmented label maps (Echo from noise, section 2.2): what sampling conditions on.

A folder holding ``labels/<sample_id>.png`` (prepared ids) and ``manifest.csv`` with
:data:`LABELMAP_COLUMNS`: ``sample_id`` is ``<source sample>_aug<k>`` for copy k = 0, 1, ...,
``label`` the map, ``source_label`` and ``real_image`` the prepared dataset's map and image it
came from (``source_sample_id``, ``patient_id`` and ``split`` are that source's).

Undeformed rows: every map of the ``val`` split also enters undeformed (with ``augment.copies: 0``,
every augmented split does), for pairing the image generated from it with its real image. Such a
row has ``sample_id == source_sample_id`` (how any consumer tells it, :func:`is_undeformed`; no
extra column) and ``copy`` = :data:`UNDEFORMED_COPY` (-1), and its ``label`` holds the pixels of
``source_label``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sonodiff.contracts import layout
from sonodiff.contracts.manifest import read_manifest, write_manifest
from sonodiff.errors import InputError

#: Columns of the augmented label-map manifest, in order.
LABELMAP_COLUMNS = ("sample_id", "source_sample_id", "patient_id", "split", "copy", "label", "source_label", "real_image")
#: ``copy`` of an undeformed row (its ``sample_id`` is its ``source_sample_id``).
UNDEFORMED_COPY = -1
#: The columns sampling needs.
SAMPLING_COLUMNS = ("sample_id", "source_sample_id", "patient_id", "split", "label", "real_image")


def labelmap_path(manifest: str | Path, sample_id: str) -> Path:
    """Where the augmented map ``sample_id`` of the manifest ``manifest`` is stored."""
    return Path(manifest).parent / layout.LABELS / f"{sample_id}.png"


def is_undeformed(df: pd.DataFrame) -> pd.Series:
    """Which rows of a label-map (or samples) manifest are undeformed maps:
    ``sample_id == source_sample_id``."""
    return df["sample_id"].astype(str) == df["source_sample_id"].astype(str)


def labels_folder(manifest: str | Path) -> Path:
    return Path(manifest).parent / layout.LABELS


def read_labelmaps(manifest: str | Path, required=SAMPLING_COLUMNS) -> pd.DataFrame:
    """The augmented label maps, sorted by ``sample_id``; an empty manifest is an error."""
    df = read_manifest(manifest, required=required)
    if df.empty:
        raise InputError(manifest, "no label maps")
    return df.sort_values("sample_id").reset_index(drop=True)


def write_labelmaps(rows: pd.DataFrame, manifest: str | Path) -> None:
    write_manifest(pd.DataFrame(rows, columns=list(LABELMAP_COLUMNS)), manifest)
