"""The segmentation table in the layout of Echo from noise, table 1, with the published rows.

Rows: one per training source of a dataset (``real``, ``synthetic_<variant>``, ...), then the
paired differences ``synthetic_<v> - real`` and ``real+synthetic_<v> - real`` (when ``real`` was
trained) and ``synthetic_<v> - synthetic_baseline``, then for CAMUS-like datasets the published rows
(Stojanovski et al. 2023 "All SDM frames"; Gilbert et al. 2021 "all synthetic frames", as quoted in
that table; both on the real CAMUS test set, not on our data). Columns: Dice (%) per structure
and Mean.

Notation (:mod:`sonodiff.segment.evaluate`): d_kij is the Dice of seed k (K seeds), test image i
(N images of P patients) and structure j; m_kj = nanmean_i d_kij; d_ij = (1/K) sum_k d_kij.

- A cell of ours is ``mean ± seed_std [ci_low, ci_high]``: mean = (1/K) sum_k m_kj (the record's
  ``dice``), seed_std its standard deviation across seeds (ddof 1; none with one seed), and the 95%
  patient-level bootstrap interval of nanmean_i d_ij: test patients are drawn with replacement,
  each with all its images (:func:`sonodiff.stats.cluster_bootstrap_ci`). The interval is
  conditional on the trained seeds; seed_std shows the spread between trainings.
- Mean is the papers' column: the mean over structures of the structure means, M = mean_j m_j,
  with its seed std and the interval of the same statistic on d_ij.
- A paired row ``b - a`` is the difference of the seed-averaged Dice of source b minus that of
  source a on the test images both were scored on (aligned by ``sample_id``; the same images for
  every source), mean_i d^b_ij - mean_i d^a_ij, with the paired patient-level interval (the same
  patients drawn for both, :func:`sonodiff.stats.paired_difference_figure`). Positive: b scores
  higher. An interval that excludes 0 says the sources differ on this test set. No seed std: the
  seeds of two sources are independent trainings, not pairs.
- With fewer than two test patients there is no interval (one patient says nothing about others).

A structure absent from every test image is n/a with the reason. Every table says in a note how
many test images and patients and how many seeds per source it rests on (CSV: ``n_test``,
``n_patients``, ``n_seeds``).

Outputs: CSV (the frame of :func:`build_table`: one row per table row, numeric columns
``<structure>_{mean,std,ci_low,ci_high}`` and ``mean_{mean,std,ci_low,ci_high}``, std being the
seed std for ours and the image std for published rows), Markdown and LaTeX (one
:class:`~sonodiff.report.table_writer.Table` per dataset, written by
:mod:`sonodiff.report.table_writer` like every other table). :func:`difference_rows` reads the
paired rows' Mean column back from the CSV as figure records for the report's front page.
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
from sonodiff.stats import cluster_bootstrap_ci, finite_mean, not_available, paired_difference_figure

#: Published rows (Dice %, mean and std over test images) for CAMUS-like data: Echo from noise, table 1.
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
NOTES = ("Cells: mean over seeds of the mean test Dice ± std across seeds (ddof 1) [95% bootstrap "
         "interval resampling test patients, each with all its images, on the per-image Dice averaged "
         "over seeds].",
         "Mean: mean over structures of the structure means (as in Echo from noise, table 1), "
         "± its std across seeds [the same patient interval].")
#: Notes of the kinds of row a table has.
KIND_NOTES = {"paired difference": "Paired rows 'b - a': Dice of b minus Dice of a (positive: b scores higher), "
                                   "from per-image Dice averaged over seeds, on the same test images, with the "
                                   "same test patients drawn for both [95% paired interval]; an interval that "
                                   "excludes 0 says the two sources differ on this test set.",
              "published": "Published rows are on the real CAMUS test set, shown for scale, not computed on "
                           "this dataset; their ± is the std over test images, not across seeds."}
NO_INTERVAL = "One test patient: no interval (intervals resample patients)."
STATS = ("mean", "std", "ci_low", "ci_high")
COUNTS = ("n_test", "n_patients", "n_seeds")
REFERENCE_SOURCE = "synthetic_baseline"
REAL_SOURCE = "real"
PAIRED_SUFFIX = " (paired)"
#: The figure of a paired row that the report's front page shows.
FRONT_PAGE_FIGURE = "Dice (%), mean over structures"


def _pct(x: float | None) -> float:
    return float("nan") if x is None or not math.isfinite(x) else 100.0 * float(x)


def _nanmean(values: np.ndarray) -> float:
    """nanmean_i d_i of one structure's Dice (N,)."""
    return float(finite_mean(values))


def structure_mean(dice: np.ndarray) -> float:
    """M = mean_j nanmean_i d_ij of Dice (N, S): the Mean column's statistic."""
    return float(finite_mean(finite_mean(dice)))


def _per_image(m: Mapping) -> np.ndarray:
    """The record's seed-averaged per-image Dice d_ij (N, S), structures in record order."""
    return np.stack([np.asarray(m["per_image"][k], dtype=np.float64) for k in m["structures"]], axis=1)


def _bootstrap(m: Mapping) -> tuple[int, int]:
    settings = m.get("bootstrap", {})
    return int(settings.get("resamples", 1000)), int(settings.get("seed", 0))


def _fill(row: dict, key: str, mean: float, std: float | None, ci: Sequence[float] | None) -> None:
    """``<key>_{mean,std,ci_low,ci_high}`` of ``row`` from fractions (written as %)."""
    row[f"{key}_mean"], row[f"{key}_std"] = _pct(mean), _pct(std)
    row[f"{key}_ci_low"], row[f"{key}_ci_high"] = (_pct(ci[0]), _pct(ci[1])) if ci else (math.nan, math.nan)


def _row(m: Mapping, source: str, kind: str, n_test: int, n_patients: int, n_seeds: float) -> dict:
    return {"dataset": m["dataset"], "format": m.get("format"), "source": source, "kind": kind,
            "reference": "", "n_test": n_test, "n_patients": n_patients, "n_seeds": n_seeds}


def _our_row(m: Mapping) -> dict:
    """Mean and seed std from the record's ``dice``; intervals resampling test patients."""
    dice, patients = _per_image(m), list(m["per_image"]["patient_id"])
    resamples, seed = _bootstrap(m)
    row = _row(m, m["source"], "ours", len(dice), len(set(patients)), len(m.get("seeds", [0])))
    for j, key in enumerate(m["structures"]):
        summary = m["dice"][key]
        ci = cluster_bootstrap_ci(_nanmean, dice[:, j], patients, resamples, seed + j)
        _fill(row, key, summary["mean"], summary["seed_std"], ci)
    summary = m["dice"]["structure_mean"]
    ci = cluster_bootstrap_ci(structure_mean, dice, patients, resamples, seed + len(m["structures"]))
    _fill(row, "mean", summary["mean"], summary["seed_std"], ci)
    return row


def _paired_row(b: Mapping, a: Mapping) -> dict | None:
    """``b - a`` on the test images both were scored on (module docstring); None if none."""
    a_pos = {s: i for i, s in enumerate(a["per_image"]["sample_id"])}
    common = [(i, a_pos[s]) for i, s in enumerate(b["per_image"]["sample_id"]) if s in a_pos]
    if not common:
        return None
    b_idx, a_idx = (np.array(v) for v in zip(*common))
    db, da = _per_image(b)[b_idx], _per_image(a)[a_idx]
    patients = [b["per_image"]["patient_id"][i] for i in b_idx]
    resamples, seed = _bootstrap(b)
    row = _row(b, f"{b['source']} - {a['source']}{PAIRED_SUFFIX}", "paired difference", len(common),
               len(set(patients)), math.nan)
    for j, key in enumerate(b["structures"]):
        fig = paired_difference_figure(_nanmean, da[:, j], db[:, j], patients, resamples, seed + j)
        _fill(row, key, fig["value"], None, fig["ci"])
    fig = paired_difference_figure(structure_mean, da, db, patients, resamples, seed + len(b["structures"]))
    _fill(row, "mean", fig["value"], None, fig["ci"])
    return row


def paired_sources(sources: Sequence[str], reference: str = REFERENCE_SOURCE) -> list[tuple[str, str]]:
    """The (b, a) pairs of the paired rows, in table order: every ``synthetic_<v>`` and
    ``real+synthetic_<v>`` minus ``real``, then every other ``synthetic_<v>`` minus ``reference``
    (each only when its a was trained)."""
    pairs = [(s, REAL_SOURCE) for s in sources if REAL_SOURCE in sources
             and (s.startswith("synthetic_") or s.startswith(f"{REAL_SOURCE}+synthetic_"))]
    pairs += [(s, reference) for s in sources if reference in sources
              and s.startswith("synthetic_") and s != reference]
    return pairs


def _published_rows(dataset: str, fmt: str) -> list[dict]:
    rows = []
    for pub in PUBLISHED:
        row = {"dataset": dataset, "format": fmt, "source": pub["source"], "kind": "published",
               "reference": pub["reference"], "n_test": math.nan, "n_patients": math.nan, "n_seeds": math.nan}
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
    columns = ["dataset", "format", "source", "kind", "reference", *COUNTS]
    for dataset, ms in by_dataset.items():
        for key in ms[0]["structures"]:
            columns += [f"{key}_{s}" for s in STATS if f"{key}_{s}" not in columns]
        rows += [_our_row(m) for m in ms]
        by_source = {m["source"]: m for m in ms}
        for b, a in paired_sources(list(by_source), reference):
            row = _paired_row(by_source[b], by_source[a])
            if row is not None:
                rows.append(row)
        if ms[0].get("format") in PUBLISHED_FORMATS:
            rows += _published_rows(dataset, ms[0].get("format"))
    columns += [f"mean_{s}" for s in STATS]
    df = pd.DataFrame(rows).reindex(columns=columns)
    for count in COUNTS:
        df[count] = df[count].astype("Int64")
    return df


def _structures(df: pd.DataFrame, labels: Mapping[str, str]) -> list[str]:
    keys = [c[: -len("_mean")] for c in df.columns if c.endswith("_mean") and c != "mean_mean"]
    return [k for k in keys if k in labels]


def _value(row: Mapping, column: str) -> float | None:
    value = row.get(column)
    return None if value is None or pd.isna(value) or not np.isfinite(value) else float(value)


def _cell(row: Mapping, key: str) -> Cell:
    """``mean ± std [ci_low, ci_high]`` of one structure (or of ``mean``) in a frame row."""
    mean = _value(row, f"{key}_mean")
    if mean is None:
        return Cell(None, reason=NO_STRUCTURE)
    low, high = _value(row, f"{key}_ci_low"), _value(row, f"{key}_ci_high")
    return Cell(mean, [low, high] if low is not None and high is not None else None,
                std=_value(row, f"{key}_std"), published=row["kind"] == "published")


def count_notes(part: pd.DataFrame) -> tuple[str, list[str]]:
    """What one dataset's table rests on, ``N test images of P patients; K seeds per source``, and
    its notes (that line, and that there is no interval when P < 2)."""
    ours = part[part["kind"] == "ours"]
    n_test, n_patients = int(ours["n_test"].iloc[0]), int(ours["n_patients"].iloc[0])
    seeds = {str(r["source"]): int(r["n_seeds"]) for r in ours.to_dict("records")}
    per_source = (f"{next(iter(seeds.values()))} seeds per source" if len(set(seeds.values())) == 1
                  else "seeds per source: " + ", ".join(f"{s} {k}" for s, k in seeds.items()))
    counts = f"{n_test} test images of {n_patients} patients; {per_source}"
    return counts, [f"Test set: {counts}."] + ([NO_INTERVAL] if n_patients < 2 else [])


def tables(df: pd.DataFrame, labels: Mapping[str, Mapping[str, str]]) -> list[Table]:
    """One :class:`Table` per dataset of the frame. ``labels[dataset]`` maps structure keys to
    column names."""
    out = []
    for dataset, part in df.groupby("dataset", sort=False):
        names = labels[dataset]
        keys = _structures(part.dropna(axis=1, how="all"), names)
        counts, notes = count_notes(part)
        table = Table(f"segmentation-{dataset.replace('_', '-')}",
                      f"Dice (%) on the real test split of {dataset} ({counts}), by the source the UNet "
                      "was trained on",
                      ["Training/Validation dataset"], [(names[k],) for k in keys] + [("Mean",)],
                      digits=DIGITS, scientific_below=0.0,
                      tex_labels={names[k]: LATEX_NAMES[k] for k in keys if k in LATEX_NAMES})
        for row in part.to_dict("records"):
            table.rows.append(([row["source"]], [_cell(row, k) for k in keys] + [_cell(row, "mean")]))
        table.notes = (list(NOTES) + notes
                       + [note for kind, note in KIND_NOTES.items() if (part["kind"] == kind).any()])
        out.append(table)
    return out


def _mean_figure(row: Mapping) -> dict:
    """The Mean column of a paired frame row as a figure record (:mod:`sonodiff.stats`), in %."""
    value, low, high = (_value(row, f"mean_{s}") for s in ("mean", "ci_low", "ci_high"))
    if value is None:
        return not_available(NO_STRUCTURE)
    return {"value": value, "ci": [low, high] if low is not None and high is not None else None, "status": "ok",
            "n": [int(row["n_test"])], "n_patients": int(row["n_patients"]), "n_images": int(row["n_test"])}


def difference_rows(table_csv: str | Path) -> dict[str, list[tuple[str, str, dict, bool]]]:
    """The paired rows of a written table (its CSV) for the report's front page: per dataset,
    ``(comparison "b - a", FRONT_PAGE_FIGURE, figure of the Mean column, False)`` (False: higher
    Dice is better)."""
    df = pd.read_csv(table_csv)
    out: dict[str, list[tuple[str, str, dict, bool]]] = {}
    for row in df[df["kind"] == "paired difference"].to_dict("records"):
        comparison = str(row["source"]).removesuffix(PAIRED_SUFFIX)
        out.setdefault(str(row["dataset"]), []).append((comparison, FRONT_PAGE_FIGURE, _mean_figure(row), False))
    return out


def write_segmentation_table(metrics_paths: Iterable[str | Path], out_csv: str | Path,
                             out_md: str | Path, out_tex: str | Path,
                             reference: str = REFERENCE_SOURCE, bootstrap: Mapping | None = None) -> pd.DataFrame:
    """Read the segmentation records (datasets and sources in the given order) and write the table.

    ``bootstrap`` (``resamples``, ``seed``: ``metrics.bootstrap`` and the master seed, from the
    rule) sets the intervals, so that a change of them re-runs this table, not the training.
    """
    metrics = [read_segment_record(p) for p in metrics_paths]
    if bootstrap:
        metrics = [{**m, "bootstrap": {**m.get("bootstrap", {}), **bootstrap}} for m in metrics]
    df = build_table(metrics, reference)
    labels: dict[str, dict[str, str]] = {}
    for m in metrics:
        names = labels.setdefault(m["dataset"], {})
        names.update({k: v["label"] for k, v in m["structures"].items()})
    write_text(out_csv, df.to_csv(index=False, float_format="%.3f"))
    write_table(tables(df, labels), {"md": out_md, "tex": out_tex})
    return df
