"""The report's figures of one dataset, read from the results tree.

Reads only the on-disk contracts: the prepared dataset
(:class:`~sonodiff.contracts.dataset.PreparedDataset`), each variant's samples manifest
(:mod:`sonodiff.contracts.samples`), training log (:mod:`sonodiff.contracts.model_file`) and
metrics record (:mod:`sonodiff.contracts.metrics_record`, whose depth profiles are drawn as they
are: the plot shows what the physics table's L1 measures). Drawing is left to
:mod:`sonodiff.report.figures`; the B-map and forward-process figures (Domínguez et al. figs. 1-2)
to :mod:`sonodiff.diffusion.figures`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.contracts.metrics_record import read_metrics_record
from sonodiff.contracts.model_file import read_training_log
from sonodiff.contracts.samples import read_samples
from sonodiff.errors import InputError
from sonodiff.plotting import colorize_labels
from sonodiff.report import figures as F

#: Column titles of the qualitative grid for the usual variant names (others keep their name).
VARIANT_TITLES = {"baseline": "baseline", "bmaps": "B-maps"}
#: Keys of a metrics record's ``physics.depth_profile`` that the depth figure draws.
PROFILE_KEYS = ("depth", "real", "real_std", "synthetic", "synthetic_std")


def variant_title(name: str) -> str:
    return VARIANT_TITLES.get(name, name)


def _pick(ids: Sequence[str], n: int) -> list[str]:
    """``n`` ids spread evenly over the sorted list (deterministic)."""
    ids = sorted(ids)
    if len(ids) <= n:
        return ids
    return [ids[i] for i in np.linspace(0, len(ids) - 1, n).round().astype(int)]


def _preferred_split(df: pd.DataFrame, split: str = "val") -> pd.DataFrame:
    if "split" in df.columns and (df["split"] == split).any():
        return df[df["split"] == split]
    return df


def _has_paths(df: pd.DataFrame, column: str) -> bool:
    return column in df.columns and bool((df[column].astype(str) != "").all())


def qualitative_rows(samples: Mapping[str, pd.DataFrame], n: int, sector_id: int | None,
                     real_fallback: Sequence[str] = ()) -> tuple[list[list[np.ndarray]], list[str]]:
    """Rows label map | one column per variant | real image, for ``n`` label maps sampled by every
    variant (matched on ``sample_id``, else on the label map path). Without label maps
    (unconditional models) the rows are unpaired: variants side by side, then a real image."""
    variants = list(samples)
    frames = {v: _preferred_split(df) for v, df in samples.items()}
    labelled = all(_has_paths(df, "label") for df in frames.values())
    if not labelled:
        count = min([n] + [len(df) for df in frames.values()])
        rows = []
        for i in range(count):
            row = [F.load_gray(frames[v]["image"].iloc[i]) for v in variants]
            if i < len(real_fallback):
                row.append(F.load_gray(real_fallback[i]))
            else:
                row.append(np.zeros_like(row[0]))
            rows.append(row)
        return rows, [variant_title(v) for v in variants] + ["real"]
    key = "sample_id"
    common = set.intersection(*(set(df[key]) for df in frames.values()))
    if not common:
        key = "label"
        common = set.intersection(*(set(df[key]) for df in frames.values()))
    if not common:
        raise InputError("samples manifests", "the variants share no label map to compare")
    chosen = _pick(list(common), n)
    indexed = {v: df.drop_duplicates(key).set_index(key) for v, df in frames.items()}
    first = indexed[variants[0]]
    rows = []
    for k in chosen:
        rec = first.loc[k]
        row = [colorize_labels(F.load_labels(rec["label"]), sector_id)]
        row += [F.load_gray(indexed[v].loc[k, "image"]) for v in variants]
        real = rec.get("real_image", "")
        row.append(F.load_gray(real) if real else np.zeros_like(row[1]))
        rows.append(row)
    return rows, ["label map"] + [variant_title(v) for v in variants] + ["real"]


def render_qualitative_from_files(samples: Mapping[str, str | Path], out: str | Path, dataset: str,
                                  sector_id: int | None, n: int = 4, real_images: Sequence[str] = ()) -> Path:
    frames = {v: read_samples(p, required=["sample_id", "image"]) for v, p in samples.items()}
    rows, columns = qualitative_rows(frames, n, sector_id, real_images)
    return F.render_qualitative_grid(rows, columns, out, title=f"{dataset}: qualitative comparison")


def render_sample_grid_from_file(manifest: str | Path, out: str | Path, title: str,
                                 sector_id: int | None, n: int = 16) -> Path:
    df = _preferred_split(read_samples(manifest, required=["sample_id", "image"]))
    chosen = df.set_index("sample_id").loc[_pick(list(df["sample_id"]), n)]
    images = [F.load_gray(p) for p in chosen["image"]]
    labels = [F.load_labels(p) for p in chosen["label"]] if _has_paths(chosen, "label") else None
    return F.render_sample_grid(images, out, title, labels=labels, sector_id=sector_id)


def render_training_from_files(logs: Mapping[str, str | Path], out: str | Path, title: str) -> Path:
    frames = {variant_title(variant): read_training_log(path) for variant, path in logs.items()}
    return F.render_training_curves(frames, out, title=title)


def depth_profile_of(record: str | Path) -> dict[str, np.ndarray]:
    """The depth profiles of a metrics record (:data:`PROFILE_KEYS`, null bins as NaN)."""
    profile = read_metrics_record(record)["physics"].get("depth_profile", {})
    missing = [k for k in PROFILE_KEYS if k not in profile]
    if missing:
        raise InputError(record, f"the depth profile lacks {missing}: rerun compute_metrics")
    return {k: np.array([np.nan if v is None else v for v in profile[k]], dtype=np.float64) for k in PROFILE_KEYS}


def render_depth_from_files(metrics: Mapping[str, str | Path], out: str | Path, title: str) -> Path:
    """Mean intensity against depth (± one standard deviation over images) of the real validation
    images and of every variant's samples, as the metrics records hold them."""
    profiles: dict[str, tuple] = {}
    for variant, record in metrics.items():
        curves = depth_profile_of(record)
        if not profiles:
            profiles["real"] = (curves["depth"], curves["real"], curves["real_std"])
        profiles[variant_title(variant)] = (curves["depth"], curves["synthetic"], curves["synthetic_std"])
    return F.render_depth_profile(profiles, out, title=title)


def render_dataset_figures(*, dataset: str, prepared: PreparedDataset, samples: Mapping[str, str | Path],
                           train_logs: Mapping[str, str | Path], metrics: Mapping[str, str | Path],
                           outputs: Mapping[str, str | Path], sample_grids: Mapping[str, str | Path],
                           n_examples: int = 4, n_grid: int = 16) -> None:
    """All sample-based figures of one dataset.

    ``samples``, ``train_logs`` and ``metrics`` map each variant to its samples manifest,
    training log and metrics record; ``outputs`` holds the paths ``qualitative``,
    ``depth_profile`` and ``training``; ``sample_grids`` one path per variant.
    """
    real_val = sorted(_preferred_split(prepared.rows())["image"])
    render_qualitative_from_files(samples, outputs["qualitative"], dataset, prepared.sector_id, n_examples, real_val)
    for variant, path in samples.items():
        render_sample_grid_from_file(path, sample_grids[variant], f"{dataset}: {variant_title(variant)} samples",
                                     prepared.sector_id, n_grid)
    render_training_from_files(train_logs, outputs["training"], f"{dataset}: training")
    render_depth_from_files(metrics, outputs["depth_profile"], f"{dataset}: mean intensity against depth")
