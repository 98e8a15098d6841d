"""Figures for the HTML report: sample grids, the qualitative grid, reverse-process snapshots,
training curves and the depth profile.

Every ``render_*`` function takes arrays (images in [0, 1], label maps as integer arrays) and writes
one PNG atomically; :mod:`sonodiff.report.dataset_figures` and :mod:`sonodiff.report.paper_figures`
read the on-disk contracts (prepared dataset, samples manifest, training log, snapshots, metrics
records) and call them. Matplotlib is used through its object API (``matplotlib.figure.Figure``),
so nothing here touches pyplot's global state or the backend; colours and the atomic PNG writer
come from :mod:`sonodiff.plotting`.

Depth profile: the metrics record (``physics.depth_profile``) holds, per depth bin k, the mean
:math:`\\bar\\mu(k) = \\frac{1}{N} \\sum_n \\mu_n(k)` over images of the per-image profiles
:math:`\\mu_n(k)` (mean intensity of image n over the sector pixels of depth bin k; the same
numbers as the table's L1) and their standard deviation :math:`\\sigma_k` over images; the plot
shows :math:`\\bar\\mu(k)` with the band :math:`\\bar\\mu(k) \\pm \\sigma_k`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sonodiff.errors import InputError
from sonodiff.io import read_png
from sonodiff.plotting import colorize_labels, save_figure

# ----------------------------------------------------------------------------- small helpers

def load_gray(path: str | Path) -> np.ndarray:
    """A grey PNG (:func:`sonodiff.io.read_png`) as float32 in [0, 1], shape (H, W)."""
    return read_png(path).astype(np.float32) / 255.0


def load_labels(path: str | Path) -> np.ndarray:
    """A label-map PNG (:func:`sonodiff.io.read_png`) as an int64 array of label ids, shape (H, W)."""
    return read_png(path).astype(np.int64)


def _show(ax, img: np.ndarray) -> None:
    img = np.asarray(img)
    if img.ndim == 2:
        ax.imshow(img, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(np.clip(img, 0.0, 1.0), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _figure(rows: int, cols: int, cell: float = 1.6, extra_h: float = 0.4) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(cell * cols, cell * rows + extra_h))
    axes = np.asarray(fig.subplots(rows, cols, squeeze=False))
    return fig, axes


# ----------------------------------------------------------------------------- renderers

def render_image_grid(images: Sequence[np.ndarray], path: str | Path, *, ncols: int | None = None,
                      title: str | None = None, col_titles: Sequence[str] | None = None,
                      row_titles: Sequence[str] | None = None) -> Path:
    """Images (each (H, W) gray in [0, 1] or (H, W, 3) RGB) in a row-major grid, saved as PNG."""
    if len(images) == 0:
        raise InputError(path, "no images to draw")
    ncols = ncols or int(np.ceil(np.sqrt(len(images))))
    nrows = int(np.ceil(len(images) / ncols))
    fig, axes = _figure(nrows, ncols)
    for i, ax in enumerate(axes.flat):
        if i < len(images):
            _show(ax, images[i])
        else:
            ax.set_axis_off()
    if col_titles:
        for ax, name in zip(axes[0], col_titles):
            ax.set_title(name, fontsize=9)
    if row_titles:
        for ax, name in zip(axes[:, 0], row_titles):
            ax.set_ylabel(name, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def render_sample_grid(images: Sequence[np.ndarray], path: str | Path, title: str,
                       labels: Sequence[np.ndarray] | None = None, sector_id: int | None = None) -> Path:
    """A grid of synthetic images; with ``labels``, each image sits right of its label map."""
    if labels is None:
        return render_image_grid(list(images), path, title=title)
    cells: list[np.ndarray] = []
    for img, lab in zip(images, labels):
        cells += [colorize_labels(lab, sector_id), img]
    pairs = max(1, min(4, int(np.ceil(np.sqrt(len(images))))))
    return render_image_grid(cells, path, ncols=2 * pairs, title=title,
                             col_titles=["label map", "synthetic"] * pairs)


def render_qualitative_grid(rows: Sequence[Sequence[np.ndarray]], columns: Sequence[str],
                            path: str | Path, title: str | None = None) -> Path:
    """The paper's qualitative comparison (Domínguez et al. fig. 4): one example per row, one
    column per source, e.g. label map | baseline | B-maps | real."""
    if not rows:
        raise InputError(path, "no examples for the qualitative grid")
    if any(len(r) != len(columns) for r in rows):
        raise ValueError("every row needs one image per column")
    cells = [img for row in rows for img in row]
    return render_image_grid(cells, path, ncols=len(columns), title=title, col_titles=list(columns))


def render_reverse_figure(snapshots: Mapping[str, np.ndarray], steps: Sequence[int | str], path: str | Path,
                          title: str | None = None, label_map: np.ndarray | None = None) -> Path:
    """Reverse-process snapshots (Domínguez et al. fig. 3): one row per variant, one column per
    snapshot along the chain (from pure noise at the left to x_0 at the right).

    ``snapshots[name]`` is (K, H, W) in the model's range [-1, 1]; it is shown as (x + 1) / 2.
    ``steps`` names the K columns (a diffusion step t, or a string such as ``"x_0"``). A label map is
    optionally drawn as an extra first column.
    """
    names = list(snapshots)
    if not names:
        raise InputError(path, "no snapshots to draw")
    k = len(steps)
    for name in names:
        if np.asarray(snapshots[name]).shape[0] != k:
            raise ValueError(f"{name}: {np.asarray(snapshots[name]).shape[0]} snapshots for {k} steps")
    extra = 1 if label_map is not None else 0
    cells: list[np.ndarray] = []
    for name in names:
        if label_map is not None:
            cells.append(label_map if label_map.ndim == 3 else colorize_labels(label_map))
        cells += [np.clip((np.asarray(s, dtype=np.float32) + 1.0) / 2.0, 0.0, 1.0) for s in snapshots[name]]
    col_titles = (["label map"] if extra else []) + [
        f"t = {s}" if isinstance(s, (int, np.integer)) else str(s) for s in steps]
    return render_image_grid(cells, path, ncols=k + extra, title=title, col_titles=col_titles,
                             row_titles=names)


#: Columns of ``train_log.csv`` drawn as training curves, when present.
CURVE_COLUMNS = ("loss", "mse", "vb", "grad_norm", "lr")


def render_training_curves(logs: Mapping[str, pd.DataFrame], path: str | Path, title: str | None = None,
                           columns: Sequence[str] = CURVE_COLUMNS, x: str = "step") -> Path:
    """Training curves: one panel per logged quantity, one line per variant (log-scale y for
    losses)."""
    present = [c for c in columns if any(c in df.columns for df in logs.values())]
    if not logs or not present:
        raise InputError(path, f"no training log has any of the columns {list(columns)}")
    fig = Figure(figsize=(3.2 * len(present), 3.0))
    axes = np.asarray(fig.subplots(1, len(present), squeeze=False))[0]
    for ax, col in zip(axes, present):
        for name, df in logs.items():
            if col not in df.columns or df.empty:
                continue
            xs = df[x].to_numpy() if x in df.columns else np.arange(len(df))
            ys = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
            ax.plot(xs, ys, label=name, linewidth=1.2)
            positive = ys[np.isfinite(ys)]
            if col != "lr" and positive.size and (positive > 0).all():
                ax.set_yscale("log")
        ax.set_title(col, fontsize=9)
        ax.set_xlabel(x, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def render_depth_profile(profiles: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                         path: str | Path, title: str | None = None,
                         xlabel: str = "depth (0 = probe, 1 = deepest)") -> Path:
    """Mean intensity against depth, one line (with a ±1 s.d. band) per image set."""
    if not profiles:
        raise InputError(path, "no depth profiles to draw")
    fig = Figure(figsize=(4.8, 3.4))
    ax = fig.subplots()
    for name, (centers, mean, std) in profiles.items():
        style = {"color": "black", "linestyle": "--"} if name == "real" else {}
        line, = ax.plot(centers, mean, label=name, linewidth=1.5, **style)
        ax.fill_between(centers, mean - std, mean + std, color=line.get_color(), alpha=0.15)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel("mean intensity", fontsize=9)
    ax.set_xlim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
