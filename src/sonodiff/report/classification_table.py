"""The classification table in the terms of Freiche et al. 2025 (section 3.1.2), published values beside ours.

Input: the summary of :func:`sonodiff.classify.evaluate.compare_sources`, one dict per dataset
(this module reads it as plain data): ``dataset``, ``format``, ``classes``, ``bootstrap``,
``test_sets`` (name -> ``dataset``, ``n_images``, ``n_patients``), ``sources`` (each: ``source``,
``kind``, ``variant``, ``generator_fraction``, ``arch``, ``n_seeds``, ``train`` with
``n_images``, and ``test_sets``: name -> the AUC figure with ``seed_std``), ``reference`` and
``differences`` (each: ``source``, ``test_sets``: name -> the paired figure source - reference).

Rows: one per training source, in the paper's words: real (the train split); real + synthetic
<variant>; synthetic only <variant>, from a generator trained on <fraction> of the train split.
Columns: per test set (``test``: the real test split; ``external``: another prepared dataset, when
configured) the AUC, ``mean ± seed_std [ci_low, ci_high]`` (mean over seeds of each seed's
one-vs-rest macro AUC over the classes the test set holds; 95% interval resampling test patients),
and the paired difference ``source - real`` with its interval; then, for BUSI (format ``busi``),
the published AUC of the matching setting and what it was measured on.

Published (:data:`PUBLISHED`; Freiche et al. 2025, section 3.1.2, ResNet-50, training setup of
Nasiri-Sarvi et al. 2024, AUC given in % without an interval or a definition of the multi-class
average): 81% trained on real BUSI and 87% with "some of the generated images" added, both
tested on Yap et al. 2017 dataset B (benign and malignant lesions only); 94% for a ResNet-50
trained on images of a Stable Diffusion model fine-tuned on 20% of BUSI, tested on "the generative
model's training set", i.e. on those 20%, not on a held-out split. Only the synthetic-only rows
whose generator saw the same fraction get that value.

Written as :class:`~sonodiff.report.table_writer.Table` (one per dataset) to CSV, Markdown and
LaTeX by :mod:`sonodiff.report.table_writer`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

from sonodiff.report.table_writer import Cell, Table, count_of, write_table

PUBLISHED_REFERENCE = "Freiche et al. 2025"
#: Published AUC by source kind, with the setting it was measured in.
PUBLISHED: dict[str, dict] = {
    "real": {"auc": 0.81, "setting": "ResNet-50, real BUSI; tested on Yap et al. 2017 dataset B"},
    "real+synthetic": {"auc": 0.87, "setting": "ResNet-50, real BUSI + some generated images; tested on "
                                               "Yap et al. 2017 dataset B"},
    "synthetic": {"auc": 0.94, "fraction": 0.2,
                  "setting": "ResNet-50, generated images only, generator fine-tuned on 20% of BUSI; tested "
                             "on that generator's training images"},
}
PUBLISHED_FORMATS = ("busi",)
DIGITS = 3
REAL_KIND, MIXED_KIND, SYNTHETIC_KIND = "real", "real+synthetic", "synthetic"
NOTES = (
    "AUC: one-vs-rest macro AUC (Mann-Whitney) over the classes the test set holds, on the softmax "
    "probabilities renormalised over those classes (two classes: the binary AUC); mean over seeds of each "
    "seed's AUC ± std across seeds (ddof 1) [95% bootstrap interval resampling test patients, each with all "
    "its images, the same draws for every seed; conditional on the trained seeds].",
    "Δ vs real: AUC of the row's source minus that of real on the same test images, the same patients drawn "
    "for both [95% paired interval]; positive: the source ranks better; an interval that excludes 0 says the "
    "two differ on this test set.",
)
PUBLISHED_NOTE = ("Published: Freiche et al. 2025, section 3.1.2 (ResNet-50, training setup of Nasiri-Sarvi et al. "
                  "2024; AUC in % without interval or multi-class definition). Their test sets are not ours: "
                  "81% and 87% are on Yap et al. 2017 dataset B, 94% on the images the 20% generator was "
                  "trained on (not held out); shown for scale, not as a target.")
NO_INTERVAL = "One test patient in a test set: no interval there (intervals resample patients)."


def _percent(fraction: float) -> str:
    return f"{100 * fraction:g}%"


def source_label(source: Mapping) -> str:
    """A training source in the paper's words (module docstring)."""
    kind, variant, fraction = source.get("kind"), source.get("variant"), source.get("generator_fraction")
    if kind == REAL_KIND:
        return "real (train split)"
    if kind == MIXED_KIND:
        return f"real + synthetic {variant}"
    trained_on = "the train split" if fraction is None else f"{_percent(float(fraction))} of the train split"
    return f"synthetic only {variant}, generator trained on {trained_on}"


def test_set_label(name: str, info: Mapping, dataset: str) -> str:
    if name == "test":
        return f"{dataset} test split"
    return f"{name}: {info.get('dataset') or name}"


def published_for(source: Mapping) -> dict | None:
    """The published entry matching a source's kind (a synthetic-only one: and its generator's
    fraction), or None."""
    pub = PUBLISHED.get(str(source.get("kind")))
    if pub is None:
        return None
    if "fraction" in pub:
        fraction = source.get("generator_fraction")
        if fraction is None or not math.isclose(float(fraction), pub["fraction"]):
            return None
    return pub


def _auc_cell(fig: Mapping | None) -> Cell:
    cell = Cell.from_figure(fig)
    if cell.value is not None and fig is not None and fig.get("seed_std") is not None:
        cell.std = float(fig["seed_std"])
    return cell


def counts_note(summary: Mapping) -> str:
    """What the table rests on: each test set's images and patients, seeds and training images."""
    sets = "; ".join(f"{test_set_label(t, info, summary['dataset'])}: {count_of(info['n_images'], 'image')} of "
                     f"{count_of(info['n_patients'], 'patient')}" for t, info in summary["test_sets"].items())
    train = ", ".join(f"{s['source']} {s.get('train', {}).get('n_images', 0)} ({s.get('arch')}, "
                      f"{count_of(s.get('n_seeds'), 'seed')})" for s in summary["sources"])
    return f"Test sets: {sets}. Training images per source: {train}."


def classification_table(summary: Mapping) -> Table:
    """The table of one dataset's summary (module docstring)."""
    dataset, sets = summary["dataset"], list(summary["test_sets"])
    published = summary.get("format") in PUBLISHED_FORMATS
    reference = summary.get("reference", REAL_KIND)
    columns = []
    for t in sets:
        label = test_set_label(t, summary["test_sets"][t], dataset)
        columns += [(label, "AUC"), (label, f"Δ vs {reference}")]
    if published:
        columns.append((PUBLISHED_REFERENCE, "published"))
    index = ["Training source"] + (["Published setting"] if published else [])
    classes = ", ".join(summary.get("classes", []))
    table = Table(f"classification-{dataset.replace('_', '-')}",
                  f"AUC of a ResNet classifying {dataset} images ({classes}) by the source it was trained on",
                  index, columns, digits=DIGITS, scientific_below=0.0)
    differences = {d["source"]: d["test_sets"] for d in summary.get("differences", [])}
    for source in summary["sources"]:
        cells = []
        for t in sets:
            cells.append(_auc_cell(source["test_sets"].get(t)))
            diff = differences.get(source["source"], {}).get(t)
            cells.append(Cell(None) if source["source"] == reference else Cell.from_figure(diff))
        labels = [source_label(source)]
        if published:
            pub = published_for(source)
            cells.append(Cell(pub["auc"] if pub else None, published=True))
            labels.append(pub["setting"] if pub else "–")
        table.rows.append((labels, cells))
    table.notes = list(NOTES) + [counts_note(summary)]
    if any(info["n_patients"] < 2 for info in summary["test_sets"].values()):
        table.notes.append(NO_INTERVAL)
    if published:
        table.notes.append(PUBLISHED_NOTE)
    return table


def write_classification_table(summaries: Sequence[Mapping], out_csv: str | Path, out_md: str | Path,
                               out_tex: str | Path) -> list[Table]:
    """Write one table per dataset summary (CSV in the table's layout, Markdown, LaTeX)."""
    tables = [classification_table(s) for s in summaries]
    write_table(tables, {"csv": out_csv, "md": out_md, "tex": out_tex})
    return tables
