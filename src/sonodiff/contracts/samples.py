"""A sample set: synthetic images, the plan they were made by, and reverse-process snapshots.

``samples/{dataset}/{variant}/``:

- ``plan.csv`` (:data:`PLAN_COLUMNS`): every image to sample, sorted by ``sample_id``, with its
  seed and the batch it is computed in; written once, read by every shard and by the gather step;
- ``shards/<i>/manifest.csv`` and ``shards/<i>/images/``: one shard's output;
- ``images/<sample_id>.png`` (uint8 grey) and ``manifest.csv`` (:data:`SAMPLES_COLUMNS`): the
  gathered set. ``label`` is the label map the image was generated from, ``real_image`` the real
  image of that map's source (paired metrics), ``source_sample_id`` the prepared sample it came
  from; unconditional sets leave the three empty; a latent model's sets add ``class``
  (:data:`OPTIONAL_COLUMNS`), the class of the prompt (a prompt-only set: ``sample.count`` images
  per class, the three others empty);
- ``config.yaml``: the resolved config the set was sampled with;
- ``snapshots.npz``: one reverse chain (Domínguez et al. fig. 3): ``steps`` (the original step
  index of each frame, -1 for the final x_0), ``frames`` (K, H, W) in [-1, 1], ``label`` (the
  label map conditioned on, or an empty array).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import yaml

from sonodiff.contracts import layout
from sonodiff.contracts.manifest import read_manifest, write_manifest
from sonodiff.errors import InputError
from sonodiff.io import atomic_path, write_text

#: Columns of a samples manifest, in order.
SAMPLES_COLUMNS = (
    "sample_id", "image", "label", "real_image", "source_sample_id", "patient_id", "split", "seed",
)
#: Columns of a sampling plan, in order.
PLAN_COLUMNS = ("sample_id", "source_sample_id", "patient_id", "split", "label", "real_image", "seed", "batch")
#: Columns a plan and a samples manifest carry when their set has them: ``class``, the class whose
#: prompt a latent model was given (empty or absent for the pixel-space models).
OPTIONAL_COLUMNS = ("class",)
#: ``steps`` entry of the final x_0 in a snapshots file.
FINAL_STEP = -1


def sample_image_path(folder: str | Path, sample_id: str) -> Path:
    """Where image ``sample_id`` of a set (or shard) in ``folder`` is stored."""
    return Path(folder) / layout.IMAGES / f"{sample_id}.png"


def images_folder(manifest: str | Path) -> Path:
    return Path(manifest).parent / layout.IMAGES


def read_samples(manifest: str | Path, required=SAMPLES_COLUMNS) -> pd.DataFrame:
    return read_manifest(manifest, required=required)


def _columns(frame: pd.DataFrame, columns: tuple[str, ...]) -> list[str]:
    """``columns`` and the :data:`OPTIONAL_COLUMNS` that ``frame`` has."""
    return list(columns) + [c for c in OPTIONAL_COLUMNS if c in frame.columns]


def write_samples(rows: pd.DataFrame, manifest: str | Path) -> None:
    rows = pd.DataFrame(rows)
    write_manifest(rows[_columns(rows, SAMPLES_COLUMNS)], manifest)


def write_sample_config(manifest: str | Path, cfg: Mapping[str, Any]) -> Path:
    """``config.yaml`` beside a gathered set's manifest."""
    path = Path(manifest).parent / layout.SAMPLE_CONFIG
    write_text(path, yaml.safe_dump(_plain(cfg), sort_keys=False))
    return path


def write_plan(plan: pd.DataFrame, path: str | Path) -> None:
    plan = pd.DataFrame(plan)
    write_manifest(plan[_columns(plan, PLAN_COLUMNS)], path)


def read_plan(path: str | Path) -> pd.DataFrame:
    df = read_manifest(path, required=PLAN_COLUMNS)
    df["seed"] = df["seed"].astype("int64")
    df["batch"] = df["batch"].astype("int64")
    return df


def write_snapshots(path: str | Path, steps: list[int], frames: np.ndarray, label: np.ndarray | None) -> Path:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, steps=np.asarray(steps, np.int64), frames=np.asarray(frames, np.float32),
                            label=np.zeros((0, 0), np.int64) if label is None else np.asarray(label, np.int64))
    return Path(path)


def read_snapshots(path: str | Path) -> tuple[list[int], np.ndarray, np.ndarray | None]:
    """(steps, frames (K, H, W), label map or None) of a snapshots file."""
    try:
        with np.load(path, allow_pickle=False) as data:
            steps, frames, label = [int(s) for s in data["steps"]], data["frames"], data["label"]
    except (OSError, KeyError, ValueError) as err:
        raise InputError(path, f"unreadable snapshots ({err})") from err
    return steps, frames, (label if label.size else None)


def _plain(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj
