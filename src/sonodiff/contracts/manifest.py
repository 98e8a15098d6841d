"""Manifests: the CSV files that hand data from one stage to the next.

Path columns are stored relative to the manifest's own folder, so a results tree can be moved
or copied to a cluster; :func:`read_manifest` returns them as absolute paths, and every manifest
is read through it. It refuses a path that leaves the manifest's folder (``../../etc/passwd``, an
absolute path), with one exception: a file in the ``images/`` or ``labels/`` folder of another
contract (a folder that holds a ``manifest.csv``), which is how a stage's manifest refers to an
earlier stage's files (an augmented map's ``real_image`` and ``source_label`` in the prepared
dataset, a sample's ``label`` among the augmented maps). :data:`PROVENANCE_COLUMNS` record where
a sample came from, are never opened and are not confined.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import pandas as pd

from sonodiff.contracts import layout
from sonodiff.errors import InputError
from sonodiff.io import atomic_path

#: Path columns: stored relative to the manifest's folder, read back as absolute paths.
PATH_COLUMNS = ("image", "label", "real_image", "source_file", "source_label")
#: Path columns that record provenance (the raw file a sample was converted from, wherever the
#: user's data lies): never opened by a reader, so not confined to the manifest's folder.
PROVENANCE_COLUMNS = ("source_file",)
#: The folders of another contract that a manifest's paths may name.
SHARED_FOLDERS = (layout.IMAGES, layout.LABELS)


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
    """Read a manifest, check ``required`` columns, and resolve path columns to absolute paths
    (each confined as the module docstring says)."""
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
    contract_folder: dict[str, bool] = {}
    for col in path_columns:
        if col not in df.columns:
            continue
        values = ["" if v is None else str(v) for v in df[col]]
        if col not in PROVENANCE_COLUMNS:
            for row, value in enumerate(values):
                if value:
                    _confine(path, base, df, row, col, value, contract_folder)
        df[col] = [str((base / p).resolve()) if p else "" for p in values]
    return df


def _confine(manifest: Path, base: Path, df: pd.DataFrame, row: int, col: str, value: str,
             contract_folder: dict[str, bool]) -> None:
    """Refuse ``value`` (row ``row`` of column ``col``) unless it names a file in the manifest's
    folder ``base`` or in the shared folders of another contract (``contract_folder`` caches which
    folders hold a manifest)."""
    where = f"row {row + 1}" + (f" (sample_id {df['sample_id'].iat[row]})" if "sample_id" in df.columns else "")
    if os.path.isabs(value):
        raise InputError(manifest, f"{where}, column {col}: absolute path {value!r}; a manifest stores paths "
                                   f"relative to its folder")
    target = os.path.normpath(os.path.join(base, value))
    if target.startswith(os.path.join(str(base), "")):  # base and a separator: inside it
        return
    folder = os.path.dirname(target)
    if folder not in contract_folder:
        contract_folder[folder] = (os.path.basename(folder) in SHARED_FOLDERS
                                   and os.path.isfile(os.path.join(os.path.dirname(folder), layout.MANIFEST)))
    if not contract_folder[folder]:
        raise InputError(manifest, f"{where}, column {col}: {value!r} resolves to {target}, outside the "
                                   f"manifest's folder {base} and outside the {'/'.join(SHARED_FOLDERS)} "
                                   f"folder of any other dataset")
