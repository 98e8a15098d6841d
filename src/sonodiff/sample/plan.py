"""The sampling plan: every image to sample, its seed and its batch, written down once.

Rows are sorted by ``sample_id``; row i is in batch ``i div sample.batch_size`` and has the seed
``derive_seed(seed, "sample", sample_id)``. Shard s of n computes the batches b with
``b mod n = s`` (:func:`shard_batches`), so every image has the same batch neighbours however
the plan is sharded. The file is :data:`sonodiff.contracts.samples.PLAN_COLUMNS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from sonodiff.contracts.labelmaps import SAMPLING_COLUMNS, read_labelmaps
from sonodiff.contracts.manifest import read_manifest
from sonodiff.contracts.samples import write_plan
from sonodiff.errors import InputError
from sonodiff.seeds import derive_seed


def sampling_jobs(cfg: Mapping[str, Any], labelmaps: str | Path | None,
                  classes: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per image to sample, sorted by ``sample_id``, with its seed and batch.

    ``labelmaps``: the augmented label-map manifest of a semantic model (or a ControlNet), or None
    (``sample.count`` unconditional images). ``classes``: a latent model's prompts, the class of
    every prepared sample (:func:`prepared_classes`): with label maps each row gets its source's
    class; without, the plan is ``sample.count`` images of every class, ids ``<class>_<k>``.
    """
    scfg = cfg["sample"]
    if labelmaps is not None:
        df = read_labelmaps(labelmaps)[list(SAMPLING_COLUMNS)]
        cap = int(scfg["max_label_maps"])
        if 0 < cap < len(df):
            order = np.random.default_rng(derive_seed(cfg["seed"], "max_label_maps")).permutation(len(df))
            df = df.iloc[np.sort(order[:cap])].reset_index(drop=True)
        if classes is not None:
            missing = sorted(set(df["source_sample_id"]) - set(classes))
            if missing:
                raise InputError(labelmaps, f"label maps of samples without a class, e.g. {missing[:3]}")
            df["class"] = [classes[s] for s in df["source_sample_id"]]
    else:
        n = int(scfg["count"])
        names = sorted(set(classes.values())) if classes is not None else [None]
        ids = [f"{c}_{i:06d}" if c else f"sample_{i:06d}" for c in names for i in range(n)]
        df = pd.DataFrame({"sample_id": ids, "source_sample_id": "", "patient_id": "", "split": "val",
                           "label": "", "real_image": ""})
        if classes is not None:
            df["class"] = [c for c in names for _ in range(n)]
        df = df.sort_values("sample_id").reset_index(drop=True)
    df["seed"] = [derive_seed(cfg["seed"], "sample", sid) for sid in df["sample_id"]]
    df["batch"] = np.arange(len(df)) // int(scfg["batch_size"])
    return df


def prepared_classes(manifest: str | Path) -> dict[str, str]:
    """``sample_id -> class`` of a prepared manifest's ``class`` column (an error naming the file without one)."""
    return dict(zip(*(read_manifest(manifest, required=("sample_id", "class"))[c].astype(str)
                      for c in ("sample_id", "class"))))


def write_sampling_plan(cfg: Mapping[str, Any], labelmaps: str | Path | None, out_plan: str | Path,
                        classes_from: str | Path | None = None) -> Path:
    """Write the plan of :func:`sampling_jobs` to ``out_plan`` (atomically); returns its path.
    ``classes_from``: the prepared manifest whose classes a latent model's prompts are."""
    classes = prepared_classes(classes_from) if classes_from is not None else None
    write_plan(sampling_jobs(cfg, labelmaps, classes), out_plan)
    return Path(out_plan)


def shard_batches(plan: pd.DataFrame, shard: int, shards: int) -> list[pd.DataFrame]:
    """The batches of shard ``shard`` of ``shards``: the plan's batches b with b mod shards = shard."""
    if not 0 <= shard < shards:
        raise InputError("shard", f"shard {shard} of {shards} does not exist")
    mine = plan[plan["batch"] % shards == shard]
    return [rows for _, rows in mine.groupby("batch", sort=True)]
