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

The CSV keeps the same layout with numbers unrounded: each of our columns becomes three
(``<column>``, ``<column> ci_low``, ``<column> ci_high``), published columns have ``published``
in their name, an n/a cell is empty, and a final ``reason`` column says why.

:class:`Table` and :func:`write_table` are the shared writers; other stages' tables (e.g.
segmentation) may build a :class:`Table` and write it the same way.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from sonodiff.errors import InputError
from sonodiff.io import read_json, write_text
from sonodiff.report import published as pub

DIGITS = 3
LAYERS = {64: "1st MP", 192: "2nd MP", 768: "pre-aux", 2048: "pool3"}
PAIRED_ROWS = (("lpips", "LPIPS"), ("ssim", "SSIM"), ("psnr", "PSNR"))
STAT_NAMES = (("mean", "Mean"), ("std", "Std. Dev."), ("range", "Range"))
FORMATS = ("csv", "md", "tex")


@dataclass
class Cell:
    """One value cell: ours (with CI or an n/a reason) or a published value (``published=True``).

    ``value`` None with ``reason`` None means "no such value" (shown as –).
    """

    value: float | None
    ci: Sequence[float] | None = None
    reason: str | None = None
    published: bool = False

    @classmethod
    def from_figure(cls, fig: Mapping | None) -> "Cell":
        """A cell from a metrics figure record (``value``, ``ci``, ``status``, ``reason``)."""
        if fig is None:
            return cls(None)
        if fig.get("status") != "ok" or fig.get("value") is None:
            return cls(None, reason=fig.get("reason") or "not computed")
        return cls(float(fig["value"]), fig.get("ci"))


@dataclass
class Table:
    """A table: row-label columns, hierarchical value-column labels (equal depth), rows, notes."""

    name: str
    caption: str
    index: list[str]
    columns: list[tuple[str, ...]]
    rows: list[tuple[list[str], list[Cell]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def reasons(self) -> list[str]:
        """Distinct n/a reasons in order of first appearance (numbered notes)."""
        seen: list[str] = []
        for _, cells in self.rows:
            for cell in cells:
                if cell.reason and cell.reason not in seen:
                    seen.append(cell.reason)
        return seen


def _num(value: float, like: float | None = None) -> str:
    """Three decimals as in the papers; scientific when ``like`` (default: the value) is below 0.01."""
    like = value if like is None else like
    if not math.isfinite(value):
        return str(value)
    return f"{value:.2e}" if 0 < abs(like) < 10 ** -(DIGITS - 1) else f"{value:.{DIGITS}f}"


def _text(cell: Cell, reasons: list[str], latex: bool = False) -> str:
    if cell.reason:
        k = reasons.index(cell.reason) + 1
        return f"n/a$^{{{k}}}$" if latex else f"n/a [{k}]"
    if cell.value is None:
        return "--" if latex else "–"
    text = _num(cell.value)
    if cell.ci:
        ci = f"[{_num(cell.ci[0], cell.value)}, {_num(cell.ci[1], cell.value)}]"
        text += f" {{\\tiny {ci}}}" if latex else f" {ci}"
    return text


def _flat(label: tuple[str, ...]) -> str:
    return " ".join(part for part in label if part)


def to_csv(table: Table) -> str:
    """CSV in the table's layout: numbers unrounded, CI bounds in their own columns, a reason column."""
    header = list(table.index)
    kinds = _column_kinds(table)
    for label, published in zip(table.columns, kinds):
        name = _flat(label)
        header += [name] if published else [name, f"{name} ci_low", f"{name} ci_high"]
    header.append("reason")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for labels, cells in table.rows:
        row: list[object] = list(labels)
        reasons: list[str] = []
        for cell, published in zip(cells, kinds):
            value = "" if cell.value is None else repr(float(cell.value))
            if published:
                row.append(value)
            else:
                low, high = (repr(float(cell.ci[0])), repr(float(cell.ci[1]))) if cell.ci else ("", "")
                row += [value, low, high]
            if cell.reason and cell.reason not in reasons:
                reasons.append(cell.reason)
        row.append("; ".join(reasons))
        writer.writerow(row)
    return buffer.getvalue()


def _column_kinds(table: Table) -> list[bool]:
    """Whether each value column holds published values (from its label's last part)."""
    return [label[-1] == "published" for label in table.columns]


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|")


def to_markdown(table: Table) -> str:
    """A Markdown table (flattened header), numbered n/a notes and the table's notes below it."""
    reasons = table.reasons()
    header = [_md_escape(x) for x in list(table.index) + [_flat(label) for label in table.columns]]
    lines = [f"**{table.caption}**", "", "| " + " | ".join(header) + " |",
             "| " + " | ".join(["---"] * len(table.index) + ["---:"] * len(table.columns)) + " |"]
    for labels, cells in table.rows:
        texts = [_md_escape(x) for x in labels] + [_text(c, reasons) for c in cells]
        lines.append("| " + " | ".join(texts) + " |")
    lines.append("")
    lines += [f"- [{k}] n/a: {reason}" for k, reason in enumerate(reasons, 1)]
    lines += [f"- {note}" for note in table.notes]
    return "\n".join(lines) + "\n"


_TEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                "–": "--", "−": "-", "|": r"$|$", "<": r"$<$", ">": r"$>$"}


def tex_escape(text: str) -> str:
    """Escape LaTeX special characters in plain text."""
    return "".join(_TEX_ESCAPES.get(ch, ch) for ch in str(text))


def to_latex(table: Table) -> str:
    """A booktabs LaTeX table with multi-level column headers and the notes under it."""
    reasons = table.reasons()
    n_idx, depth = len(table.index), len(table.columns[0]) if table.columns else 1
    lines = ["% generated by sonodiff.report.tables; needs \\usepackage{booktabs}",
             "\\begin{table}[t]", "\\centering", f"\\caption{{{tex_escape(table.caption)}}}",
             f"\\label{{tab:{table.name}}}", "\\scriptsize",
             "\\begin{tabular}{" + "l" * n_idx + "r" * len(table.columns) + "}", "\\toprule"]
    for level in range(depth):
        cells = [""] * n_idx if level < depth - 1 else [tex_escape(i) for i in table.index]
        rules = []
        col = 0
        while col < len(table.columns):
            span = 1
            while (col + span < len(table.columns)
                   and table.columns[col + span][:level + 1] == table.columns[col][:level + 1]):
                span += 1
            label = tex_escape(table.columns[col][level])
            if level < depth - 1:
                cells.append(f"\\multicolumn{{{span}}}{{c}}{{{label}}}" if span > 1 else label)
                if label:
                    first = n_idx + col + 1
                    rules.append(f"\\cmidrule(lr){{{first}-{first + span - 1}}}")
            else:
                cells += [tex_escape(table.columns[c][level]) for c in range(col, col + span)]
            col += span
        lines.append(" & ".join(cells) + " \\\\")
        if rules:
            lines.append(" ".join(rules))
    lines.append("\\midrule")
    for labels, cells in table.rows:
        lines.append(" & ".join([tex_escape(x) for x in labels] + [_text(c, reasons, latex=True) for c in cells])
                     + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "", "\\smallskip\\footnotesize"]
    lines += [f"$^{{{k}}}$ n/a: {tex_escape(reason)}\\\\" for k, reason in enumerate(reasons, 1)]
    lines += [f"{tex_escape(note)}\\\\" for note in table.notes]
    lines.append("\\end{table}")
    return "\n".join(lines) + "\n"


def write_table(table: Table, outputs: Mapping[str, str | Path]) -> None:
    """Write ``table`` to the paths in ``outputs`` (keys ``csv``, ``md``, ``tex``), each atomically."""
    writers = {"csv": to_csv, "md": to_markdown, "tex": to_latex}
    for fmt, path in outputs.items():
        write_text(path, writers[fmt](table))


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
    """Read the metrics JSONs and write each table in ``outputs`` ({table: {csv|md|tex: path}}).

    ``formats``: dataset -> config format; ``b_min``: variant -> its resolved ``diffusion.b_min``.
    """
    results = []
    for path in metrics_paths:
        try:
            res = read_json(path)
        except (OSError, ValueError) as err:
            raise InputError(path, f"unreadable metrics ({err})") from err
        for key in ("dataset", "variant", "fid", "paired", "physics"):
            if key not in res:
                raise InputError(path, f"metrics JSON lacks {key!r}")
        results.append(res)
    tables = {}
    for name, paths in outputs.items():
        if name not in BUILDERS:
            raise InputError("make_tables", f"unknown table {name!r}; known: {sorted(BUILDERS)}")
        tables[name] = BUILDERS[name](results, formats, b_min)
        write_table(tables[name], paths)
    return tables
