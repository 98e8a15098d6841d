"""The one table writer: a :class:`Table` of :class:`Cell` values as CSV, Markdown and LaTeX.

Every table of the results (the metrics stage's fid, paired and physics tables and the
segmentation table) is built as a :class:`Table` and written here, so a value, an interval, an
n/a reason and a published value look the same in every table, and plain text is escaped for
LaTeX by one function, :func:`tex_escape`.

A cell of ours reads ``v [lo, hi]`` (the 95% bootstrap interval; ``v ± s [lo, hi]`` when it
carries a standard deviation), with ``Table.digits`` decimals and scientific notation for
magnitudes below ``Table.scientific_below`` (0.01; 0 turns it off). A figure that could not be
computed is ``n/a`` with a numbered note giving the reason; a cell without a value and without a
reason (no such value, e.g. no published counterpart) is ``–``.

The CSV keeps the layout with numbers unrounded: each of our columns becomes three
(``<column>``, ``<column> ci_low``, ``<column> ci_high``), published columns (last label part
``published``) one, an n/a cell is empty, and a final ``reason`` column says why.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from sonodiff.io import write_text

DIGITS = 3
#: Values of magnitude below this are written in scientific notation.
SCIENTIFIC_BELOW = 10 ** -(DIGITS - 1)
FORMATS = ("csv", "md", "tex")
PM_TEX = r"$\pm$"


def nested(node: object, *keys: str) -> object | None:
    """``node[k1][k2]...``, or None where a key is missing (records with optional sections)."""
    for key in keys:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def count_of(n: int | None, noun: str) -> str:
    """``"1 patient"``, ``"3 patients"`` (None counts as 0)."""
    return f"{n or 0} {noun}{'' if n == 1 else 's'}"


@dataclass
class Cell:
    """One value cell: ours (with CI, standard deviation or an n/a reason) or a published value
    (``published=True``).

    ``value`` None with ``reason`` None means "no such value" (shown as –).
    """

    value: float | None
    ci: Sequence[float] | None = None
    reason: str | None = None
    published: bool = False
    std: float | None = None

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
    """A table: row-label columns, hierarchical value-column labels (equal depth), rows, notes.

    ``digits``: decimals of every number, ``scientific_below``: magnitudes written as ``1.23e-04``;
    ``tex_labels``: LaTeX markup for header labels (e.g. ``{"LV endo": "$LV_{endo}$"}``), used as
    is instead of the escaped label.
    """

    name: str
    caption: str
    index: list[str]
    columns: list[tuple[str, ...]]
    rows: list[tuple[list[str], list[Cell]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    digits: int = DIGITS
    scientific_below: float = SCIENTIFIC_BELOW
    tex_labels: dict[str, str] = field(default_factory=dict)

    def reasons(self) -> list[str]:
        """Distinct n/a reasons in order of first appearance (numbered notes)."""
        seen: list[str] = []
        for _, cells in self.rows:
            for cell in cells:
                if cell.reason and cell.reason not in seen:
                    seen.append(cell.reason)
        return seen


def _num(value: float, table: Table, like: float | None = None) -> str:
    """``table.digits`` decimals; scientific when ``like`` (default: the value) is below
    ``table.scientific_below`` in magnitude."""
    like = value if like is None else like
    if not math.isfinite(value):
        return str(value)
    return f"{value:.2e}" if 0 < abs(like) < table.scientific_below else f"{value:.{table.digits}f}"


def _text(cell: Cell, reasons: list[str], table: Table, latex: bool = False) -> str:
    if cell.reason:
        k = reasons.index(cell.reason) + 1
        return f"n/a$^{{{k}}}$" if latex else f"n/a [{k}]"
    if cell.value is None:
        return "--" if latex else "–"
    text = _num(cell.value, table)
    if cell.std is not None and math.isfinite(cell.std):
        text += f" {PM_TEX if latex else '±'} {_num(cell.std, table, cell.value)}"
    if cell.ci:
        ci = f"[{_num(cell.ci[0], table, cell.value)}, {_num(cell.ci[1], table, cell.value)}]"
        text += f" {{\\tiny {ci}}}" if latex else f" {ci}"
    return text


def _flat(label: tuple[str, ...]) -> str:
    return " ".join(part for part in label if part)


def _column_kinds(table: Table) -> list[bool]:
    """Whether each value column holds published values (from its label's last part)."""
    return [label[-1] == "published" for label in table.columns]


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


def md_escape(text: str) -> str:
    """Escape the Markdown table separator in plain text."""
    return str(text).replace("|", "\\|")


def to_markdown(table: Table) -> str:
    """A Markdown table (flattened header), numbered n/a notes and the table's notes below it."""
    reasons = table.reasons()
    header = [md_escape(x) for x in list(table.index) + [_flat(label) for label in table.columns]]
    lines = [f"**{table.caption}**", "", "| " + " | ".join(header) + " |",
             "| " + " | ".join(["---"] * len(table.index) + ["---:"] * len(table.columns)) + " |"]
    for labels, cells in table.rows:
        texts = [md_escape(x) for x in labels] + [_text(c, reasons, table) for c in cells]
        lines.append("| " + " | ".join(texts) + " |")
    lines.append("")
    lines += [f"- [{k}] n/a: {reason}" for k, reason in enumerate(reasons, 1)]
    lines += [f"- {note}" for note in table.notes]
    return "\n".join(lines) + "\n"


_TEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                "–": "--", "−": "-", "|": r"$|$", "<": r"$<$", ">": r"$>$", "±": PM_TEX}


def tex_escape(text: str) -> str:
    """Escape LaTeX special characters in plain text."""
    return "".join(_TEX_ESCAPES.get(ch, ch) for ch in str(text))


def to_latex(table: Table) -> str:
    """A booktabs LaTeX table with multi-level column headers and the notes under it."""
    reasons = table.reasons()

    def label_tex(label: str) -> str:
        return table.tex_labels.get(label) or tex_escape(label)

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
            label = label_tex(table.columns[col][level])
            if level < depth - 1:
                cells.append(f"\\multicolumn{{{span}}}{{c}}{{{label}}}" if span > 1 else label)
                if label:
                    first = n_idx + col + 1
                    rules.append(f"\\cmidrule(lr){{{first}-{first + span - 1}}}")
            else:
                cells += [label_tex(table.columns[c][level]) for c in range(col, col + span)]
            col += span
        lines.append(" & ".join(cells) + " \\\\")
        if rules:
            lines.append(" ".join(rules))
    lines.append("\\midrule")
    for labels, cells in table.rows:
        lines.append(" & ".join([tex_escape(x) for x in labels]
                                + [_text(c, reasons, table, latex=True) for c in cells]) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "", "\\smallskip\\footnotesize"]
    lines += [f"$^{{{k}}}$ n/a: {tex_escape(reason)}\\\\" for k, reason in enumerate(reasons, 1)]
    lines += [f"{tex_escape(note)}\\\\" for note in table.notes]
    lines.append("\\end{table}")
    return "\n".join(lines) + "\n"


WRITERS = {"csv": to_csv, "md": to_markdown, "tex": to_latex}


def render(tables: Table | Sequence[Table], fmt: str) -> str:
    """One table, or several one after the other (a blank line apart), in format ``fmt``."""
    tables = [tables] if isinstance(tables, Table) else list(tables)
    return "\n".join(WRITERS[fmt](t) for t in tables)


def write_table(tables: Table | Sequence[Table], outputs: Mapping[str, str | Path]) -> None:
    """Write ``tables`` to the paths in ``outputs`` (keys ``csv``, ``md``, ``tex``), each atomically."""
    for fmt, path in outputs.items():
        write_text(path, render(tables, fmt))
