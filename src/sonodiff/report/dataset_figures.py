"""The report's figures of one dataset, read from the results tree.

Reads only the on-disk contracts (DESIGN.md): the prepared dataset (``dataset.json``,
``manifest.csv``, ``sector.png``), each variant's samples manifest and training log. Drawing is
left to :mod:`sonodiff.report.figures`; the B-map and forward-process figures (Domínguez et al.
figs. 1-2) to :mod:`sonodiff.diffusion.figures`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from sonodiff.errors import InputError
from sonodiff.io import read_json
from sonodiff.manifest import read_manifest
from sonodiff.report import figures as F

#: Column titles of the qualitative grid for the usual variant names (others keep their name).
VARIANT_TITLES = {"baseline": "baseline", "bmaps": "B-maps"}


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
        row = [F.colorize_labels(F.load_labels(rec["label"]), sector_id)]
        row += [F.load_gray(indexed[v].loc[k, "image"]) for v in variants]
        real = rec.get("real_image", "")
        row.append(F.load_gray(real) if real else np.zeros_like(row[1]))
        rows.append(row)
    return rows, ["label map"] + [variant_title(v) for v in variants] + ["real"]


def render_qualitative_from_files(samples: Mapping[str, str | Path], out: str | Path, dataset: str,
                                  info: Mapping[str, Any], n: int = 4,
                                  real_images: Sequence[str] = ()) -> Path:
    frames = {v: read_manifest(p, required=["sample_id", "image"]) for v, p in samples.items()}
    rows, columns = qualitative_rows(frames, n, info.get("sector_id"), real_images)
    return F.render_qualitative_grid(rows, columns, out, title=f"{dataset}: qualitative comparison")


def render_sample_grid_from_file(manifest: str | Path, out: str | Path, title: str,
                                 sector_id: int | None, n: int = 16) -> Path:
    df = _preferred_split(read_manifest(manifest, required=["sample_id", "image"]))
    chosen = df.set_index("sample_id").loc[_pick(list(df["sample_id"]), n)]
    images = [F.load_gray(p) for p in chosen["image"]]
    labels = [F.load_labels(p) for p in chosen["label"]] if _has_paths(chosen, "label") else None
    return F.render_sample_grid(images, out, title, labels=labels, sector_id=sector_id)


def render_training_from_files(logs: Mapping[str, str | Path], out: str | Path, title: str) -> Path:
    frames = {}
    for variant, path in logs.items():
        try:
            frames[variant_title(variant)] = pd.read_csv(path)
        except (OSError, ValueError, pd.errors.EmptyDataError) as err:
            raise InputError(path, f"unreadable training log ({err})") from err
    return F.render_training_curves(frames, out, title=title)


def render_depth_from_files(samples: Mapping[str, str | Path], sector: np.ndarray, probe: str,
                            out: str | Path, title: str, real_images: Sequence[str] = ()) -> Path:
    """Depth profile of the real images (those paired with the samples, else ``real_images``) and
    of every variant's samples, over the validation split where there is one. Profiles are the
    physics metrics' (:mod:`sonodiff.metrics.physics`), so the plot shows what the table's L1 measures."""
    from sonodiff.metrics.physics import depth_bins, depth_profiles

    bins = depth_bins(np.asarray(sector) > 0, probe)

    def summary(paths: Sequence[str]) -> tuple:
        return F.profile_summary(depth_profiles(np.stack([F.load_gray(p) * 255.0 for p in paths]), bins))

    profiles: dict[str, tuple] = {}
    real_paths: list[str] = []
    for variant, path in samples.items():
        df = _preferred_split(read_manifest(path, required=["image"]))
        profiles[variant_title(variant)] = summary(list(df["image"]))
        if not real_paths and _has_paths(df, "real_image"):
            real_paths = sorted(set(df["real_image"]))
    real_paths = real_paths or list(real_images)
    if real_paths:
        profiles = {"real": summary(real_paths), **profiles}
    return F.render_depth_profile(profiles, out, title=title)


def render_dataset_figures(*, dataset: str, data_dir: str | Path, samples: Mapping[str, str | Path],
                           train_logs: Mapping[str, str | Path], outputs: Mapping[str, str | Path],
                           sample_grids: Mapping[str, str | Path], n_examples: int = 4,
                           n_grid: int = 16) -> None:
    """All sample-based figures of one dataset.

    ``data_dir`` is the prepared dataset; ``outputs`` holds the paths ``qualitative``,
    ``depth_profile`` and ``training``; ``sample_grids`` one path per variant. Depth is the
    B-maps' own, from ``sector.png`` and the probe type of ``dataset.json``.
    """
    data_dir = Path(data_dir)
    info = read_json(data_dir / "dataset.json")
    sector = F.load_gray(data_dir / "sector.png")
    data = read_manifest(data_dir / "manifest.csv", required=["sample_id", "split", "image"])
    real_val = sorted(_preferred_split(data)["image"])
    render_qualitative_from_files(samples, outputs["qualitative"], dataset, info, n_examples, real_val)
    for variant, path in samples.items():
        render_sample_grid_from_file(path, sample_grids[variant], f"{dataset}: {variant_title(variant)} samples",
                                     info.get("sector_id"), n_grid)
    render_training_from_files(train_logs, outputs["training"], f"{dataset}: training")
    probe = info.get("probe", "convex")
    probe = probe.get("type", "convex") if isinstance(probe, Mapping) else probe
    render_depth_from_files(samples, sector, probe, outputs["depth_profile"],
                            f"{dataset}: mean intensity against depth", real_val)
