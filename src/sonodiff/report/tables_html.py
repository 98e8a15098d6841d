"""Tables of ``results/tables/`` as standalone HTML pages for the Snakemake report.

The report shows HTML results inline (in a frame) but offers CSV and Markdown only as downloads,
so each table is rendered once more as a small page: first the table in the paper's layout (the
stage's Markdown file: our figures with their 95% intervals ``v [lo, hi]``, the published values
beside them, numbered n/a reasons), then every column of the CSV (numbers unrounded) in a
collapsible section. In the CSV part, columns holding published values (their name contains
``published`` or ``paper``) and rows whose ``kind`` is ``published`` are shaded, so that ours and
theirs read side by side. The files themselves stay the source.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from sonodiff.errors import InputError
from sonodiff.io import write_text

PUBLISHED_MARKERS = ("published", "paper")
#: Page titles of the tables the metrics and segment stages write.
TABLE_TITLES = {
    "fid": "Table 1: FID (Inception 1st/2nd max-pool and 2048), baseline vs B-maps",
    "paired": "Table 2: paired LPIPS, SSIM and PSNR against the real image of each label map",
    "physics": "Table 3: ultrasound-physics metrics (depth profile, speckle, per-label intensity, gCNR)",
    "segmentation": "Table 4: U-Net trained on real or synthetic images, Dice on the real test split",
    "classification": "Table 5: ResNet trained on real, real + generated or generated images, AUC (Freiche et al.)",
}

TABLE_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.2em; color: #111; }
h1 { font-size: 1.2em; }
table { border-collapse: collapse; font-size: 0.88em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.55em; }
th { background: #e8e8e8; text-align: center; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.published, th.published, tr.published td { background: #fff4d6; }
details { margin-top: 1.2em; } summary { cursor: pointer; font-weight: 600; }
.layout table { margin-bottom: 0.8em; } .layout td { text-align: right; }
.layout td:first-child { text-align: left; }
p.note { font-size: 0.85em; color: #444; }
"""


def _fmt(value: object) -> tuple[str, bool]:
    """Cell text and whether it is numeric."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a", False
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(value), True
    if isinstance(value, (float, np.floating)):
        mag = abs(float(value))
        text = f"{value:.3g}" if (mag and (mag < 1e-2 or mag >= 1e5)) else f"{value:.3f}".rstrip("0").rstrip(".")
        return text, True
    return str(value), False


def csv_table_html(df: pd.DataFrame) -> str:
    """An HTML table of every cell of ``df`` (published columns and rows marked)."""
    published = [any(m in str(c).lower() for m in PUBLISHED_MARKERS) for c in df.columns]
    head = "".join(f"<th class=\"{'published' if p else ''}\">{html.escape(str(c))}</th>"
                   for c, p in zip(df.columns, published))
    kind = list(df["kind"]) if "kind" in df.columns else [None] * len(df)
    body = []
    for row, row_kind in zip(df.itertuples(index=False), kind):
        cells = []
        for value, pub in zip(row, published):
            text, numeric = _fmt(value)
            cls = " ".join(c for c in ("num" if numeric else "", "published" if pub else "") if c)
            cells.append(f"<td class=\"{cls}\">{html.escape(text)}</td>")
        row_cls = " class=\"published\"" if str(row_kind).lower() == "published" else ""
        body.append(f"<tr{row_cls}>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def markdown_html(text: str) -> str:
    """Markdown (with pipe tables) as HTML; raw HTML in the source is escaped, not passed through."""
    import markdown

    return markdown.markdown(html.escape(text, quote=False), extensions=["tables"])


def table_to_html(df: pd.DataFrame, title: str, note: str | None = None, layout_md: str | None = None) -> str:
    """A standalone HTML page showing the paper-layout Markdown (if given) and every cell of
    ``df`` (no scripts, no external resources)."""
    note_html = f"<p class=\"note\">{html.escape(note)}</p>" if note else ""
    table = csv_table_html(df)
    if layout_md is not None:
        body = (f"<div class=\"layout\">{markdown_html(layout_md)}</div>"
                f"<details><summary>All numbers (CSV, unrounded)</summary>{table}{note_html}</details>")
    else:
        body = table + note_html
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{TABLE_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{body}</body></html>\n"
    )


def render_table_file(csv_path: str | Path, html_path: str | Path, title: str,
                      md_path: str | Path | None = None) -> Path:
    """Read one table's CSV (and its Markdown layout, if given) and write its HTML page atomically."""
    csv_path = Path(csv_path)
    try:
        df = pd.read_csv(csv_path, keep_default_na=True)
    except (OSError, ValueError, pd.errors.EmptyDataError) as err:
        raise InputError(csv_path, f"unreadable table ({err})") from err
    layout = None
    if md_path is not None:
        try:
            layout = Path(md_path).read_text()
        except (OSError, UnicodeDecodeError) as err:
            raise InputError(md_path, f"unreadable table ({err})") from err
    note = (f"{len(df)} rows, from {csv_path.name}; shaded cells hold the published values; "
            "n/a marks a value that could not be computed (the reason column or the notes say why).")
    write_text(html_path, table_to_html(df, title, note, layout))
    return Path(html_path)
