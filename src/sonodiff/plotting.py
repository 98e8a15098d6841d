"""Shared plotting: structure colours, label-map colouring and atomic PNG figures.

Every stage that draws (the diffusion figures, the segment contour figures, the report) uses
these, so a structure has one colour everywhere. Matplotlib is used through its object API
(``matplotlib.figure.Figure``): nothing here touches pyplot's global state or the backend.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from sonodiff.io import atomic_path

#: Colours of foreground structures 1..K (matplotlib's tab10); background is black, the sector
#: label dark grey.
STRUCTURE_COLORS = ("tab:red", "tab:green", "tab:blue", "tab:orange", "tab:purple",
                    "tab:cyan", "tab:olive", "tab:pink", "tab:brown")
SECTOR_GREY = (0.3, 0.3, 0.3)
DPI = 100


def structure_color(label_id: int) -> str:
    """The colour of structure ``label_id`` (1-based; cycles through :data:`STRUCTURE_COLORS`)."""
    return STRUCTURE_COLORS[(int(label_id) - 1) % len(STRUCTURE_COLORS)]


def colorize_labels(labels: np.ndarray, sector_id: int | None = None) -> np.ndarray:
    """RGB rendering (H, W, 3) of a label map: 0 black, ``sector_id`` grey, structures coloured."""
    labels = np.asarray(labels)
    rgb = np.zeros(labels.shape + (3,), dtype=np.float32)
    for value in np.unique(labels):
        if value == 0:
            continue
        color = SECTOR_GREY if sector_id is not None and value == sector_id else to_rgb(structure_color(value))
        rgb[labels == value] = color
    return rgb


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as PNG to ``path`` atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    return path
