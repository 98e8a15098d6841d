"""Depth maps d(p) in [0, 1] for the B-maps: 0 at the probe, 1 at the deepest point of the
imaging sector, 0 outside the sector. Row 0 of an image is the probe side.

* ``linear_depth``: a linear probe, d = row / (H - 1) (or relative to a sector's top and bottom);
* ``convex_depth``: a fan given by its apex, outer radius and opening angle,
  d = (r - r_0) / (R - r_0) with r the distance to the apex, r_0 the probe's radius, R the outer
  radius;
* ``depth_from_sector_mask``: either of the above, with the geometry read from a sector mask (the
  prepared dataset's ``sector.png``), so a new probe needs no code;
* ``latent_depth``: a depth map resampled to a latent grid (B-maps in latent space).

All return float32 tensors of shape (H, W).
"""

from __future__ import annotations

from enum import Enum

import numpy as np
import torch

from sonodiff.errors import InputError


class Probe(str, Enum):
    LINEAR = "linear"
    CONVEX = "convex"


def linear_depth(height: int, width: int, sector: torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
    """d(p) = row / (H - 1); with a sector mask, d = (row - top) / (bottom - top) inside it, 0 outside.

    ``top`` and ``bottom`` are the first and last rows that contain sector pixels.
    """
    rows = np.arange(height, dtype=np.float64)[:, None] * np.ones((1, width))
    if sector is None:
        return torch.from_numpy(rows / max(height - 1, 1)).float()
    mask = _as_mask(sector, (height, width))
    hit = np.nonzero(mask.any(axis=1))[0]
    top, bottom = hit[0], hit[-1]
    d = (rows - top) / max(bottom - top, 1)
    return torch.from_numpy(np.where(mask, np.clip(d, 0.0, 1.0), 0.0)).float()


def convex_depth(
    height: int,
    width: int,
    apex: tuple[float, float],
    radius: float,
    opening_angle: float,
    inner_radius: float = 0.0,
) -> torch.Tensor:
    """d(p) = (|p - apex| - r_0) / (R - r_0) inside the fan, 0 outside.

    The fan points down (increasing rows), centred on the apex's column. ``apex`` is
    (row, col) in pixels and may lie above the image (negative row); ``radius`` R is the fan's
    outer radius and ``inner_radius`` r_0 the probe's, both in pixels; ``opening_angle`` is the
    full opening angle in degrees. Inside: r_0 <= r <= R and |angle from vertical| <= angle / 2.
    """
    if not 0 <= inner_radius < radius:
        raise InputError("convex_depth", f"need 0 <= inner_radius < radius, got {inner_radius}, {radius}")
    if not 0 < opening_angle <= 360:
        raise InputError("convex_depth", f"opening_angle must be in (0, 360] degrees, got {opening_angle}")
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    dy, dx = rows - apex[0], cols - apex[1]
    r = np.hypot(dy, dx)
    theta = np.degrees(np.arctan2(dx, dy))  # 0 straight down
    inside = (r >= inner_radius) & (r <= radius) & (np.abs(theta) <= opening_angle / 2)
    d = (r - inner_radius) / (radius - inner_radius)
    return torch.from_numpy(np.where(inside, d, 0.0)).float()


def depth_from_sector_mask(
    mask: torch.Tensor | np.ndarray, probe: str | Probe = Probe.CONVEX
) -> torch.Tensor:
    """Depth map from an imaging-sector mask (nonzero inside), for a linear or convex probe.

    Linear: ``linear_depth`` relative to the sector's top and bottom rows. Convex: the fan's apex
    is the intersection of straight lines fitted (least squares) to the sector's left and right
    edges over the upper half of its rows (``_fan_apex``); then d = (r - r_min) / (r_max - r_min) with r the
    distance to the apex and r_min, r_max its extremes over the sector. Pixels outside are 0.
    If the edges are parallel (no apex), the linear depth is returned.
    """
    try:
        probe = Probe(probe)
    except ValueError:
        raise InputError("probe", f"unknown probe type {probe!r}; known: linear, convex") from None
    mask = _as_mask(mask, None)
    height, width = mask.shape
    if probe is Probe.LINEAR:
        return linear_depth(height, width, mask)
    apex = _fan_apex(mask)
    if apex is None:
        return linear_depth(height, width, mask)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    r = np.hypot(rows - apex[0], cols - apex[1])
    r_in = r[mask]
    d = (r - r_in.min()) / max(r_in.max() - r_in.min(), 1e-12)
    return torch.from_numpy(np.where(mask, np.clip(d, 0.0, 1.0), 0.0)).float()


def latent_depth(depth: torch.Tensor | np.ndarray, factor: int) -> torch.Tensor:
    """The depth map on a latent grid ``factor`` times coarser: the mean over each latent pixel's
    ``factor x factor`` image pixels (area resampling),

        d_z(i, j) = mean_{0 <= a, b < f} d(f i + a, f j + b),

    so a latent pixel is noised at the mean depth of the tissue it encodes (a convolutional
    autoencoder keeps the image's layout). For a linear probe the rows stay linear in depth,
    d_z(i) = (f i + (f - 1) / 2) / (H - 1). Outside-sector pixels (d = 0) count as 0.
    """
    depth = torch.as_tensor(depth, dtype=torch.float32)
    height, width = depth.shape[-2:]
    if factor < 1 or height % factor or width % factor:
        raise InputError("latent depth", f"a {height} x {width} depth map does not divide into {factor} x {factor} cells")
    return torch.nn.functional.avg_pool2d(depth.reshape(1, 1, height, width), factor)[0, 0]


def _fan_apex(mask: np.ndarray) -> tuple[float, float] | None:
    """Intersection (row, col) of lines fitted to the left and right sector edges over the upper
    half of the sector's rows (rows where the fan is cut by the image border are left out), or
    None if the edges are parallel or too short to fit."""
    height, width = mask.shape
    rows = np.nonzero(mask.any(axis=1))[0]
    upper = rows[: max(len(rows) // 2, 2)]
    left = np.array([np.nonzero(mask[r])[0][0] for r in upper], dtype=np.float64)
    right = np.array([np.nonzero(mask[r])[0][-1] for r in upper], dtype=np.float64)
    keep = (left > 0) & (right < width - 1)
    if keep.sum() < 2:
        return None
    # col = a * row + b on each side
    a_l, b_l = np.polyfit(upper[keep], left[keep], 1)
    a_r, b_r = np.polyfit(upper[keep], right[keep], 1)
    if abs(a_r - a_l) < 1e-3:
        return None
    row = (b_l - b_r) / (a_r - a_l)
    return float(row), float(a_l * row + b_l)


def _as_mask(mask: torch.Tensor | np.ndarray, shape: tuple[int, int] | None) -> np.ndarray:
    arr = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    if arr.ndim == 3 and arr.shape[-1] in (1, 3, 4):
        arr = arr[..., 0]
    if arr.ndim != 2 or (shape is not None and arr.shape != tuple(shape)):
        raise InputError("sector mask", f"expected shape {shape or '(H, W)'}, got {arr.shape}")
    arr = arr > 0
    if not arr.any():
        raise InputError("sector mask", "the mask is empty")
    return arr
