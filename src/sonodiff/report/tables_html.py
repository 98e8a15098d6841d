"""Tables of ``results/tables/*.csv`` as standalone HTML pages for the Snakemake report.

The report shows HTML results inline (in a frame) but offers CSV only as a download, so each
table is rendered once more as a small page: every column of the CSV, numbers right-aligned and
rounded for reading, columns holding published values (their name contains ``published`` or
``paper``) shaded so that ours and theirs read side by side. The CSV itself stays the source.
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
}

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.2em; color: #111; }
h1 { font-size: 1.2em; }
table { border-collapse: collapse; font-size: 0.88em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.55em; }
th { background: #e8e8e8; text-align: center; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.published, th.published { background: #fff4d6; }
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


def table_to_html(df: pd.DataFrame, title: str, note: str | None = None) -> str:
    """A standalone HTML page showing ``df`` (no scripts, no external resources)."""
    published = [any(m in str(c).lower() for m in PUBLISHED_MARKERS) for c in df.columns]
    head = "".join(f"<th class=\"{'published' if p else ''}\">{html.escape(str(c))}</th>"
                   for c, p in zip(df.columns, published))
    body = []
    for row in df.itertuples(index=False):
        cells = []
        for value, pub in zip(row, published):
            text, numeric = _fmt(value)
            cls = " ".join(c for c in ("num" if numeric else "", "published" if pub else "") if c)
            cells.append(f"<td class=\"{cls}\">{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    note_html = f"<p class=\"note\">{html.escape(note)}</p>" if note else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        f"{note_html}</body></html>\n"
    )


def render_table_file(csv_path: str | Path, html_path: str | Path, title: str) -> Path:
    """Read one table CSV and write its HTML page atomically."""
    csv_path = Path(csv_path)
    try:
        df = pd.read_csv(csv_path, keep_default_na=True)
    except (OSError, ValueError, pd.errors.EmptyDataError) as err:
        raise InputError(csv_path, f"unreadable table ({err})") from err
    note = (f"{len(df)} rows, from {csv_path.name}; shaded columns hold the published values. "
            "n/a marks a cell that could not be computed (the table's reason column says why).")
    write_text(html_path, table_to_html(df, title, note))
    return Path(html_path)
