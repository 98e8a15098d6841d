"""3D -> 2D slicing of image and label volumes.

A volume in SimpleITK's array order ``(k, j, i)`` (see :mod:`sonodiff.data.readers`) is cut along
``slice_axis``; each slice keeps the two remaining axes in order as ``(rows, cols)``. With label
maps, a slice is kept only if it holds at least one voxel of ``required`` (SegThy: thyroid) and
at least ``min_pixels`` foreground (non-zero) voxels; without them, blank slices (one constant
value) are dropped.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np


def take_slice(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    """The 2D slice ``index`` of ``volume`` along ``axis`` (remaining axes in order)."""
    return np.take(volume, index, axis=axis)


def slice_volume(image: np.ndarray, label: np.ndarray | None, axis: int,
                 required: Sequence[int] = (), min_pixels: int = 1,
                 ) -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
    """Yield ``(index, image_slice, label_slice)`` for the slices worth keeping.

    ``required``: raw label values of which a kept slice must contain at least one voxel
    (empty = no requirement); ``min_pixels``: least number of non-zero label voxels.
    """
    if not 0 <= axis < image.ndim:
        raise ValueError(f"slice_axis {axis} out of range for a {image.ndim}D volume")
    required = np.asarray(list(required), dtype=np.int64)
    for index in range(image.shape[axis]):
        img = take_slice(image, axis, index)
        if label is None:
            if img.max() == img.min():
                continue
            yield index, img, None
            continue
        lab = take_slice(label, axis, index)
        if required.size and not np.isin(lab, required).any():
            continue
        if int(np.count_nonzero(lab)) < min_pixels:
            continue
        yield index, img, lab
