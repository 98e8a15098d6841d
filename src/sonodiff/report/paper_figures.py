"""The papers' process figures for one dataset: B-maps across time and the forward process
(Domínguez et al. figs. 1-2, drawn by :mod:`sonodiff.diffusion.figures`) and the reverse process
from noise (fig. 3).

The reverse figure only reads files: each variant's reverse-process snapshots, written by the
sample stage (:func:`sonodiff.contracts.samples.read_snapshots`: one chain x_T -> x_0 of the
variant's model, the same initial noise and label map for every variant). One row per variant,
one column per kept step t (then x_0), the label map conditioned on as an extra first column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.contracts.samples import FINAL_STEP, read_snapshots
from sonodiff.errors import InputError
from sonodiff.plotting import colorize_labels
from sonodiff.report import figures as F
from sonodiff.report.dataset_figures import variant_title

#: Column name of the final sample in the reverse figure.
X0_NAME = "x_0"


def render_process_figures(cfg: Mapping[str, Any], dataset: PreparedDataset, bmaps_out: str | Path,
                           forward_out: str | Path, num_panels: int = 6) -> None:
    """Figs. 1 and 2 for a resolved config (normally the B-map variant) on a prepared dataset;
    fig. 2 noises the first training image (by sample id; the first of all without a train split)."""
    from sonodiff.diffusion.figures import render_bmaps_figure, render_forward_figure  # torch: figs. 1-2 only
    from sonodiff.diffusion.process import BMapDiffusion

    diffusion = BMapDiffusion.from_config(cfg["diffusion"], dataset.depth_map())
    render_bmaps_figure(diffusion, bmaps_out, num_panels=num_panels)
    rows = dataset.rows("train")
    if rows.empty:
        rows = dataset.rows()
    if rows.empty:
        raise InputError(dataset.manifest, "no image to noise for the forward-process figure")
    image = F.load_gray(rows["image"].iloc[0]) * 2.0 - 1.0
    render_forward_figure(image, diffusion, forward_out, num_panels=num_panels, seed=int(cfg["seed"]))


def column_names(steps: list[int]) -> list[int | str]:
    """Reverse-figure columns of a snapshots file's ``steps``: the step t, ``x_0`` for the final sample."""
    return [X0_NAME if s == FINAL_STEP else int(s) for s in steps]


def render_reverse_from_files(snapshots: Mapping[str, str | Path], sector_id: int | None, out: str | Path,
                              dataset_name: str) -> Path:
    """Fig. 3 for one dataset from each variant's snapshots file (module docstring).

    ``sector_id`` is the prepared dataset's sector label (drawn grey in the label map). Every
    variant's chain must keep the same steps.
    """
    frames: dict[str, np.ndarray] = {}
    names: list[int | str] | None = None
    label = None
    for variant, path in snapshots.items():
        steps, chain, chain_label = read_snapshots(path)
        if names is None:
            names = column_names(steps)
        elif column_names(steps) != names:
            raise InputError(path, f"snapshots at steps {steps}, other variants at {names}")
        frames[variant_title(variant)] = chain
        label = chain_label if label is None else label
    if names is None:
        raise InputError(out, "no snapshots to draw")
    label_rgb = colorize_labels(label, sector_id) if label is not None else None
    return F.render_reverse_figure(frames, names, out, title=f"{dataset_name}: reverse process", label_map=label_rgb)
