"""The report's front page: do B-maps help, and is a segmenter trained on synthetic images as good?

One verdict table of paired differences, per dataset, then each dataset's depth-profile figure
(real vs every variant), as an HTML fragment that the report's landing text includes
(``workflow/report/workflow.rst``), and the same table as CSV and Markdown.

Rows (each a paired difference with its 95% patient-level interval, :mod:`sonodiff.metrics.compare`):
FID (bias-corrected) and KID at the first configured Inception layer, the means of LPIPS, SSIM
and PSNR over the undeformed pairs, the depth-profile L1, and the segmentation rows that compare
sources on the same test images (:func:`sonodiff.report.segmentation_table.difference_rows`).
The verdict reads the interval: it names the better side when the interval excludes 0 (lower
is better for FID, KID, LPIPS and L1; higher for SSIM, PSNR and Dice), says "not resolved" when it
covers 0, and draws none below :data:`MIN_PATIENTS` patients (the default config's phantoms have
2-3 validation and test patients: their intervals are shown, but they cannot carry a verdict).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Mapping, Sequence

from sonodiff.contracts.metrics_record import read_differences
from sonodiff.io import write_text
from sonodiff.report.segmentation_table import difference_rows
from sonodiff.report.table_writer import Cell, Table, count_of, nested, to_markdown, write_table
from sonodiff.report.tables_html import TABLE_CSS, markdown_html

#: (record path, figure name, True when lower is better).
ROWS = (
    (("fid", None), "FID, bias-corrected ({layer})", True),
    (("kid", None), "KID ({layer})", True),
    (("paired", "lpips", "mean"), "LPIPS, mean over pairs", True),
    (("paired", "ssim", "mean"), "SSIM, mean over pairs", False),
    (("paired", "psnr", "mean"), "PSNR (dB), mean over pairs", False),
)
DEPTH_ROW = ("depth profile", "sector", "L1 synthetic vs real")


#: Patients below which no verdict is drawn: a bootstrap over 2-4 clusters has a handful of
#: distinct resamples, and its interval understates the spread between patients.
MIN_PATIENTS = 5


def patients(fig: Mapping) -> int | None:
    """Patients a figure's interval resampled (the real set's, the pairs' or the test images')."""
    clusters = fig.get("n_clusters") or ([fig["n_patients"]] if "n_patients" in fig else [])
    return int(clusters[-1]) if clusters else None


def verdict(fig: Mapping | None, lower_is_better: bool, a: str, b: str) -> str:
    """Which of ``a`` (reference) and ``b`` the interval of ``b - a`` favours, if it excludes 0
    and rests on at least :data:`MIN_PATIENTS` patients."""
    if not fig or fig.get("status") != "ok":
        return "n/a"
    ci = fig.get("ci")
    if not ci:
        return "no interval (too few patients)"
    n = patients(fig)
    if n is not None and n < MIN_PATIENTS:
        return f"none: {count_of(n, 'patient')} (< {MIN_PATIENTS})"
    if ci[0] <= 0 <= ci[1]:
        return "not resolved (interval covers 0)"
    b_lower = ci[1] < 0
    return f"{b if b_lower == lower_is_better else a} better"


def _n(fig: Mapping | None) -> str:
    """Patients (of the real set, the pairs or the test images) and synthetic or test images."""
    if not fig or fig.get("status") != "ok":
        return "–"
    n, images = patients(fig), fig.get("n") or []
    return ", ".join([count_of(n, "patient")] * (n is not None) + [count_of(images[0], "image")] * bool(images))


def variant_rows(diff: Mapping) -> list[tuple[list[str], Mapping | None, bool]]:
    """(labels, figure, lower is better) of one dataset's variant differences."""
    out = []
    ref = diff["reference"]
    for variant, sections in diff["variants"].items():
        label = f"{variant} - {ref}"
        dims = sorted(int(d) for d in sections.get("fid", {}))
        for path, name, lower in ROWS:
            if path[1] is None:
                if not dims:
                    continue
                fig = nested(sections, path[0], str(dims[0]))
                name = name.format(layer=f"{dims[0]} dims")
            else:
                fig = nested(sections, *path)
            if fig is not None:   # absent: not configured (n/a figures carry their reason and stay)
                out.append(([label, name], fig, lower))
        depth = next((r for r in nested(sections, "physics", "rows") or []
                      if (r["metric"], r["region"], r["quantity"]) == DEPTH_ROW), None)
        out.append(([label, "depth-profile L1"], depth, True))
    return out


def verdict_table(differences: Sequence[Mapping], segmentation: Mapping[str, Sequence] | None = None) -> Table:
    """The verdict table: one row per dataset, comparison and figure.

    ``segmentation``: dataset -> rows ``(comparison "b - a", figure name, figure, lower is better)``.
    """
    table = Table("verdict", "Paired differences per dataset, with 95% intervals over patients",
                  ["Dataset", "Comparison", "Figure", "n", "Verdict"], [("b - a [95% interval]",)])
    for diff in sorted(differences, key=lambda d: d["dataset"]):
        ds = diff["dataset"]
        rows = variant_rows(diff)
        rows += [([comparison, name], fig, lower) for comparison, name, fig, lower in (segmentation or {}).get(ds, [])]
        for (comparison, name), fig, lower in rows:
            b, a = [s.strip() for s in comparison.split(" - ", 1)]   # "b - a"
            table.rows.append(([ds, comparison, name, _n(fig), verdict(fig, lower, a, b)], [Cell.from_figure(fig)]))
    table.notes = ["b - a: the difference on the same patients (a paired bootstrap), 95% percentile interval over "
                   "patients; FID bias-corrected with the basic interval. Lower is better for FID, KID, LPIPS and "
                   "L1, higher for SSIM, PSNR and Dice. No verdict below " + str(MIN_PATIENTS) + " patients: a bootstrap over "
                   "fewer clusters has a handful of distinct resamples and understates the spread between patients."]
    return table


def front_page_html(table: Table, figures: Mapping[str, str | Path]) -> str:
    """The HTML fragment: the verdict table, then one depth-profile figure per dataset (embedded)."""
    parts = [f"<style>{TABLE_CSS}</style>", "<h2>Verdict</h2>", markdown_html(to_markdown(table))]
    for ds, path in sorted(figures.items()):
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        parts.append(f"<h3>{html.escape(ds)}: depth profile, real vs each variant</h3>"
                     f"<img alt=\"depth profile of {html.escape(ds)}\" style=\"max-width: 42em\" "
                     f"src=\"data:image/png;base64,{data}\">")
    return "\n".join(parts) + "\n"


def write_front_page(differences_paths: Sequence[str | Path], figures: Mapping[str, str | Path],
                     out_html: str | Path, tables: Mapping[str, str | Path],
                     segmentation_csv: str | Path | None = None) -> Table:
    """Read the variant differences (and the segmentation table's paired rows, if any); write the
    front page (``out_html``) and the verdict table (``tables``: {csv|md|tex: path})."""
    segmentation = difference_rows(segmentation_csv) if segmentation_csv else None
    table = verdict_table([read_differences(p) for p in differences_paths], segmentation)
    write_table(table, tables)
    write_text(out_html, front_page_html(table, figures))
    return table
