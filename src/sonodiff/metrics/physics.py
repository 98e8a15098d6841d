"""Ultrasound-physics metrics: do synthetic images behave like B-mode images? No weights needed.

Each metric is computed per image first (arrays with images on the first axis), then reduced
to one set-level figure, so that :mod:`sonodiff.stats` can resample images. Pixel
values p are uint8 grayscale; intensities are p / 255. Only pixels inside the imaging sector
(``sector.png``) or inside a labelled region count; label 0 (outside the sector) never does.

Depth profile
    Normalised depth d in [0, 1] is the B-maps' depth map from the sector mask and probe type
    (:func:`sonodiff.diffusion.depth_from_sector_mask`: rows for a linear probe, distance from the
    fan apex for a convex one), cut into B = H equal bins. The profile of an image is its mean
    intensity per bin, P(b) = mean{p / 255 : pixel in the sector with depth bin b}; a set's
    profile is the mean over images (the record also keeps the standard deviation over images per
    bin, which the report draws as a band). The figure is the L1 distance between the synthetic and the
    real set's profiles averaged over bins, L1 = (1/B) sum_b |P_syn(b) - P_real(b)|.

Speckle statistics
    B-mode pixels are log-compressed envelope values. With a display dynamic range of D dB
    (``metrics.dynamic_range_db``), p / 255 = 1 + 20 log10(A / A_max) / D, so the envelope is
    recovered (up to the unknown gain A_max, which cancels below) as
    A = 10^((D / 20) (p / 255 - 1)). Speckle SNR = mean(A) / std(A) is measured on small
    square patches (side ``patch_size(H)`` = max(4, round(H / 8)) pixels, on a grid of
    non-overlapping tiles) that lie wholly inside one labelled region, so each patch sits at
    about one depth in one tissue, over the patch's unclipped pixels only (p = 0 or 255 were cut
    off by the log compression; a patch needs 3/4 of its pixels unclipped). An image's SNR
    for a label is the mean over its patches (NaN without any).
    Rows: the synthetic and the real set's mean SNR and their signed difference synthetic - real;
    the Rayleigh value of fully developed speckle, sqrt(pi / (4 - pi)) = 1.913 (Wagner et al.
    1983), is a note only, since scan conversion, resizing and tissue texture move real images
    away from it.

Per-label intensity distributions
    For each label, the intensities of all its pixels over a set (pooled 256-bin histograms of
    uint8 values) are compared with ``scipy.stats.wasserstein_distance`` (W1, on the [0, 1]
    intensity scale): W1 = integral |F_syn(t) - F_real(t)| dt.

gCNR (Rodriguez-Molares et al. 2020)
    For two labelled regions a, b, the pixels of each region are pooled over the whole set and
    binned with the oversmoothed rule of Terrell & Scott (1985), k = ceil((2 n)^(1/3)) equal bins
    over [0, 255], n = min(n_a, n_b) (capped at 256); with the probability masses h_a, h_b,
    gCNR = 1 - OVL = 1 - sum_k min(h_a(k), h_b(k)): 0 when the two distributions coincide, 1 when
    they do not overlap. A finite sample of one distribution reads above 0: the identical-
    distribution baseline (``gcnr_chance``) is the mean gCNR of ``CHANCE_DRAWS`` pairs of
    histograms of sizes n_a, n_b drawn from the pooled distribution of a and b (multinomial),
    reported beside each value. Rows: synthetic, real, synthetic - real, and both baselines.

Every figure is computed from per-image arrays (:class:`PhysicsValues`), so that the intervals can
resample patients and two variants can be compared on the same draws (:mod:`sonodiff.metrics.quantities`).
"""

from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass
from typing import Mapping

import numpy as np
from scipy.stats import wasserstein_distance

from sonodiff.diffusion.depth import depth_from_sector_mask

RAYLEIGH_SNR = math.sqrt(math.pi / (4.0 - math.pi))  # 1.9131
MIN_PIXELS = 16
MIN_PATCH = 4
KEPT_FRACTION = 0.75  # of a speckle patch's pixels that must be unclipped
CHANCE_DRAWS = 20
LEVELS = 256


@contextlib.contextmanager
def _quiet():
    """Silence numpy's 'mean of empty slice' warnings (NaN is the intended answer there)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        yield


# ---------------------------------------------------------------- geometry and depth profile

def depth_bins(sector: np.ndarray, probe: str) -> np.ndarray:
    """Depth-bin index of every pixel (H, W): B = H equal bins of normalised depth, -1 outside the sector.

    Normalised depth d in [0, 1] is the B-maps' own (:func:`sonodiff.diffusion.depth_from_sector_mask`):
    rows below the sector's top for a linear probe, distance from the fitted fan apex for a convex
    one. bin = min(floor(d B), B - 1).
    """
    sector = np.asarray(sector, dtype=bool)
    n_bins = sector.shape[0]
    depth = depth_from_sector_mask(sector, probe).numpy().astype(np.float64)
    bins = np.minimum(np.floor(depth * n_bins).astype(np.int64), n_bins - 1)
    return np.where(sector, bins, -1)


def depth_profiles(images: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Mean intensity (p / 255) per depth bin of each image: (N, B), NaN for empty bins."""
    inside = bins >= 0
    index = bins[inside]
    n_bins = bins.shape[0]
    counts = np.bincount(index, minlength=n_bins).astype(np.float64)
    values = np.asarray(images, dtype=np.float64)[:, inside] / (LEVELS - 1)
    sums = np.zeros((len(values), n_bins))
    for i, v in enumerate(values):
        sums[i] = np.bincount(index, weights=v, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def profile_curves(p_syn: np.ndarray, p_real: np.ndarray) -> dict[str, list[float]]:
    """The set profiles the report draws: per bin b, the mean over images P(b) = mean_i P_i(b)
    (``synthetic``, ``real``) and the standard deviation over images (ddof 0) s(b) (``synthetic_std``,
    ``real_std``), images without sector pixels in bin b left out; NaN where no image has any."""
    with _quiet():
        return {"synthetic": np.nanmean(p_syn, axis=0).tolist(), "real": np.nanmean(p_real, axis=0).tolist(),
                "synthetic_std": np.nanstd(p_syn, axis=0).tolist(), "real_std": np.nanstd(p_real, axis=0).tolist()}


def profile_l1(p_syn: np.ndarray, p_real: np.ndarray) -> float:
    """(1/B) sum_b |mean_i P_syn,i(b) - mean_j P_real,j(b)| over bins defined in both sets."""
    with np.errstate(invalid="ignore"), _quiet():
        diff = np.abs(np.nanmean(p_syn, axis=0) - np.nanmean(p_real, axis=0))
    diff = diff[np.isfinite(diff)]
    return float(diff.mean()) if diff.size else math.nan


# ---------------------------------------------------------------- speckle

def envelope(images: np.ndarray, dynamic_range_db: float) -> np.ndarray:
    """Envelope-like values from log-compressed pixels: A = 10^((D/20)(p/255 - 1)), in (0, 1]."""
    p = np.asarray(images, dtype=np.float64) / (LEVELS - 1)
    return np.power(10.0, dynamic_range_db / 20.0 * (p - 1.0))


def patch_size(height: int) -> int:
    """Side (pixels) of the square speckle patches: max(4, round(H / 8))."""
    return max(MIN_PATCH, round(height / 8))


def speckle_snr(images: np.ndarray, labels: np.ndarray, label_ids: list[int],
                dynamic_range_db: float) -> np.ndarray:
    """Envelope SNR = mean(A) / std(A), averaged over an image's patches of each label: (N, L).

    Patches: non-overlapping ``patch_size`` tiles wholly inside one label; clipped pixels (0 or
    255) are left out of a patch's mean and std, and a patch needs ``KEPT_FRACTION`` of its pixels; NaN
    where an image has no such patch of a label.
    """
    n, h, w = images.shape
    size = patch_size(h)
    rows, cols = h // size, w // size
    env = envelope(images, dynamic_range_db)

    def tiles(a: np.ndarray) -> np.ndarray:  # (N, H, W) -> (N, rows, cols, size * size)
        a = a[:, :rows * size, :cols * size].reshape(n, rows, size, cols, size)
        return a.transpose(0, 1, 3, 2, 4).reshape(n, rows, cols, size * size)

    t_env, t_lab, t_img = tiles(env), tiles(labels), tiles(images)
    kept = (t_img > 0) & (t_img < LEVELS - 1)  # clipped pixels say nothing of the envelope's spread
    n_kept = kept.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(kept, t_env, 0.0).sum(axis=-1) / n_kept
        var = np.where(kept, (t_env - mean[..., None]) ** 2, 0.0).sum(axis=-1) / n_kept
        snr = mean / np.sqrt(var)
    out = np.full((n, len(label_ids)), np.nan)
    for j, lab in enumerate(label_ids):
        ok = (t_lab == lab).all(axis=-1) & (n_kept >= KEPT_FRACTION * size * size) & np.isfinite(snr)
        counts = ok.sum(axis=(1, 2))
        sums = np.where(ok, snr, 0.0).sum(axis=(1, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, j] = np.where(counts > 0, sums / counts, np.nan)
    return out


# ---------------------------------------------------------------- intensity distributions and gCNR

def label_histograms(images: np.ndarray, labels: np.ndarray, label_ids: list[int]) -> np.ndarray:
    """Counts of each uint8 value per image and label: (N, L, 256)."""
    out = np.zeros((len(images), len(label_ids), LEVELS))
    for i in range(len(images)):
        for j, lab in enumerate(label_ids):
            out[i, j] = np.bincount(images[i][labels[i] == lab].astype(np.int64).ravel(), minlength=LEVELS)[:LEVELS]
    return out


def pooled_wasserstein(h_syn: np.ndarray, h_real: np.ndarray) -> float:
    """W1 between the pooled intensity distributions of two sets of (N, 256) histograms, on [0, 1]."""
    u, v = h_syn.sum(axis=0), h_real.sum(axis=0)
    if u.sum() == 0 or v.sum() == 0:
        return math.nan
    grid = np.arange(LEVELS) / (LEVELS - 1)
    return float(wasserstein_distance(grid, grid, u_weights=u, v_weights=v))


def gcnr(h_a: np.ndarray, h_b: np.ndarray) -> np.ndarray:
    """gCNR = 1 - sum_k min(h_a(k)/n_a, h_b(k)/n_b) for histograms (..., K); NaN below MIN_PIXELS."""
    n_a, n_b = h_a.sum(axis=-1, keepdims=True), h_b.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        overlap = np.minimum(h_a / n_a, h_b / n_b).sum(axis=-1)
    value = 1.0 - overlap
    return np.where((n_a[..., 0] >= MIN_PIXELS) & (n_b[..., 0] >= MIN_PIXELS), value, np.nan)


def gcnr_bins(n: int) -> int:
    """Terrell & Scott's oversmoothed bin count, ceil((2 n)^(1/3)), between 2 and 256."""
    return int(min(LEVELS, max(2, math.ceil((2 * max(n, 1)) ** (1 / 3)))))


def rebin(hist: np.ndarray, bins: int) -> np.ndarray:
    """256-level counts (..., 256) summed into ``bins`` equal-width bins over [0, 255]."""
    onehot = np.eye(bins)[np.arange(LEVELS) * bins // LEVELS]  # (256, bins): level -> its bin
    return np.asarray(hist, dtype=np.float64) @ onehot


def pooled_gcnr(h_a: np.ndarray, h_b: np.ndarray) -> float:
    """gCNR of two regions' pixels pooled over a set: (N, 256) counts each, bins by :func:`gcnr_bins`."""
    a, b = h_a.sum(axis=0), h_b.sum(axis=0)
    bins = gcnr_bins(int(min(a.sum(), b.sum())))
    return float(gcnr(rebin(a, bins), rebin(b, bins)))


def gcnr_chance(h_a: np.ndarray, h_b: np.ndarray, seed: int = 0) -> float:
    """Identical-distribution baseline of :func:`pooled_gcnr`: mean gCNR of ``CHANCE_DRAWS``
    multinomial pairs of sizes n_a, n_b from the pooled distribution of both regions."""
    a, b = h_a.sum(axis=0), h_b.sum(axis=0)
    n_a, n_b = int(a.sum()), int(b.sum())
    if min(n_a, n_b) < MIN_PIXELS:
        return math.nan
    p = (a + b) / (n_a + n_b)
    rng = np.random.default_rng(seed)
    bins = gcnr_bins(min(n_a, n_b))
    draws = [gcnr(rebin(rng.multinomial(n_a, p).astype(np.float64), bins),
                  rebin(rng.multinomial(n_b, p).astype(np.float64), bins)) for _ in range(CHANCE_DRAWS)]
    return float(np.mean(draws))


# ---------------------------------------------------------------- per-image values of one set

@dataclass(frozen=True)
class PhysicsValues:
    """Per-image physics arrays of one image set: everything a set-level figure needs.

    ``profiles`` (N, B) depth profiles; ``snr`` (N, L) mean patch SNR per scored label;
    ``hist`` (N, L, 256) intensity counts per scored label (empty (N, 0, ...) without labels).
    """

    profiles: np.ndarray
    snr: np.ndarray
    hist: np.ndarray

    def take(self, rows: np.ndarray) -> "PhysicsValues":
        return PhysicsValues(self.profiles[rows], self.snr[rows], self.hist[rows])

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}{k}": getattr(self, k) for k in ("profiles", "snr", "hist")}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str) -> "PhysicsValues":
        return cls(*(np.asarray(arrays[f"{prefix}{k}"]) for k in ("profiles", "snr", "hist")))


def physics_values(images: np.ndarray, labels: np.ndarray | None, sector: np.ndarray, probe: str,
                   label_ids: list[int], dynamic_range_db: float) -> PhysicsValues:
    """The per-image arrays of one set (uint8 (N, H, W) images; label maps or None)."""
    profiles = depth_profiles(images, depth_bins(sector, probe))
    if labels is None or not label_ids:
        n = len(images)
        return PhysicsValues(profiles, np.zeros((n, 0)), np.zeros((n, 0, LEVELS)))
    return PhysicsValues(profiles, speckle_snr(images, labels, label_ids, dynamic_range_db),
                         label_histograms(images, labels, label_ids))


__all__ = [
    "RAYLEIGH_SNR", "PhysicsValues", "depth_bins", "depth_profiles", "envelope", "gcnr", "gcnr_bins",
    "gcnr_chance", "label_histograms", "patch_size", "physics_values", "pooled_gcnr",
    "pooled_wasserstein", "profile_curves", "profile_l1", "rebin", "speckle_snr",
]
