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
from sonodiff.contracts.samples import write_plan
from sonodiff.errors import InputError
from sonodiff.seeds import derive_seed


def sampling_jobs(cfg: Mapping[str, Any], labelmaps: str | Path | None) -> pd.DataFrame:
    """One row per image to sample, sorted by ``sample_id``, with its seed and batch.

    ``labelmaps``: the augmented label-map manifest of a semantic model, or None (``sample.count``
    unconditional images).
    """
    scfg = cfg["sample"]
    if labelmaps is not None:
        df = read_labelmaps(labelmaps)[list(SAMPLING_COLUMNS)]
        cap = int(scfg["max_label_maps"])
        if 0 < cap < len(df):
            order = np.random.default_rng(derive_seed(cfg["seed"], "max_label_maps")).permutation(len(df))
            df = df.iloc[np.sort(order[:cap])].reset_index(drop=True)
    else:
        n = int(scfg["count"])
        df = pd.DataFrame({"sample_id": [f"sample_{i:06d}" for i in range(n)], "source_sample_id": "",
                           "patient_id": "", "split": "val", "label": "", "real_image": ""})
    df["seed"] = [derive_seed(cfg["seed"], "sample", sid) for sid in df["sample_id"]]
    df["batch"] = np.arange(len(df)) // int(scfg["batch_size"])
    return df


def write_sampling_plan(cfg: Mapping[str, Any], labelmaps: str | Path | None, out_plan: str | Path) -> Path:
    """Write the plan of :func:`sampling_jobs` to ``out_plan`` (atomically); returns its path."""
    write_plan(sampling_jobs(cfg, labelmaps), out_plan)
    return Path(out_plan)


def shard_batches(plan: pd.DataFrame, shard: int, shards: int) -> list[pd.DataFrame]:
    """The batches of shard ``shard`` of ``shards``: the plan's batches b with b mod shards = shard."""
    if not 0 <= shard < shards:
        raise InputError("shard", f"shard {shard} of {shards} does not exist")
    mine = plan[plan["batch"] % shards == shard]
    return [rows for _, rows in mine.groupby("batch", sort=True)]
