"""Kernel Inception Distance (Bińkowski et al. 2018): an unbiased distance between feature sets.

KID is the squared maximum mean discrepancy with the cubic polynomial kernel
k(x, y) = (x . y / d + 1)^3 (d the feature dimension), estimated without bias (the U-statistic):

    KID = 1/(m(m-1)) sum_{i != j} k(x_i, x_j) + 1/(n(n-1)) sum_{i != j} k(y_i, y_j)
          - 2/(m n) sum_{i, j} k(x_i, y_j)

Unlike FID its expectation does not depend on the set sizes, so its interval can cover the
population value at the sizes our tables use. The kernel and estimator are those of
torchmetrics' ``KernelInceptionDistance`` (``poly_kernel``, ``poly_mmd``) and torch-fidelity;
the features are ours (pytorch-fid's Inception, :mod:`sonodiff.metrics.fid`); we use the whole
sets rather than random subsets, of unequal sizes m and n (torchmetrics' ``maximum_mean_discrepancy``
assumes m = n, where the two agree).

:class:`ResampledKID` evaluates it on bootstrap resamples from Gram matrices computed once. A
resample is held as counts w (how often each image was drawn); pairs of copies of one image are
left out of the within-set sums as the diagonal is in the U-statistic:

    S_xx = (w' K_xx w - sum_i w_i^2 K_xx,ii) / ((sum w)^2 - sum w_i^2),  likewise S_yy,
    S_xy = w_x' K_xy w_y / (sum w_x sum w_y),   KID* = S_xx + S_yy - 2 S_xy.

With every w_i = 1 this is the estimator above.
"""

from __future__ import annotations

import numpy as np


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x . y / d + 1)^3 for every row pair: (len(x), len(y))."""
    return (np.asarray(x, np.float64) @ np.asarray(y, np.float64).T / x.shape[1] + 1.0) ** 3


class ResampledKID:
    """``stat(i1, i2)`` = KID of ``x1[i1]`` against ``x2[i2]`` (module docstring); NaN below 2 images."""

    def __init__(self, x1: np.ndarray, x2: np.ndarray):
        self.k11, self.k22 = polynomial_kernel(x1, x1), polynomial_kernel(x2, x2)
        self.k12 = polynomial_kernel(x1, x2)
        self.sizes = (len(x1), len(x2))

    @staticmethod
    def _within(k: np.ndarray, w: np.ndarray) -> float:
        pairs = w.sum() ** 2 - (w * w).sum()
        return float((w @ k @ w - (w * w) @ np.diag(k)) / pairs) if pairs > 0 else float("nan")

    def __call__(self, i1: np.ndarray, i2: np.ndarray) -> float:
        w1 = np.bincount(i1, minlength=self.sizes[0]).astype(np.float64)
        w2 = np.bincount(i2, minlength=self.sizes[1]).astype(np.float64)
        if w1.sum() < 2 or w2.sum() < 2:
            return float("nan")
        cross = float(w1 @ self.k12 @ w2 / (w1.sum() * w2.sum()))
        return self._within(self.k11, w1) + self._within(self.k22, w2) - 2.0 * cross


def kid(x1: np.ndarray, x2: np.ndarray) -> float:
    """The unbiased KID of two feature sets (rows = images)."""
    return ResampledKID(x1, x2)(np.arange(len(x1)), np.arange(len(x2)))
