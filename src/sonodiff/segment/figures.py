"""Figure of test images with true (solid) and predicted (dashed) structure contours.

One row per training source, one column per test image (the same images in every row, spread
evenly over the test split); each structure in its colour of :mod:`sonodiff.plotting`. Matplotlib's
object API, written atomically by :func:`sonodiff.plotting.save_figure`. Reads the prepared dataset
(:class:`~sonodiff.contracts.dataset.PreparedDataset`), each source's predictions and record
(:mod:`sonodiff.contracts.segmentation`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.contracts.segmentation import read_predictions, read_segment_record
from sonodiff.errors import InputError
from sonodiff.plotting import save_figure, structure_color
from sonodiff.segment.data import read_prepared


def pick_images(sample_ids: list[str], n: int) -> list[int]:
    """Indices of ``n`` images spread evenly over the list (all when fewer)."""
    if len(sample_ids) <= n:
        return list(range(len(sample_ids)))
    return sorted({int(round(i)) for i in np.linspace(0, len(sample_ids) - 1, n)})


def segment_figure(dataset: PreparedDataset, predictions: Mapping[str, str | Path],
                   structures: Mapping[str, Mapping], out_png: str | Path, title: str = "",
                   n_images: int = 6) -> None:
    """Write the contour figure of one dataset.

    ``predictions`` maps each source (row, in order) to its predictions file;
    ``structures`` is a segmentation record's ``structures`` (``{key: {"label", "ids"}}``).
    """
    prepared = read_prepared(dataset.manifest)
    test = prepared[prepared["split"] == "test"].reset_index(drop=True)
    preds = {src: read_predictions(p) for src, p in predictions.items()}
    ids = [s for s in test["sample_id"] if all(s in p for p in preds.values())]
    if not ids or not preds:
        raise InputError(dataset.manifest, "no test image has a prediction from every source")
    chosen = [ids[i] for i in pick_images(ids, n_images)]
    rows = test.set_index("sample_id").loc[chosen]
    images = dataset.images(rows)
    truths = dataset.label_maps(rows)

    nr, nc = len(preds), len(chosen)
    fig = Figure(figsize=(2.0 * nc, 2.0 * nr + 0.6), layout="constrained")
    axes = np.array(fig.subplots(nr, nc, squeeze=False))
    for r, (source, pred) in enumerate(preds.items()):
        for c, sid in enumerate(chosen):
            ax = axes[r, c]
            ax.imshow(images[c], cmap="gray", vmin=0, vmax=255)
            for k, spec in enumerate(structures.values()):
                color = structure_color(k + 1)
                for mask, style in ((np.isin(truths[c], spec["ids"]), "solid"),
                                    (np.isin(pred[sid], spec["ids"]), "dashed")):
                    if mask.any() and not mask.all():
                        ax.contour(mask.astype(float), levels=[0.5], colors=[color],
                                   linestyles=style, linewidths=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(sid, fontsize=7)
            if c == 0:
                ax.set_ylabel(source, fontsize=8)
    handles = [Line2D([], [], color=structure_color(k + 1), label=spec["label"])
               for k, spec in enumerate(structures.values())]
    handles += [Line2D([], [], color="k", linestyle="solid", label="true"),
                Line2D([], [], color="k", linestyle="dashed", label="predicted")]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=9)
    save_figure(fig, out_png)


def segment_figures(figures: Mapping[str, Mapping]) -> None:
    """One contour figure per dataset of ``figures`` (the rule's ``params.layout``):
    ``{dataset: {"manifest", "info", "sector", "figure", "metrics": {source: path}, "predictions": {source: path}}}``.
    """
    for name, spec in figures.items():
        dataset = PreparedDataset(spec["manifest"], spec["info"], spec["sector"])
        structures = read_segment_record(next(iter(spec["metrics"].values())))["structures"]
        segment_figure(dataset, spec["predictions"], structures, spec["figure"],
                       title=f"{name}: test images, true (solid) and predicted (dashed) contours")
