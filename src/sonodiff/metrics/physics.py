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
    A = 10^((D / 20) (p / 255 - 1)). In a homogeneous region of fully developed speckle A is
    Rayleigh-distributed, whose point SNR = mean(A) / std(A) = sqrt(pi / (4 - pi)) = 1.913
    (Wagner et al. 1983). Regions are each label's mask eroded by a disk of radius
    max(1, round(H / 64)) pixels (to leave boundaries out), kept when they hold at least
    ``MIN_PIXELS`` pixels; one SNR per image and label. Figures per label: the mean SNR of the
    synthetic and of the real images, |SNR_syn - SNR_real|, and |SNR - 1.913| for both sets.
    A smoothed image has a narrower envelope distribution and an SNR above Rayleigh's.

Per-label intensity distributions
    For each label, the intensities of all its pixels over a set (pooled 256-bin histograms of
    uint8 values) are compared with ``scipy.stats.wasserstein_distance`` (W1, on the [0, 1]
    intensity scale): W1 = integral |F_syn(t) - F_real(t)| dt.

gCNR (Rodriguez-Molares et al. 2020)
    For two labelled regions a, b of one image with intensity histograms normalised to
    probability mass h_a, h_b (``GCNR_BINS`` equal bins over [0, 255]),
    gCNR = 1 - OVL = 1 - sum_k min(h_a(k), h_b(k)): 0 when the two distributions coincide, 1 when
    they do not overlap. One value per image and label pair (both regions with at least
    ``MIN_PIXELS`` pixels); the figure per pair is |mean gCNR_syn - mean gCNR_real|, with both means
    also reported.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import warnings
from typing import Mapping

import numpy as np
import scipy.ndimage as ndi
from scipy.stats import wasserstein_distance
from tqdm import tqdm

from sonodiff.diffusion.depth import depth_from_sector_mask
from sonodiff.stats import figure

RAYLEIGH_SNR = math.sqrt(math.pi / (4.0 - math.pi))  # 1.9131
MIN_PIXELS = 16
GCNR_BINS = 64
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


def erosion_radius(height: int) -> int:
    """Radius (pixels) of the disk that trims label boundaries off speckle regions."""
    return max(1, round(height / 64))


def speckle_snr(images: np.ndarray, labels: np.ndarray, label_ids: list[int],
                dynamic_range_db: float) -> np.ndarray:
    """Envelope SNR = mean(A) / std(A) per image and label in the eroded label region: (N, L).

    NaN where the eroded region is smaller than ``MIN_PIXELS`` or constant.
    """
    radius = erosion_radius(images.shape[1])
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    disk = xx * xx + yy * yy <= radius * radius
    env = envelope(images, dynamic_range_db)
    out = np.full((len(images), len(label_ids)), np.nan)
    for i in range(len(images)):
        for j, lab in enumerate(label_ids):
            region = ndi.binary_erosion(labels[i] == lab, structure=disk)
            if region.sum() >= MIN_PIXELS:
                a = env[i][region]
                std = a.std()
                out[i, j] = a.mean() / std if std > 0 else np.nan
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


def gcnr_per_image(hist: np.ndarray, pairs: list[tuple[int, int]]) -> np.ndarray:
    """gCNR per image and label pair from (N, L, 256) histograms rebinned to GCNR_BINS: (N, P)."""
    coarse = hist.reshape(*hist.shape[:2], GCNR_BINS, LEVELS // GCNR_BINS).sum(axis=-1)
    out = np.full((len(hist), len(pairs)), np.nan)
    for k, (a, b) in enumerate(pairs):
        out[:, k] = gcnr(coarse[:, a], coarse[:, b])
    return out


def _nanmean(x: np.ndarray) -> float:
    with _quiet():
        return float(np.nanmean(x)) if len(x) else math.nan


def _abs_diff_of_means(x: np.ndarray, y: np.ndarray) -> float:
    return abs(_nanmean(x) - _nanmean(y))


def _rayleigh_deviation(x: np.ndarray) -> float:
    return abs(_nanmean(x) - RAYLEIGH_SNR)


# ---------------------------------------------------------------- all physics figures

def physics_metrics(
    syn_images: np.ndarray, syn_labels: np.ndarray | None,
    real_images: np.ndarray, real_labels: np.ndarray | None,
    sector: np.ndarray, probe: str, label_names: Mapping[int, str],
    dynamic_range_db: float, resamples: int, seed: int, progress: bool = True,
) -> dict:
    """Every physics figure (value, 95% bootstrap CI over images) for one synthetic and one real set.

    Images uint8 (N, H, W); label maps the same shape (prepared ids) or None for a dataset
    without labels (then only the depth profile is computed). ``label_names`` maps the ids to
    score (background excluded) to their names.
    """
    out: dict = {}
    bins = depth_bins(sector, probe)
    p_syn, p_real = depth_profiles(syn_images, bins), depth_profiles(real_images, bins)
    out["depth_profile"] = {
        "l1": figure(profile_l1, [p_syn, p_real], resamples, seed),
        "probe": probe, "depth": ((np.arange(p_syn.shape[1]) + 0.5) / p_syn.shape[1]).tolist(),
        **profile_curves(p_syn, p_real),
    }
    ids = [i for i in sorted(label_names) if i != 0]
    if syn_labels is None or real_labels is None or not ids:
        reason = "the dataset has no label maps"
        out["speckle"] = {"rayleigh_snr": RAYLEIGH_SNR, "labels": {}, "status": "n/a", "reason": reason}
        out["wasserstein"] = {"status": "n/a", "reason": reason}
        out["gcnr"] = {"status": "n/a", "reason": reason}
        return out
    names = [label_names[i] for i in ids]
    steps = tqdm(total=4, desc="physics", disable=not progress)
    snr_syn = speckle_snr(syn_images, syn_labels, ids, dynamic_range_db)
    snr_real = speckle_snr(real_images, real_labels, ids, dynamic_range_db)
    steps.update()
    speckle = {}
    for j, name in enumerate(names):
        s, r = snr_syn[:, j], snr_real[:, j]
        speckle[name] = {
            "synthetic_snr": figure(_nanmean, [s], resamples, seed),
            "real_snr": figure(_nanmean, [r], resamples, seed),
            "snr_abs_diff": figure(_abs_diff_of_means, [s, r], resamples, seed),
            "synthetic_rayleigh_dev": figure(_rayleigh_deviation, [s], resamples, seed),
            "real_rayleigh_dev": figure(_rayleigh_deviation, [r], resamples, seed),
        }
    out["speckle"] = {"rayleigh_snr": RAYLEIGH_SNR, "dynamic_range_db": dynamic_range_db,
                      "erosion_radius_px": erosion_radius(syn_images.shape[1]), "labels": speckle}
    steps.update()
    h_syn = label_histograms(syn_images, syn_labels, ids)
    h_real = label_histograms(real_images, real_labels, ids)
    out["wasserstein"] = {name: figure(pooled_wasserstein, [h_syn[:, j], h_real[:, j]], resamples, seed)
                          for j, name in enumerate(names)}
    steps.update()
    pairs = list(itertools.combinations(range(len(ids)), 2))
    g_syn, g_real = gcnr_per_image(h_syn, pairs), gcnr_per_image(h_real, pairs)
    gcnr_out = {}
    for k, (a, b) in enumerate(pairs):
        s, r = g_syn[:, k], g_real[:, k]
        gcnr_out[f"{names[a]}|{names[b]}"] = {
            "synthetic": figure(_nanmean, [s], resamples, seed),
            "real": figure(_nanmean, [r], resamples, seed),
            "abs_diff": figure(_abs_diff_of_means, [s, r], resamples, seed),
        }
    out["gcnr"] = gcnr_out
    steps.update()
    steps.close()
    return out


__all__ = [
    "RAYLEIGH_SNR", "depth_bins", "depth_profiles", "envelope", "gcnr", "gcnr_per_image",
    "label_histograms", "physics_metrics", "pooled_wasserstein", "profile_curves", "profile_l1",
    "speckle_snr",
]
