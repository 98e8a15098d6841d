"""The segment stage's records: one segmenter per (dataset, source), and the leakage check.

``segment/{dataset}/{source}/``: ``model.pt`` (every seed's best weights, ``weights_only``),
``predictions.npz`` (``sample_id`` and ``pred``, the first seed's predicted id maps of the real test
images) and ``metrics.json`` (recipe and seeds; Dice per structure as the mean over seeds and the
spread across seeds; per-image Dice averaged over seeds and per seed, with the test images'
patients, from which the segmentation table draws its patient-level intervals; counts; each
seed's training history). Checkpoints go to ``checkpoints/seed_<k>/`` beside ``model.pt``.
``segment/{dataset}/leakage_ok.txt``: the leakage guard's report (written only when it passes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from sonodiff.contracts.records import read_record
from sonodiff.errors import InputError
from sonodiff.io import atomic_path, write_json, write_text

RECORD_KEYS = ("dataset", "source", "structures", "dice", "per_image")


def write_segment_record(path: str | Path, record: Mapping) -> None:
    write_json(path, dict(record))


def read_segment_record(path: str | Path) -> dict:
    return read_record(path, RECORD_KEYS, "segmentation record")


def write_predictions(path: str | Path, sample_ids: Sequence[str], predictions: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, sample_id=np.array(list(sample_ids), dtype=str), pred=predictions)


def read_predictions(path: str | Path) -> dict[str, np.ndarray]:
    """Sample id -> predicted id map."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {str(s): p for s, p in zip(npz["sample_id"], npz["pred"])}
    except (OSError, KeyError, ValueError) as err:
        raise InputError(path, f"unreadable predictions ({err})") from err


def write_leakage_report(path: str | Path, report: str) -> None:
    write_text(path, report)
