"""Ultrasound-physics metrics respond in the right direction: depth darkening, smoothed speckle,
swapped labels; and the bootstrap intervals are seeded and cover the estimate."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from sonodiff.metrics import physics
from sonodiff.stats import bootstrap_ci, figure

SIZE = 64
DR = 60.0


def log_compress(env: np.ndarray, dr: float = DR) -> np.ndarray:
    """uint8 B-mode pixels: p/255 = 1 + 20 log10(A / A_max) / D, clipped to [0, 1]."""
    db = 20 * np.log10(env / env.max(axis=(-2, -1), keepdims=True) + 1e-12)
    return (np.clip(1 + db / dr, 0, 1) * 255).round().astype(np.uint8)


def speckle(rng: np.random.Generator, n: int, scale: np.ndarray | float = 1.0) -> np.ndarray:
    """Fully developed speckle: Rayleigh envelope (|complex Gaussian|) times a tissue map."""
    z = rng.normal(size=(n, SIZE, SIZE)) + 1j * rng.normal(size=(n, SIZE, SIZE))
    return np.abs(z) * scale


def linear_sector() -> np.ndarray:
    sector = np.zeros((SIZE, SIZE), bool)
    sector[4:, 4:-4] = True
    return sector


def fan_sector() -> np.ndarray:
    rr, cc = np.mgrid[0:SIZE, 0:SIZE].astype(float)
    apex = (-10.0, SIZE / 2)
    r = np.hypot(rr - apex[0], cc - apex[1])
    theta = np.degrees(np.arctan2(cc - apex[1], rr - apex[0]))
    return (r >= 16) & (r <= 70) & (np.abs(theta) <= 35)


def labels_map(n: int) -> np.ndarray:
    """Label 1: left block, 2: right block, 3: bottom band, 4 (sector tissue): the rest."""
    lab = np.full((n, SIZE, SIZE), 4, np.uint8)
    lab[:, 10:30, 6:28] = 1
    lab[:, 10:30, 36:58] = 2
    lab[:, 40:56, 8:56] = 3
    return lab


# ---------------------------------------------------------------- depth profile

@pytest.mark.parametrize("probe,sector", [("linear", linear_sector()), ("convex", fan_sector())])
def test_depth_profile_sees_images_darkened_with_depth(probe, sector):
    rng = np.random.default_rng(0)
    real = log_compress(speckle(rng, 8)) * sector
    same = log_compress(speckle(rng, 8)) * sector
    bins = physics.depth_bins(sector, probe)
    rows = np.arange(SIZE, dtype=float)[:, None]
    darker = log_compress(speckle(rng, 8, scale=10 ** (-30 * rows / SIZE / 20))) * sector  # -30 dB at the bottom
    p_real = physics.depth_profiles(real, bins)
    l1_same = physics.profile_l1(physics.depth_profiles(same, bins), p_real)
    p_dark = physics.depth_profiles(darker, bins)
    l1_dark = physics.profile_l1(p_dark, p_real)
    assert l1_same < 0.02
    assert l1_dark > 5 * l1_same
    defined = np.isfinite(p_dark).any(axis=0)
    curve = np.nanmean(p_dark[:, defined], axis=0)
    assert curve[-5:].mean() < curve[:5].mean() - 0.2  # the synthetic profile falls with depth


def test_profile_curves_mean_and_spread_over_images_nan_for_empty_bins():
    p_syn = np.array([[0.2, 0.5, np.nan], [0.6, np.nan, np.nan]])
    curves = physics.profile_curves(p_syn, p_syn[:1])
    np.testing.assert_allclose(curves["synthetic"][:2], [0.4, 0.5])
    np.testing.assert_allclose(curves["synthetic_std"][:2], [0.2, 0.0])     # ddof 0, images without the bin left out
    np.testing.assert_allclose(curves["real"][:2], [0.2, 0.5])
    np.testing.assert_allclose(curves["real_std"][:2], [0.0, 0.0])
    assert all(np.isnan(curves[k][2]) for k in curves)
    assert list(curves) == ["synthetic", "real", "synthetic_std", "real_std"]


def test_convex_depth_follows_the_radius_not_the_row():
    sector = fan_sector()
    bins = physics.depth_bins(sector, "convex")
    rows = np.flatnonzero(sector.any(axis=1))
    row = rows[len(rows) // 2]
    cols = np.flatnonzero(sector[row])
    # on one row, the fan's edge pixels lie farther from the apex than its centre pixel
    assert bins[row, cols[0]] > bins[row, SIZE // 2] and bins[row, cols[-1]] > bins[row, SIZE // 2]
    assert (bins[~sector] == -1).all()


# ---------------------------------------------------------------- speckle

def test_speckle_snr_is_rayleigh_and_smoothing_moves_it_away():
    rng = np.random.default_rng(1)
    lab = labels_map(6)
    ids = [1, 2, 3, 4]
    real = log_compress(speckle(rng, 6))
    synthetic = log_compress(speckle(rng, 6))
    smoothed = log_compress(np.stack([gaussian_filter(e, 1.5) for e in speckle(rng, 6)]))
    snr_real = physics.speckle_snr(real, lab, ids, DR)
    snr_syn = physics.speckle_snr(synthetic, lab, ids, DR)
    snr_smooth = physics.speckle_snr(smoothed, lab, ids, DR)
    assert np.all(np.abs(np.nanmean(snr_real, axis=0) - physics.RAYLEIGH_SNR) < 0.15)
    assert np.all(np.nanmean(snr_smooth, axis=0) > physics.RAYLEIGH_SNR + 0.5)
    diff_syn = np.abs(np.nanmean(snr_syn, 0) - np.nanmean(snr_real, 0))
    diff_smooth = np.abs(np.nanmean(snr_smooth, 0) - np.nanmean(snr_real, 0))
    assert np.all(diff_smooth > 3 * diff_syn)


def test_envelope_undoes_log_compression():
    p = np.array([[0, 255 // 2, 255]], dtype=np.uint8)
    env = physics.envelope(p, 60.0)
    np.testing.assert_allclose(env[0, [0, 2]], [1e-3, 1.0])
    np.testing.assert_allclose(20 * np.log10(env[0, 1]), 60 * (127 / 255 - 1))


# ---------------------------------------------------------------- labels: Wasserstein and gCNR

def labelled_images(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Images whose labels differ in brightness: 1 dark, 2 bright, 3 mid, 4 tissue."""
    lab = labels_map(n)
    gain = np.choose(lab - 1, [0.05, 1.0, 0.3, 0.15])
    return log_compress(speckle(rng, n, gain)), lab


def test_swapped_labels_change_wasserstein_and_gcnr():
    rng = np.random.default_rng(2)
    real, real_lab = labelled_images(rng, 6)
    syn, syn_lab = labelled_images(rng, 6)
    swapped = syn_lab.copy()
    swapped[syn_lab == 1], swapped[syn_lab == 3] = 3, 1  # dark and mid structures swap places
    ids = [1, 2, 3, 4]
    h_real = physics.label_histograms(real, real_lab, ids)
    h_syn = physics.label_histograms(syn, syn_lab, ids)
    h_swap = physics.label_histograms(syn, swapped, ids)
    for j in (0, 2):  # the swapped labels
        w_ok = physics.pooled_wasserstein(h_syn[:, j], h_real[:, j])
        w_swap = physics.pooled_wasserstein(h_swap[:, j], h_real[:, j])
        assert w_ok < 0.02 and w_swap > 5 * w_ok
    w_untouched = physics.pooled_wasserstein(h_swap[:, 1], h_real[:, 1])
    assert w_untouched < 0.02

    pairs = [(0, 1), (0, 2), (1, 2), (2, 3)]

    def pooled(h):
        return np.array([physics.pooled_gcnr(h[:, a], h[:, b]) for a, b in pairs])

    g_real, g_syn, g_swap = pooled(h_real), pooled(h_syn), pooled(h_swap)
    assert np.all(np.abs(g_syn - g_real) < 0.1)
    # (1,2) and (3,4) now pair other brightness levels; (1,3) is symmetric and stays
    assert abs(g_swap[0] - g_real[0]) > 0.15 and abs(g_swap[2] - g_real[2]) > 0.15
    assert abs(g_swap[1] - g_real[1]) < 0.1


def test_gcnr_extremes():
    a = np.zeros((1, 8))
    a[0, 0] = 100
    b = np.zeros((1, 8))
    b[0, 7] = 100
    assert physics.gcnr(a, b)[0] == pytest.approx(1.0)
    assert physics.gcnr(a, a)[0] == pytest.approx(0.0)
    assert np.isnan(physics.gcnr(a / 10, b)[0])  # 10 pixels < MIN_PIXELS


@pytest.mark.parametrize("pixels,bound", [(720, 0.1), (12000, 0.04)])  # 8 real images x 90 px; 40 x 300
def test_gcnr_of_one_distribution_is_near_zero_and_its_baseline_says_so(pixels, bound):
    """Two pooled samples of one speckle distribution, at the pixel counts of our tables."""
    rng = np.random.default_rng(5)
    levels = log_compress(speckle(rng, 1))[0].ravel()
    draw = [np.bincount(rng.choice(levels, pixels), minlength=256)[None].astype(float) for _ in range(2)]
    value = physics.pooled_gcnr(*draw)
    chance = physics.gcnr_chance(*draw)
    assert value < bound and chance < bound
    assert value == pytest.approx(chance, abs=0.03)
    assert physics.gcnr_bins(pixels) == int(np.ceil((2 * pixels) ** (1 / 3)))


def test_rebin_keeps_counts_in_equal_bins():
    hist = np.arange(256, dtype=float)
    out = physics.rebin(hist, 4)
    np.testing.assert_allclose(out, [hist[k * 64:(k + 1) * 64].sum() for k in range(4)])
    assert physics.rebin(np.ones((3, 2, 256)), 16).shape == (3, 2, 16)


def test_physics_values_shapes_and_unlabelled_dataset():
    rng = np.random.default_rng(3)
    syn, lab = labelled_images(rng, 5)
    values = physics.physics_values(syn, lab, linear_sector(), "linear", [1, 2, 3, 4], DR)
    assert values.profiles.shape == (5, SIZE) and values.snr.shape == (5, 4) and values.hist.shape == (5, 4, 256)
    assert values.take(np.array([0, 0])).snr.shape == (2, 4)
    bare = physics.physics_values(syn, None, linear_sector(), "linear", [], DR)
    assert bare.snr.shape == (5, 0) and bare.hist.shape == (5, 0, 256)


def test_speckle_patches_leave_out_clipped_pixels():
    rng = np.random.default_rng(6)
    images = log_compress(speckle(rng, 2))
    lab = np.ones_like(images)
    clipped = np.where(np.arange(SIZE)[None, None, :] % 4 == 0, 255, images).astype(np.uint8)  # a quarter saturated
    clean = physics.speckle_snr(images, lab, [1], DR)
    np.testing.assert_allclose(physics.speckle_snr(clipped, lab, [1], DR), clean, rtol=0.1)  # not the 255s' spread
    mostly = np.where(np.arange(SIZE)[None, None, :] % 8 != 0, 255, images).astype(np.uint8)
    assert np.isnan(physics.speckle_snr(mostly, lab, [1], DR)).all()   # 8 of 64 pixels left: too few


# ---------------------------------------------------------------- bootstrap

def test_bootstrap_is_seeded_and_covers_the_mean():
    x = np.random.default_rng(4).normal(1.0, 1.0, size=200)
    ci1 = bootstrap_ci(np.mean, [x], 400, seed=7)
    ci2 = bootstrap_ci(np.mean, [x], 400, seed=7)
    assert ci1 == ci2
    assert ci1[0] < x.mean() < ci1[1]
    half = 1.96 * x.std() / np.sqrt(len(x))  # normal-theory half width
    assert ci1[1] - ci1[0] == pytest.approx(2 * half, rel=0.25)
    assert bootstrap_ci(np.mean, [x], 0, seed=7) is None
    two = figure(lambda a, b: a.mean() - b.mean(), [x, x + 1.0], 200, 0)
    assert two["value"] == pytest.approx(-1.0) and two["n"] == [200, 200]
    assert figure(np.mean, [np.array([])], 10, 0)["status"] == "n/a"
