"""Figure of test images with true (solid) and predicted (dashed) structure contours.

One row per training source, one column per test image (the same images in every row, spread
evenly over the test split); each structure in the report's colour for it. Matplotlib's object
API, written atomically by :func:`sonodiff.report.figures.save_figure`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from sonodiff.errors import InputError
from sonodiff.io import read_json
from sonodiff.report.figures import STRUCTURE_COLORS as COLORS
from sonodiff.report.figures import save_figure
from sonodiff.segment.data import load_image, load_label, read_prepared


def pick_images(sample_ids: list[str], n: int) -> list[int]:
    """Indices of ``n`` images spread evenly over the list (all when fewer)."""
    if len(sample_ids) <= n:
        return list(range(len(sample_ids)))
    return sorted({int(round(i)) for i in np.linspace(0, len(sample_ids) - 1, n)})


def _load_predictions(path: str | Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {str(s): p for s, p in zip(npz["sample_id"], npz["pred"])}
    except (OSError, KeyError, ValueError) as err:
        raise InputError(path, f"unreadable predictions ({err})") from err


def segment_figure(prepared_manifest: str | Path, predictions: Mapping[str, str | Path],
                   structures: Mapping[str, Mapping], out_png: str | Path, title: str = "",
                   n_images: int = 6) -> None:
    """Write the contour figure of one dataset.

    ``predictions`` maps each source (row, in order) to its ``predictions.npz``;
    ``structures`` is ``metrics.json["structures"]`` (``{key: {"label", "ids"}}``).
    """
    prepared = read_prepared(prepared_manifest)
    test = prepared[prepared["split"] == "test"].reset_index(drop=True)
    preds = {src: _load_predictions(p) for src, p in predictions.items()}
    ids = [s for s in test["sample_id"] if all(s in p for p in preds.values())]
    if not ids or not preds:
        raise InputError(prepared_manifest, "no test image has a prediction from every source")
    chosen = [ids[i] for i in pick_images(ids, n_images)]
    rows = test.set_index("sample_id").loc[chosen]
    n_classes = 256
    images = [load_image(p) for p in rows["image"]]
    truths = [load_label(p, n_classes) for p in rows["label"]]

    nr, nc = len(preds), len(chosen)
    fig = Figure(figsize=(2.0 * nc, 2.0 * nr + 0.6), layout="constrained")
    axes = np.array(fig.subplots(nr, nc, squeeze=False))
    for r, (source, pred) in enumerate(preds.items()):
        for c, sid in enumerate(chosen):
            ax = axes[r, c]
            ax.imshow(images[c], cmap="gray", vmin=0, vmax=255)
            for k, spec in enumerate(structures.values()):
                color = COLORS[k % len(COLORS)]
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
    handles = [Line2D([], [], color=COLORS[k % len(COLORS)], label=spec["label"])
               for k, spec in enumerate(structures.values())]
    handles += [Line2D([], [], color="k", linestyle="solid", label="true"),
                Line2D([], [], color="k", linestyle="dashed", label="predicted")]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=9)
    save_figure(fig, out_png)


def segment_figures(layout: Mapping[str, Mapping]) -> None:
    """One contour figure per dataset of ``layout``:
    ``{dataset: {"manifest", "figure", "metrics": {source: path}, "predictions": {source: path}}}``.
    """
    for dataset, spec in layout.items():
        first = next(iter(spec["metrics"].values()))
        structures = read_json(first)["structures"]
        segment_figure(spec["manifest"], spec["predictions"], structures, spec["figure"],
                       title=f"{dataset}: test images, true (solid) and predicted (dashed) contours")
