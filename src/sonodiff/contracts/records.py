"""JSON records (metrics, segmentation): written atomically, read back with their keys checked."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from sonodiff.errors import InputError
from sonodiff.io import read_json


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
