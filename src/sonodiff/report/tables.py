"""The papers' tables from the metrics JSONs, as CSV, Markdown and LaTeX, published values beside ours.

- ``fid``: Domínguez et al. 2024 table 1. One row per dataset; per variant, FID at the 1st and
  2nd max-pool (and pool3), each of ours followed by the published value.
- ``paired``: table 2. Rows LPIPS / SSIM / PSNR x mean / std. dev. / range; columns per variant
  and dataset, ours then published.
- ``physics``: the ultrasound-physics metrics (no published counterpart). Rows per dataset,
  metric, region and quantity; one column per variant.

Every figure of ours is shown with its 95% bootstrap interval over images, ``v [lo, hi]``. A
figure that could not be computed is ``n/a`` with a numbered note giving the reason (e.g. missing
pretrained weights); a cell without a published counterpart is ``–``. Our datasets map to the
paper's by name or format (:func:`sonodiff.report.published.paper_dataset`), variants by
``b_min`` (1 = baseline, < 1 = B-maps). The published values come from the paper's real data;
next to phantom datasets they are a reference point, not a target.

The tables are built as :class:`~sonodiff.report.table_writer.Table` and written (CSV with
numbers unrounded, Markdown, LaTeX) by :mod:`sonodiff.report.table_writer`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping, Sequence

from sonodiff.contracts.metrics_record import read_metrics_record
from sonodiff.errors import InputError
from sonodiff.report import published as pub
from sonodiff.report.table_writer import Cell, Table, write_table

LAYERS = {64: "1st MP", 192: "2nd MP", 768: "pre-aux", 2048: "pool3"}
PAIRED_ROWS = (("lpips", "LPIPS"), ("ssim", "SSIM"), ("psnr", "PSNR"))
STAT_NAMES = (("mean", "Mean"), ("std", "Std. Dev."), ("range", "Range"))


# ---------------------------------------------------------------- the three tables

def _variant_order(variants: Mapping[str, float]) -> list[str]:
    """Baseline-like variants (b_min 1) first, then the others, each alphabetically."""
    return sorted(variants, key=lambda v: (pub.paper_variant(variants[v]) != "baseline", v))


def _index(results: Iterable[Mapping]) -> dict[tuple[str, str], Mapping]:
    out = {}
    for res in results:
        out[(res["dataset"], res["variant"])] = res
    return out


def _published_note(formats: Mapping[str, str]) -> str:
    mapped = ", ".join(f"{d} -> {pub.paper_dataset(d, f) or 'none'}" for d, f in sorted(formats.items()))
    return (f"published: {pub.SOURCE} (the paper's real datasets; ours mapped as {mapped}); "
            "variants with b_min = 1 sit beside the paper's baseline, b_min < 1 beside its B-maps method.")


CI_NOTE = "[lo, hi]: 95% percentile bootstrap interval over images (resampling each image set)."


def fid_table(results: Sequence[Mapping], formats: Mapping[str, str], b_min: Mapping[str, float]) -> Table:
    """Table 1: FID per dataset (rows) and variant x layer (columns), ours then published."""
    by_key = _index(results)
    datasets = sorted(formats)
    variants = _variant_order(b_min)
    dims = sorted({int(d) for r in results for d in r.get("fid", {})}) or [64, 192]
    columns = []
    for v in variants:
        for d in dims:
            columns.append((v, LAYERS.get(d, str(d)), "ours"))
            if any(d in pv for ds in pub.FID.values() for pv in ds.values()):
                columns.append((v, LAYERS.get(d, str(d)), "published"))
    table = Table("fid", "FID scores across datasets (Inception max-pool features), synthetic vs real validation images",
                  ["Dataset", "Paper dataset"], columns)
    for ds in datasets:
        paper_ds = pub.paper_dataset(ds, formats[ds])
        cells = []
        for v, layer, kind in columns:
            d = next(k for k in dims if LAYERS.get(k, str(k)) == layer)
            if kind == "published":
                value = pub.FID.get(paper_ds or "", {}).get(pub.paper_variant(b_min[v]) or "", {}).get(d)
                cells.append(Cell(value, published=True))
            else:
                res = by_key.get((ds, v))
                cells.append(Cell.from_figure(res["fid"].get(str(d)) if res else None))
        table.rows.append(([ds, paper_ds or "–"], cells))
    table.notes = [CI_NOTE, _published_note(formats)]
    return table


def paired_table(results: Sequence[Mapping], formats: Mapping[str, str], b_min: Mapping[str, float]) -> Table:
    """Table 2: LPIPS/SSIM/PSNR x mean/std/range (rows), variant x dataset (columns), ours then published."""
    by_key = _index(results)
    datasets = sorted(formats)
    variants = _variant_order(b_min)
    columns = [(v, ds, kind) for v in variants for ds in datasets for kind in ("ours", "published")]
    table = Table("paired", "LPIPS, SSIM and PSNR between each synthetic image and the real image of its label map",
                  ["Metric", "Statistic"], columns)
    for metric, metric_name in PAIRED_ROWS:
        for stat, stat_name in STAT_NAMES:
            cells = []
            for v, ds, kind in columns:
                if kind == "published":
                    paper_ds = pub.paper_dataset(ds, formats[ds]) or ""
                    value = pub.PAIRED.get(pub.paper_variant(b_min[v]) or "", {}).get(paper_ds, {}) \
                        .get(metric, {}).get(stat)
                    cells.append(Cell(value, published=True))
                else:
                    res = by_key.get((ds, v))
                    cells.append(Cell.from_figure(res["paired"][metric][stat] if res else None))
            table.rows.append(([metric_name, stat_name], cells))
    table.notes = [CI_NOTE, "SSIM on images in [0, 1] (data_range 1, torchmetrics defaults); PSNR: mean of "
                   "per-image PSNR (dB); LPIPS: AlexNet, v0.1; std. dev. with ddof 0; range = max - min.",
                   _published_note(formats)]
    return table


def _physics_rows(res: Mapping) -> list[tuple[list[str], Mapping | None]]:
    """(row labels [metric, region, quantity], figure) pairs of one metrics JSON's physics section."""
    phys = res["physics"]
    rows: list[tuple[list[str], Mapping | None]] = [
        (["depth profile", "sector", "L1 synthetic vs real"], phys["depth_profile"]["l1"])]
    speckle = phys["speckle"]
    if speckle.get("status") == "n/a":
        rows.append((["speckle SNR", "–", "–"], speckle))
    rayleigh = f"{speckle['rayleigh_snr']:.2f}"
    for label, figs in speckle.get("labels", {}).items():
        rows += [(["speckle SNR", label, "synthetic"], figs["synthetic_snr"]),
                 (["speckle SNR", label, "real"], figs["real_snr"]),
                 (["speckle SNR", label, "|synthetic - real|"], figs["snr_abs_diff"]),
                 (["speckle SNR", label, f"|synthetic - {rayleigh}|"], figs["synthetic_rayleigh_dev"]),
                 (["speckle SNR", label, f"|real - {rayleigh}|"], figs["real_rayleigh_dev"])]
    wasserstein = phys["wasserstein"]
    if wasserstein.get("status") == "n/a":
        rows.append((["intensity W1", "–", "–"], wasserstein))
    else:
        rows += [(["intensity W1", label, "synthetic vs real"], fig) for label, fig in wasserstein.items()]
    gcnr = phys["gcnr"]
    if gcnr.get("status") == "n/a":
        rows.append((["gCNR", "–", "–"], gcnr))
    else:
        for pair, figs in gcnr.items():
            region = pair.replace("|", " vs ")
            rows += [(["gCNR", region, "synthetic"], figs["synthetic"]),
                     (["gCNR", region, "real"], figs["real"]),
                     (["gCNR", region, "|synthetic - real|"], figs["abs_diff"])]
    return rows


def physics_table(results: Sequence[Mapping], formats: Mapping[str, str], b_min: Mapping[str, float]) -> Table:
    """Table 3: physics metrics, rows per dataset / metric / region / quantity, one column per variant."""
    by_key = _index(results)
    variants = _variant_order(b_min)
    table = Table("physics", "Ultrasound-physics metrics: depth profile, speckle SNR, per-label intensity "
                  "distributions (Wasserstein-1) and gCNR, synthetic vs real validation images",
                  ["Dataset", "Metric", "Region", "Quantity"], [(v,) for v in variants])
    for ds in sorted(formats):
        per_variant = {v: dict((tuple(k), f) for k, f in _physics_rows(by_key[(ds, v)]))
                       for v in variants if (ds, v) in by_key}
        order: list[tuple[str, ...]] = []
        for rows in per_variant.values():
            order += [k for k in rows if k not in order]
        for key in order:
            table.rows.append(([ds, *key], [Cell.from_figure(per_variant.get(v, {}).get(key)) for v in variants]))
    table.notes = [CI_NOTE, "Intensities p/255; speckle SNR = mean/std of the envelope 10^((D/20)(p/255 - 1)) in "
                   "eroded label regions (Rayleigh: 1.91); W1 on [0, 1]; gCNR = 1 - histogram overlap "
                   "(Rodriguez-Molares et al. 2020); lower |differences| mean closer to the real images."]
    return table


BUILDERS = {"fid": fid_table, "paired": paired_table, "physics": physics_table}


def make_tables(metrics_paths: Sequence[str | Path], formats: Mapping[str, str], b_min: Mapping[str, float],
                outputs: Mapping[str, Mapping[str, str | Path]]) -> dict[str, Table]:
    """Read the metrics records and write each table in ``outputs`` ({table: {csv|md|tex: path}}).

    ``formats``: dataset -> config format; ``b_min``: variant -> its resolved ``diffusion.b_min``.
    """
    results = [read_metrics_record(path) for path in metrics_paths]
    tables = {}
    for name, paths in outputs.items():
        if name not in BUILDERS:
            raise InputError("make_tables", f"unknown table {name!r}; known: {sorted(BUILDERS)}")
        tables[name] = BUILDERS[name](results, formats, b_min)
        write_table(tables[name], paths)
    return tables
