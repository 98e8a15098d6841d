"""The segmentation table in the layout of Echo from noise, table 1, with the published rows.

Rows: one per training source of a dataset (``real``, ``synthetic_<variant>``, ...), then the
paired differences ``synthetic_<v> - synthetic_baseline`` (per test image, same images), then for
CAMUS-like datasets the published rows (Stojanovski et al. 2023 "All SDM frames"; Gilbert et al.
2021 "all synthetic frames", as quoted in that table; both on the real CAMUS test set, not on
our data). Columns: Dice (%) per structure and Mean.

A cell of ours is ``mean ± std`` over test images with the 95% bootstrap interval of the mean in
brackets; a structure absent from every test image is n/a with the reason. Mean is the papers'
column: mean ± std (ddof 0) of the per-structure means (88.5, 92.3, 86.3 -> 89.0 ± 2.5); the CSV also carries the per-image mean over structures with
its interval (``image_mean_*``). A paired-difference cell is the mean ± std of the per-image
difference with the interval of its mean: an interval that excludes 0 says the two sources differ
on these test images.

Outputs: CSV (the frame of :func:`build_table`: one row per table row, numeric columns
``<structure>_{mean,std,ci_low,ci_high}``), Markdown and LaTeX (one
:class:`~sonodiff.report.table_writer.Table` per dataset, written by
:mod:`sonodiff.report.table_writer` like every other table).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from sonodiff.contracts.segmentation import read_segment_record
from sonodiff.errors import InputError
from sonodiff.io import write_text
from sonodiff.report.table_writer import Cell, Table, write_table
from sonodiff.stats import summarize

#: Published rows (Dice %, mean and std) for CAMUS-like data: Echo from noise, table 1.
PUBLISHED = (
    {"source": "Stojanovski et al. 2023, all SDM frames (published, CAMUS)",
     "reference": "Stojanovski et al. 2023, Echo from noise, table 1",
     "lv_endo": (88.5, 6.0), "lv_epi": (92.3, 3.9), "la": (86.3, 10.7), "mean": (89.0, 2.5)},
    {"source": "Gilbert et al. 2021, all synthetic frames (published, CAMUS)",
     "reference": "Gilbert et al. 2021, as quoted in Echo from noise, table 1",
     "lv_endo": (79.4, 9.9), "lv_epi": (88.6, 5.4), "la": (71.3, 23.7), "mean": (79.7, 7.1)},
)
PUBLISHED_FORMATS = ("camus",)
LATEX_NAMES = {"lv_endo": "$LV_{endo}$", "lv_epi": "$LV_{epi}$", "la": "$LA$"}
DIGITS = 1
NO_STRUCTURE = "the structure is in no test image"
NOTES = ("Cells: mean ± std over test images [95% bootstrap interval of the mean].",
         "Mean: mean ± std of the structure means (as in Echo from noise, table 1).")
#: Notes of the kinds of row a table has.
KIND_NOTES = {"paired difference": "Paired rows: per-image difference on the same test images.",
              "published": "Published rows are on the real CAMUS test set, shown for scale, not computed on "
                           "this dataset."}
STATS = ("mean", "std", "ci_low", "ci_high")
REFERENCE_SOURCE = "synthetic_baseline"


def _pct(x: float | None) -> float:
    return float("nan") if x is None or not math.isfinite(x) else 100.0 * float(x)


def _our_row(m: Mapping) -> dict:
    row = {"dataset": m["dataset"], "format": m.get("format"), "source": m["source"], "kind": "ours",
           "reference": "", "n_test": m["counts"]["test"]}
    for key in m["structures"]:
        for s in STATS:
            row[f"{key}_{s}"] = _pct(m["dice"][key][s])
    row["mean_mean"] = _pct(m["dice"]["structure_mean"]["mean"])
    row["mean_std"] = _pct(m["dice"]["structure_mean"]["std"])
    for s in ("mean", "ci_low", "ci_high"):
        row[f"image_mean_{s}"] = _pct(m["dice"]["image_mean"][s])
    return row


def _paired_row(m: Mapping, ref: Mapping) -> dict | None:
    """Per-image difference ``m - ref`` on the test images both were scored on."""
    ids = list(m["per_image"]["sample_id"])
    ref_pos = {s: i for i, s in enumerate(ref["per_image"]["sample_id"])}
    common = [(i, ref_pos[s]) for i, s in enumerate(ids) if s in ref_pos]
    if not common:
        return None
    a_idx, b_idx = (np.array(v) for v in zip(*common))
    keys = list(m["structures"])
    resamples = int(m.get("bootstrap", {}).get("resamples", 1000))
    seed = int(m.get("bootstrap", {}).get("seed", 0))
    row = {"dataset": m["dataset"], "format": m.get("format"),
           "source": f"{m['source']} - {ref['source']} (paired)", "kind": "paired difference",
           "reference": "", "n_test": len(common)}
    diffs = []
    for j, key in enumerate(keys):
        d = (np.asarray(m["per_image"][key], dtype=float)[a_idx]
             - np.asarray(ref["per_image"][key], dtype=float)[b_idx])
        diffs.append(d)
        summary = summarize(d, resamples, seed + j)
        for s in STATS:
            row[f"{key}_{s}"] = _pct(summary[s])
    means = np.array([row[f"{k}_mean"] for k in keys])
    means = means[np.isfinite(means)]
    row["mean_mean"] = float(means.mean()) if means.size else float("nan")
    row["mean_std"] = float(means.std()) if means.size else float("nan")
    with np.errstate(all="ignore"):
        per_image = np.nanmean(np.stack(diffs, axis=1), axis=1)
    summary = summarize(per_image, resamples, seed + len(keys))
    for s in ("mean", "ci_low", "ci_high"):
        row[f"image_mean_{s}"] = _pct(summary[s])
    return row


def _published_rows(dataset: str, fmt: str) -> list[dict]:
    rows = []
    for pub in PUBLISHED:
        row = {"dataset": dataset, "format": fmt, "source": pub["source"], "kind": "published",
               "reference": pub["reference"], "n_test": float("nan")}
        for key in ("lv_endo", "lv_epi", "la", "mean"):
            row[f"{key}_mean"], row[f"{key}_std"] = pub[key]
        rows.append(row)
    return rows


def build_table(metrics: Sequence[Mapping], reference: str = REFERENCE_SOURCE) -> pd.DataFrame:
    """Table rows (module docstring) from ``metrics.json`` dicts, datasets and sources in order."""
    if not metrics:
        raise InputError("segmentation_table", "no segmentation metrics given")
    by_dataset: dict[str, list[Mapping]] = {}
    for m in metrics:
        by_dataset.setdefault(m["dataset"], []).append(m)
    rows: list[dict] = []
    columns = ["dataset", "format", "source", "kind", "reference", "n_test"]
    for dataset, ms in by_dataset.items():
        for key in ms[0]["structures"]:
            columns += [f"{key}_{s}" for s in STATS if f"{key}_{s}" not in columns]
        rows += [_our_row(m) for m in ms]
        ref = next((m for m in ms if m["source"] == reference), None)
        if ref is not None:
            for m in ms:
                if m["source"].startswith("synthetic_") and m["source"] != reference:
                    row = _paired_row(m, ref)
                    if row is not None:
                        rows.append(row)
        if ms[0].get("format") in PUBLISHED_FORMATS:
            rows += _published_rows(dataset, ms[0].get("format"))
    columns += ["mean_mean", "mean_std", "image_mean_mean", "image_mean_ci_low", "image_mean_ci_high"]
    df = pd.DataFrame(rows).reindex(columns=columns)
    df["n_test"] = df["n_test"].astype("Int64")
    return df


def _structures(df: pd.DataFrame, labels: Mapping[str, str]) -> list[str]:
    keys = [c[: -len("_mean")] for c in df.columns if c.endswith("_mean")
            and c not in ("mean_mean", "image_mean_mean")]
    return [k for k in keys if k in labels]


def _value(row: Mapping, column: str) -> float | None:
    value = row.get(column)
    return None if value is None or not np.isfinite(value) else float(value)


def _cell(row: Mapping, key: str) -> Cell:
    """``mean ± std [ci_low, ci_high]`` of one structure (or of ``mean``) in a frame row."""
    mean = _value(row, f"{key}_mean")
    if mean is None:
        return Cell(None, reason=NO_STRUCTURE)
    low, high = _value(row, f"{key}_ci_low"), _value(row, f"{key}_ci_high")
    return Cell(mean, [low, high] if low is not None and high is not None else None,
                std=_value(row, f"{key}_std"), published=row["kind"] == "published")


def tables(df: pd.DataFrame, labels: Mapping[str, Mapping[str, str]]) -> list[Table]:
    """One :class:`Table` per dataset of the frame. ``labels[dataset]`` maps structure keys to
    column names."""
    out = []
    for dataset, part in df.groupby("dataset", sort=False):
        names = labels[dataset]
        keys = _structures(part.dropna(axis=1, how="all"), names)
        n_test = int(part.loc[part["kind"] == "ours", "n_test"].iloc[0])
        table = Table(f"segmentation-{dataset.replace('_', '-')}",
                      f"Dice (%) on the real test split of {dataset} ({n_test} test images), "
                      "by the source the UNet was trained on",
                      ["Training/Validation dataset"], [(names[k],) for k in keys] + [("Mean",)],
                      digits=DIGITS, scientific_below=0.0,
                      tex_labels={names[k]: LATEX_NAMES[k] for k in keys if k in LATEX_NAMES})
        for row in part.to_dict("records"):
            table.rows.append(([row["source"]], [_cell(row, k) for k in keys] + [_cell(row, "mean")]))
        table.notes = list(NOTES) + [note for kind, note in KIND_NOTES.items() if (part["kind"] == kind).any()]
        out.append(table)
    return out


def write_segmentation_table(metrics_paths: Iterable[str | Path], out_csv: str | Path,
                             out_md: str | Path, out_tex: str | Path,
                             reference: str = REFERENCE_SOURCE) -> pd.DataFrame:
    """Read the segmentation records (datasets and sources in the given order) and write the table."""
    metrics = [read_segment_record(p) for p in metrics_paths]
    df = build_table(metrics, reference)
    labels: dict[str, dict[str, str]] = {}
    for m in metrics:
        names = labels.setdefault(m["dataset"], {})
        names.update({k: v["label"] for k, v in m["structures"].items()})
    write_text(out_csv, df.to_csv(index=False, float_format="%.3f"))
    write_table(tables(df, labels), {"md": out_md, "tex": out_tex})
    return df
