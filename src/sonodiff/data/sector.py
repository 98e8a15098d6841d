"""Imaging-sector masks by thresholding (Echo from noise, section 2.1).

Stojanovski et al. add a sector label "by applying a simple thresholding to the ultrasound
images". Per image: ``M = I / 255 > tau``, closed with a disk of radius ``r`` (about 1/32 of the
image size) to bridge dark speckle, holes filled (dark structures inside the fan), and reduced to
its largest connected component (text and markers outside the fan go). The dataset's sector is
the majority vote of the per-image masks of the training images, cleaned the same way.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def _disk(radius: int) -> np.ndarray:
    y, x = np.ogrid[-radius:radius + 1, -radius:radius + 1]
    return x * x + y * y <= radius * radius


def default_radius(shape: tuple[int, int]) -> int:
    """Closing radius: ``max(1, round(min(H, W) / 32))`` pixels."""
    return max(1, int(round(min(shape) / 32)))


def clean_mask(mask: np.ndarray, radius: int | None = None) -> np.ndarray:
    """Close (edge-padded, so borders are not eroded), fill holes, keep the largest component."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return mask.copy()
    r = default_radius(mask.shape) if radius is None else radius
    if r > 0:
        padded = np.pad(mask, r, mode="edge")
        mask = ndimage.binary_closing(padded, structure=_disk(r))[r:-r, r:-r]
    mask = ndimage.binary_fill_holes(mask)
    components, count = ndimage.label(mask)
    if count > 1:
        sizes = np.bincount(components.ravel())
        sizes[0] = 0
        mask = components == int(np.argmax(sizes))
    return mask


def sector_mask(image: np.ndarray, threshold: float, radius: int | None = None) -> np.ndarray:
    """Sector of one uint8 image: ``clean(I / 255 > threshold)``."""
    return clean_mask(np.asarray(image, dtype=np.float64) / 255.0 > threshold, radius)


def majority_mask(votes: np.ndarray, count: int, radius: int | None = None) -> np.ndarray:
    """Dataset sector from summed per-image masks: ``clean(votes > count / 2)``."""
    if count <= 0:
        return np.zeros(votes.shape, dtype=bool)
    return clean_mask(2 * np.asarray(votes) > count, radius)


def add_sector_label(ids: np.ndarray, sector: np.ndarray, sector_id: int) -> np.ndarray:
    """Label ``sector_id`` where the sector holds no structure: ``L[(L == 0) & S] = K+1``."""
    out = ids.copy()
    out[(out == 0) & sector] = sector_id
    return out
