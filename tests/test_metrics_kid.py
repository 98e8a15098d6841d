"""KID and FID intervals on two Gaussians with known population values, at the sizes our tables use
(40 synthetic vs 8 real images in the default config; 200 vs 40), and KID against torchmetrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.linalg import sqrtm
from torchmetrics.image.kid import poly_mmd

from sonodiff.metrics.fid import ResampledFrechet
from sonodiff.metrics.kid import ResampledKID, kid
from sonodiff.stats import figure

REPEATS, RESAMPLES = 100, 200


def gaussians(dim, seed=0):
    """N(0, I) against N(mu, S) with S = A A^T / 2 + I / 2: population FID closed form, KID by a large sample."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(dim, dim)) / np.sqrt(dim)
    cov = a @ a.T * 0.5 + 0.5 * np.eye(dim)
    mu = np.full(dim, 0.3 / np.sqrt(dim) * 3)
    fid = float(mu @ mu + np.trace(np.eye(dim) + cov - 2 * sqrtm(cov).real))
    chol = np.linalg.cholesky(cov)
    big = 4000
    population_kid = kid(rng.normal(size=(big, dim)), rng.normal(size=(big, dim)) @ chol.T + mu)
    return (lambda r, n: r.normal(size=(n, dim))), (lambda r, n: r.normal(size=(n, dim)) @ chol.T + mu), fid, population_kid


def test_kid_is_torchmetrics_unbiased_mmd_at_equal_sizes():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(30, 16)), rng.normal(size=(30, 16)) + 0.3
    assert kid(x, y) == pytest.approx(float(poly_mmd(torch.tensor(x), torch.tensor(y))), rel=1e-9)


def test_resampled_kid_without_repeats_is_kid():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(12, 4)), rng.normal(size=(9, 4))
    stat = ResampledKID(x, y)
    i, j = rng.permutation(12)[:7], rng.permutation(9)[:5]
    assert stat(i, j) == pytest.approx(kid(x[i], y[j]))


@pytest.mark.parametrize("n_syn,n_real,dim", [(40, 8, 8), (120, 24, 16)])
def test_intervals_cover_the_population(n_syn, n_real, dim):
    draw_syn, draw_real, population_fid, population_kid = gaussians(dim)
    rng = np.random.default_rng(3)
    kid_cover = fid_cover = plain_cover = fid_holds = 0
    for r in range(REPEATS):
        x, y = draw_syn(rng, n_syn), draw_real(rng, n_real)
        rows = [np.arange(n_syn), np.arange(n_real)]
        k = figure(ResampledKID(x, y), rows, RESAMPLES, r)
        f = figure(ResampledFrechet(x, y), rows, RESAMPLES, r, bias_corrected=True)
        plain = [2 * f["estimate"] - f["ci"][1], 2 * f["estimate"] - f["ci"][0]]  # the same resamples' percentiles
        kid_cover += k["ci"][0] <= population_kid <= k["ci"][1]
        fid_cover += f["ci"][0] <= population_fid <= f["ci"][1]
        plain_cover += plain[0] <= population_fid <= plain[1]
        fid_holds += f["ci"][0] <= f["value"] <= f["ci"][1]
    print(f"{n_syn} vs {n_real}, {dim} dims: KID covers {kid_cover}/{REPEATS}; FID bias-corrected covers "
          f"{fid_cover}, plain bootstrap {plain_cover}; bias-corrected holds its estimate {fid_holds}")
    assert kid_cover >= 90
    assert fid_holds == REPEATS
    assert fid_cover > plain_cover
