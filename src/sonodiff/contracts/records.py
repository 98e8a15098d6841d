"""JSON records (metrics, segmentation): written atomically, read back with their keys checked."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

from sonodiff.errors import InputError
from sonodiff.io import read_json, write_json


def write_record(path: str | Path, record: Mapping, required: Iterable[str], what: str) -> None:
    """Write ``record`` as JSON atomically (NaN as null); one without a ``required`` key is refused."""
    missing = [k for k in required if k not in record]
    if missing:
        raise ValueError(f"{what} lacks {missing}")
    write_json(path, dict(record))


def read_record(path: str | Path, required: Iterable[str], what: str) -> dict:
    """The JSON object in ``path``; a missing file, bad JSON or a missing key is an InputError."""
    try:
        record = read_json(path)
    except (OSError, ValueError) as err:
        raise InputError(path, f"unreadable {what} ({err})") from err
    missing = [k for k in required if not isinstance(record, dict) or k not in record]
    if missing:
        raise InputError(path, f"not a {what} (missing {missing})")
    return record
