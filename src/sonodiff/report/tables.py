"""The papers' tables from the metrics records, as CSV, Markdown and LaTeX, published values beside ours.

- ``fid``: Domínguez et al. 2024 table 1, one row per dataset and Inception layer (the paper has
  one row per dataset and the layers as columns; ours carry more per layer). Per variant: FID as
  the papers compute it (no interval: it is biased upward at small sets), FID bias-corrected with
  its interval, KID with its interval, the published FID; then per variant the paired difference
  variant - reference of FID (bias-corrected) and KID.
- ``paired``: table 2. Rows LPIPS / SSIM / PSNR x mean / std. dev. / range; columns per variant
  and dataset, ours then published, then the paired difference of the means.
- ``physics``: the ultrasound-physics metrics (no published counterpart). Rows per dataset,
  metric, region and quantity; one column per variant, then the paired differences.

Every figure of ours is shown with its 95% bootstrap interval over patients, ``v [lo, hi]``
(:mod:`sonodiff.stats`); each table's notes say, per dataset, on how many images and patients
the figures rest. A difference column is ``variant - reference`` (the baseline) on the same
patients drawn for both (:mod:`sonodiff.metrics.compare`). A figure that could not be computed
is ``n/a`` with a numbered note giving the reason (e.g. missing pretrained weights); a cell
without a counterpart is ``–``. Our datasets map to the paper's by name or format
(:func:`sonodiff.report.published.paper_dataset`), variants by ``b_min`` (1 = baseline, < 1 =
B-maps). The published values come from the paper's real data; next to phantom datasets they are
a reference point, not a target.

The tables are built as :class:`~sonodiff.report.table_writer.Table` and written (CSV with
numbers unrounded, Markdown, LaTeX) by :mod:`sonodiff.report.table_writer`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping, Sequence

from sonodiff.contracts.metrics_record import read_differences, read_metrics_record
from sonodiff.errors import InputError
from sonodiff.report import published as pub
from sonodiff.report.table_writer import Cell, Table, count_of, nested, write_table

LAYERS = {64: "1st MP", 192: "2nd MP", 768: "pre-aux", 2048: "pool3"}
PAIRED_ROWS = (("lpips", "LPIPS"), ("ssim", "SSIM"), ("psnr", "PSNR"))
STAT_NAMES = (("mean", "Mean"), ("std", "Std. Dev."), ("range", "Range"))


# ---------------------------------------------------------------- the three tables

def _variant_order(variants: Mapping[str, float]) -> list[str]:
    """Baseline-like variants (b_min 1) first, then the others, each alphabetically."""
    return sorted(variants, key=lambda v: (pub.paper_variant(variants[v]) != "baseline", v))


def _index(results: Iterable[Mapping]) -> dict[tuple[str, str], Mapping]:
    return {(res["dataset"], res["variant"]): res for res in results}


def _published_note(formats: Mapping[str, str]) -> str:
    mapped = ", ".join(f"{d} -> {pub.paper_dataset(d, f) or 'none'}" for d, f in sorted(formats.items()))
    return (f"published: {pub.SOURCE} (the paper's real datasets; ours mapped as {mapped}); "
            "variants with b_min = 1 sit beside the paper's baseline, b_min < 1 beside its B-maps method.")


CI_NOTE = ("[lo, hi]: 95% percentile bootstrap interval over patients (a patient's synthetic and real images "
           "drawn together; unconditional samples one by one).")


def _compared(differences: Mapping[str, Mapping], variants: Sequence[str]) -> list[str]:
    """Variants that some dataset compares with its reference, in table order."""
    return [v for v in variants if any(v in d.get("variants", {}) for d in differences.values())]


def _sign_note(differences: Mapping[str, Mapping]) -> str:
    refs = sorted({d["reference"] for d in differences.values()})
    return (f"Δ columns: variant minus {', '.join(refs)} on the same patients drawn for both (paired bootstrap); "
            "an interval that excludes 0 says the variants differ.") if refs else ""


def _counts_note(results: Sequence[Mapping], kind: str = "images") -> str:
    """Per dataset, how many images and patients the figures rest on (from the first variant's record)."""
    parts = []
    for ds in sorted({r["dataset"] for r in results}):
        c = next(r for r in results if r["dataset"] == ds).get("counts", {})
        if kind == "pairs":
            parts.append(f"{ds}: {count_of(c.get('pairs'), 'pair')} of {count_of(c.get('pair_patients'), 'patient')}")
        else:
            syn = c.get("synthetic_patients")
            parts.append(f"{ds}: {count_of(c.get('synthetic_images'), 'synthetic image')}"
                         + (f" of {count_of(syn, 'patient')}" if syn else " (unconditional)")
                         + f", {count_of(c.get('real_images'), 'real image')} of {count_of(c.get('real_patients'), 'patient')}")
    return "n: " + "; ".join(parts) + "."


def fid_table(results: Sequence[Mapping], differences: Mapping[str, Mapping], formats: Mapping[str, str],
              b_min: Mapping[str, float]) -> Table:
    """Table 1: FID and KID per dataset and layer (rows), variant x figure (columns), then Δ columns."""
    by_key = _index(results)
    variants = _variant_order(b_min)
    dims = sorted({int(d) for r in results for d in r.get("fid", {})}) or [64, 192]
    columns = []
    for v in variants:
        columns += [(v, "FID"), (v, "FID bias-corr."), (v, "KID")]
        columns.append((v, "published"))
    compared = _compared(differences, variants)
    columns += [(f"Δ {v}", kind) for v in compared for kind in ("FID bias-corr.", "KID")]
    table = Table("fid", "FID (Inception max-pool features) and KID, synthetic vs real validation images",
                  ["Dataset", "Paper dataset", "Layer"], columns)
    warnings = []
    for ds in sorted(formats):
        paper_ds = pub.paper_dataset(ds, formats[ds])
        for d in dims:
            cells = []
            for v, kind in columns:
                if v.startswith("Δ "):
                    fig = nested(differences.get(ds), "variants", v[2:], "fid" if kind.startswith("FID") else "kid", str(d))
                    cells.append(Cell.from_figure(fig))
                    continue
                res = by_key.get((ds, v))
                fid = nested(res, "fid", str(d))
                if kind == "published":
                    value = pub.FID.get(paper_ds or "", {}).get(pub.paper_variant(b_min[v]) or "", {}).get(d)
                    cells.append(Cell(value, published=True))
                elif kind == "FID":
                    plain = dict(fid, value=fid.get("estimate"), ci=None) if fid and fid.get("status") == "ok" else fid
                    cells.append(Cell.from_figure(plain))
                else:
                    cells.append(Cell.from_figure(fid if kind.startswith("FID") else nested(res, "kid", str(d))))
            table.rows.append(([ds, paper_ds or "–", LAYERS.get(d, str(d))], cells))
            warning = next((w for v in variants if (w := nested(by_key.get((ds, v)), "fid", str(d), "warning"))), None)
            if warning:   # the real set's size against the dimension: the same for every variant
                warnings.append(f"{ds}, {LAYERS.get(d, d)}: {warning}")
    table.notes = [CI_NOTE, _counts_note(results),
                   "FID: as the papers compute it (pytorch-fid), biased upward at these sizes; FID bias-corr.: "
                   "2 FID - mean of the bootstrap FIDs with the basic interval; KID: unbiased MMD^2, cubic kernel.",
                   _sign_note(differences), *(f"Warning: {w}." for w in warnings), _published_note(formats)]
    table.notes = [n for n in table.notes if n]
    return table


def paired_table(results: Sequence[Mapping], differences: Mapping[str, Mapping], formats: Mapping[str, str],
                 b_min: Mapping[str, float]) -> Table:
    """Table 2: LPIPS/SSIM/PSNR x mean/std/range (rows), variant x dataset (columns), ours then published, Δ."""
    by_key = _index(results)
    datasets = sorted(formats)
    variants = _variant_order(b_min)
    columns = [(v, ds, kind) for v in variants for ds in datasets for kind in ("ours", "published")]
    columns += [(f"Δ {v}", ds, "ours") for v in _compared(differences, variants) for ds in datasets]
    table = Table("paired", "LPIPS, SSIM and PSNR between each image generated from an undeformed validation "
                  "label map and the real image of that map", ["Metric", "Statistic"], columns)
    for metric, metric_name in PAIRED_ROWS:
        for stat, stat_name in STAT_NAMES:
            cells = []
            for v, ds, kind in columns:
                if v.startswith("Δ "):
                    fig = nested(differences.get(ds), "variants", v[2:], "paired", metric, stat)
                    cells.append(Cell.from_figure(fig) if stat == "mean" else Cell(None))
                elif kind == "published":
                    paper_ds = pub.paper_dataset(ds, formats[ds]) or ""
                    value = pub.PAIRED.get(pub.paper_variant(b_min[v]) or "", {}).get(paper_ds, {}) \
                        .get(metric, {}).get(stat)
                    cells.append(Cell(value, published=True))
                else:
                    cells.append(Cell.from_figure(nested(by_key.get((ds, v)), "paired", metric, stat)))
            table.rows.append(([metric_name, stat_name], cells))
    table.notes = [CI_NOTE.replace("(a patient's synthetic and real images drawn together; unconditional samples "
                                   "one by one)", "(the pairs' patients)"), _counts_note(results, "pairs"),
                   "SSIM on images in [0, 1] (data_range 1, torchmetrics defaults); PSNR: mean of "
                   "per-image PSNR (dB); LPIPS: AlexNet, v0.1; std. dev. with ddof 0; range = max - min.",
                   _sign_note(differences), _published_note(formats)]
    table.notes = [n for n in table.notes if n]
    return table


def _physics_rows(res: Mapping | None) -> dict[tuple[str, ...], Mapping]:
    """(metric, region, quantity) -> figure of a record's (or a difference's) ``physics.rows``."""
    rows = nested(res, "physics", "rows") or []
    return {(r["metric"], r["region"], r["quantity"]): r for r in rows}


def physics_table(results: Sequence[Mapping], differences: Mapping[str, Mapping], formats: Mapping[str, str],
                  b_min: Mapping[str, float]) -> Table:
    """Table 3: physics metrics, rows per dataset / metric / region / quantity, one column per variant, then Δ."""
    by_key = _index(results)
    variants = _variant_order(b_min)
    compared = _compared(differences, variants)
    table = Table("physics", "Ultrasound-physics metrics: depth profile, speckle SNR, per-label intensity "
                  "distributions (Wasserstein-1) and gCNR, synthetic vs real validation images",
                  ["Dataset", "Metric", "Region", "Quantity"], [(v,) for v in variants] + [(f"Δ {v}",) for v in compared])
    for ds in sorted(formats):
        per_variant = {v: _physics_rows(by_key.get((ds, v))) for v in variants}
        per_diff = {v: _physics_rows(nested(differences.get(ds), "variants", v)) for v in compared}
        order: list[tuple[str, ...]] = []
        for rows in per_variant.values():
            order += [k for k in rows if k not in order]
        for key in order:
            cells = [Cell.from_figure(per_variant[v].get(key)) for v in variants]
            cells += [Cell.from_figure(per_diff[v].get(key)) for v in compared]
            table.rows.append(([ds, *key], cells))
    table.notes = [CI_NOTE, _counts_note(results), _sign_note(differences),
                   "Intensities p/255; speckle SNR = mean/std of the envelope 10^((D/20)(p/255 - 1)) on small patches "
                   "inside one label without clipped pixels (fully developed speckle would read 1.91, which scan "
                   "conversion and resizing move real images away from: compare with the real row); W1 on [0, 1]; "
                   "gCNR = 1 - overlap of the pixels pooled over the set (Rodriguez-Molares et al. 2020), with the "
                   "value two samples of one distribution of these sizes give; "
                   "lower L1 and W1, and synthetic - real nearer 0, mean closer to the real images."]
    table.notes = [n for n in table.notes if n]
    return table


BUILDERS = {"fid": fid_table, "paired": paired_table, "physics": physics_table}


def make_tables(metrics_paths: Sequence[str | Path], differences_paths: Sequence[str | Path],
                formats: Mapping[str, str], b_min: Mapping[str, float],
                outputs: Mapping[str, Mapping[str, str | Path]]) -> dict[str, Table]:
    """Read the metrics records and the variant differences; write each table in ``outputs``
    ({table: {csv|md|tex: path}}).

    ``formats``: dataset -> config format; ``b_min``: variant -> its resolved ``diffusion.b_min``.
    """
    results = [read_metrics_record(path) for path in metrics_paths]
    differences = {d["dataset"]: d for d in (read_differences(path) for path in differences_paths)}
    tables = {}
    for name, paths in outputs.items():
        if name not in BUILDERS:
            raise InputError("make_tables", f"unknown table {name!r}; known: {sorted(BUILDERS)}")
        tables[name] = BUILDERS[name](results, differences, formats, b_min)
        write_table(tables[name], paths)
    return tables
