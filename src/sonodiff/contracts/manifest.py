"""Manifests: the CSV files that hand data from one stage to the next.

Path columns are stored relative to the manifest's own folder, so a results tree can be moved
or copied to a cluster; :func:`read_manifest` returns them as absolute paths.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import pandas as pd

from sonodiff.errors import InputError
from sonodiff.io import atomic_path

#: Path columns: stored relative to the manifest's folder, read back as absolute paths.
PATH_COLUMNS = ("image", "label", "real_image", "source_file", "source_label")


def write_manifest(df: pd.DataFrame, path: str | Path, path_columns: Iterable[str] = PATH_COLUMNS) -> None:
    """Write ``df`` to ``path`` atomically, storing path columns relative to ``path``'s folder."""
    path = Path(path)
    base = path.parent.resolve()
    out = df.copy()
    for col in path_columns:
        if col in out.columns:
            out[col] = [
                "" if (p is None or (isinstance(p, float) and p != p) or p == "")
                else os.path.relpath(Path(p).resolve(), base)
                for p in out[col]
            ]
    with atomic_path(path) as tmp:
        out.to_csv(tmp, index=False)


def read_manifest(path: str | Path, required: Iterable[str] = (), path_columns: Iterable[str] = PATH_COLUMNS) -> pd.DataFrame:
    """Read a manifest, check ``required`` columns, and resolve path columns to absolute paths."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "manifest not found")
    try:
        df = pd.read_csv(path, dtype={"sample_id": str, "patient_id": str}, keep_default_na=False)
    except Exception as err:  # pandas raises several types for a broken CSV
        raise InputError(path, f"unreadable manifest ({err})") from err
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(path, f"manifest lacks columns {missing}")
    base = path.parent.resolve()
    for col in path_columns:
        if col in df.columns:
            df[col] = [str((base / p).resolve()) if p else "" for p in df[col]]
    return df
