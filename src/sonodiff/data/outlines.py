"""Label maps drawn as outlines (HC18's head ellipses): closed contours filled into regions.

:func:`fill_outlines` fills, for each structure value ``v``, the holes of ``label == v``
(``scipy.ndimage.binary_fill_holes``: background pixels not 4-connected to the map's border)
with ``v``. Only background pixels change; where outlines nest, the innermost wins, so a
contour drawn inside another keeps its own region.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from scipy import ndimage

from sonodiff.errors import InputError

log = logging.getLogger(__name__)


def fill_outlines(label: np.ndarray, where: str | Path) -> np.ndarray:
    """A copy of the 2D raw label map ``label`` with every closed outline filled by its value.

    Raises :class:`InputError` naming ``where`` for a map that is not 2D; logs a warning when no
    value encloses any pixel (an open outline, or regions that were filled already).
    """
    if label.ndim != 2:
        raise InputError(where, f"fill_outlines needs a 2D label map, got shape {label.shape}")
    background = label == 0
    fills = []
    for value in np.unique(label[~background]):
        region = ndimage.binary_fill_holes(label == value) & background
        if region.any():
            fills.append((int(region.sum()), value, region))
    out = label.copy()
    for _, value, region in sorted(fills, key=lambda f: -f[0]):  # largest first: inner ones win
        out[region] = value
    if not fills:
        log.warning("%s: fill_outlines found no closed outline", where)
    return out
