"""The metrics stage's records: per dataset and variant, the real set's FID statistics, weights.

- ``metrics/{dataset}/{variant}.json``: every figure of one sample set (written by
  :mod:`sonodiff.metrics.evaluate`, read by the tables and the report). Required keys:
  :data:`RECORD_KEYS`; ``physics.depth_profile`` holds the per-depth-bin curves (mean and std
  over images) that the report draws.
- ``metrics/{dataset}/real_fid_stats.npz``: for each FID dimension d ``mu_<d>``, ``sigma_<d>``,
  ``features_<d>``, and ``weights_sha256`` of the Inception weights used (no pickles).
- ``metrics/{dataset}/{variant}_values.npz``: the per-image values behind the record (flat
  arrays of :class:`sonodiff.metrics.quantities.SetValues`, no pickles), read by the variant
  comparison.
- ``metrics/{dataset}/differences.json``: every variant minus the reference variant, figure by
  figure (:mod:`sonodiff.metrics.compare`). Required keys: :data:`DIFFERENCES_KEYS`.
- ``metrics/weights.json``: the metric networks' weights status (``fetch_weights``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from sonodiff.contracts.records import read_record, write_record
from sonodiff.errors import InputError
from sonodiff.io import atomic_path, read_json, write_json

RECORD_KEYS = ("dataset", "variant", "counts", "fid", "kid", "paired", "physics")
DIFFERENCES_KEYS = ("dataset", "reference", "sign", "counts", "variants")


def write_metrics_record(path: str | Path, record: Mapping) -> None:
    write_record(path, record, RECORD_KEYS, "metrics record")


def read_metrics_record(path: str | Path) -> dict:
    return read_record(path, RECORD_KEYS, "metrics record")


def write_differences(path: str | Path, record: Mapping) -> None:
    write_record(path, record, DIFFERENCES_KEYS, "differences record")


def read_differences(path: str | Path) -> dict:
    return read_record(path, DIFFERENCES_KEYS, "variant differences")


def write_metric_values(path: str | Path, arrays: Mapping[str, np.ndarray]) -> None:
    _write_npz(path, arrays)


def read_metric_values(path: str | Path) -> dict[str, np.ndarray]:
    """Load a ``<variant>_values.npz`` (no pickles)."""
    return _read_npz(path, "per-image metric values")


def write_fid_stats(path: str | Path, arrays: Mapping[str, np.ndarray]) -> None:
    _write_npz(path, arrays)


def _write_npz(path: str | Path, arrays: Mapping[str, np.ndarray]) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def read_fid_stats(path: str | Path) -> dict[str, np.ndarray]:
    """Load ``real_fid_stats.npz`` (no pickles)."""
    return _read_npz(path, "FID statistics")


def _read_npz(path: str | Path, what: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError) as err:
        raise InputError(path, f"unreadable {what} ({err})") from err


def write_weights_status(path: str | Path, status: Mapping) -> None:
    write_json(path, dict(status))


def read_weights_status(path: str | Path) -> dict:
    return read_json(path)
