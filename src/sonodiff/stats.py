"""Bootstrap confidence intervals and the one record every reported figure uses.

Neither paper reports an interval; every figure we compute carries a 95% bootstrap interval
(Efron & Tibshirani 1993, ch. 13) that resamples the independent unit:

    theta*_b = stat(X*_b),  b = 1..B,     CI_95 = [q_0.025(theta*), q_0.975(theta*)]

Resampling units
    Images of one patient (and augmented copies of one label map) are not independent, so the
    cluster bootstrap resamples whole clusters (Davison & Hinkley 1997, sec. 3.8; Field & Welsh
    2007). With clusters C_1..C_K and k*_{b,1..K} drawn from {1..K} with replacement, X*_b holds
    every row of every drawn cluster, repeats kept. ``clusters=None`` makes every row its own
    cluster (the plain image bootstrap). Several samples (e.g. synthetic and real images) are
    either resampled each on its own (``shared=False``: two independent sets) or through one
    draw over the union of their cluster ids (``shared=True``: synthetic images of a patient's
    label maps and that patient's real images come and go together).

Paired differences
    Two variants on the same images use the same draws: Delta_hat = stat(B) - stat(A),
    Delta*_b = stat(B*_b) - stat(A*_b) (sign: b minus a, e.g. B-maps minus baseline).

Bias correction
    A statistic with a small-sample bias (FID: resampling with replacement cuts the number of
    distinct images and raises the bias further, so the percentile interval lies above the
    estimate) is reported bias-corrected (Efron & Tibshirani 1993, sec. 10.6 and 13.4, the basic
    interval):

        theta_bc = 2 theta_hat - mean(theta*),   CI = [2 theta_hat - q_0.975, 2 theta_hat - q_0.025]

    which always contains theta_bc (q_0.025 <= mean(theta*) <= q_0.975).

Resampled statistics that come out NaN (e.g. a structure absent from every drawn image) are left
out of the quantiles. Fewer than two clusters give no interval (None): one patient says nothing
about the spread between patients. Resampling uses one ``numpy.random.default_rng(seed)`` per
figure, so a figure's interval is reproducible alone. The percentile interval of a spread
statistic (std, range) sits below the point estimate, since a resample holds repeats; read those
intervals as the spread's sampling variability only.

A figure is the dict ``{"value", "ci", "status", "n"}`` (``status`` "ok"; with clusters also
``n_clusters`` per sample; bias-corrected figures also ``estimate``, the uncorrected value), or
``{"value": None, "ci": None, "status": "n/a", "reason": ...}`` when it could not be computed.
"""

from __future__ import annotations

import math
from typing import Callable, Iterator, Sequence

import numpy as np

LEVEL = 0.95

Clusters = Sequence[Sequence | None] | None


def _codes(ids: Sequence, universe: dict) -> np.ndarray:
    """Cluster numbers of ``ids`` in ``universe`` (extended in order of first appearance)."""
    return np.array([universe.setdefault(c, len(universe)) for c in ids], dtype=np.intp)


def _row_codes(samples: Sequence[np.ndarray], clusters: Clusters, shared: bool) -> tuple[list[np.ndarray], list[int]]:
    """Per sample, each row's cluster number, and the size of the universe each sample draws from.

    A sample without cluster ids has one cluster per row. ``shared``: one universe for all.
    """
    clusters = list(clusters) if clusters is not None else [None] * len(samples)
    if len(clusters) != len(samples):
        raise ValueError(f"clusters: {len(clusters)} id lists for {len(samples)} samples")
    common: dict = {}
    codes, sizes = [], []
    for k, (s, ids) in enumerate(zip(samples, clusters)):
        ids = [("row", k, i) for i in range(len(s))] if ids is None else ids  # a cluster per row
        if len(ids) != len(s):
            raise ValueError(f"clusters: {len(ids)} ids for {len(s)} images")
        universe = common if shared else {}
        codes.append(_codes(ids, universe))
        sizes.append(len(universe))
    return codes, [len(common)] * len(samples) if shared else sizes


def resampled_rows(samples: Sequence[np.ndarray], resamples: int, seed: int, clusters: Clusters = None,
                   shared: bool = False) -> Iterator[list[np.ndarray]]:
    """Row indices of each sample in ``resamples`` cluster resamples (module docstring).

    Each row appears as often as its cluster was drawn; rows keep their order, so two samples
    aligned row by row (the same images under two variants) stay aligned.
    """
    codes, sizes = _row_codes(samples, clusters, shared)
    rng = np.random.default_rng(seed)
    rows = [np.arange(len(c)) for c in codes]
    for _ in range(resamples):
        if shared:
            counts = np.bincount(rng.integers(0, sizes[0], sizes[0]), minlength=sizes[0])
            yield [np.repeat(r, counts[c]) for r, c in zip(rows, codes)]
        else:
            yield [np.repeat(r, np.bincount(rng.integers(0, k, k), minlength=k)[c])
                   for r, c, k in zip(rows, codes, sizes)]


def n_clusters(samples: Sequence[np.ndarray], clusters: Clusters = None, shared: bool = False) -> list[int]:
    """Number of clusters each sample is resampled over."""
    return _row_codes(samples, clusters, shared)[1]


def bootstrap_values(stat: Callable[..., float], samples: Sequence[np.ndarray], resamples: int, seed: int,
                     clusters: Clusters = None, shared: bool = False) -> np.ndarray | None:
    """``stat(*resampled samples)`` for each resample; None without resamples, an empty sample,
    or (with clusters) fewer than two clusters to draw from."""
    samples = [np.asarray(s) for s in samples]
    if resamples <= 0 or any(len(s) == 0 for s in samples):
        return None
    if clusters is not None and min(n_clusters(samples, clusters, shared)) < 2:
        return None
    return np.array([stat(*[s[r] for s, r in zip(samples, rows)])
                     for rows in resampled_rows(samples, resamples, seed, clusters, shared)], dtype=np.float64)


def bootstrap_ci(stat: Callable[..., float], samples: Sequence[np.ndarray], resamples: int, seed: int,
                 level: float = LEVEL, clusters: Clusters = None, shared: bool = False) -> list[float] | None:
    """Percentile interval of ``stat(*samples)`` (module docstring); ``[low, high]`` or None."""
    values = bootstrap_values(stat, samples, resamples, seed, clusters, shared)
    return None if values is None else _percentile_interval(values, level)


def figure(stat: Callable[..., float], samples: Sequence[np.ndarray], resamples: int, seed: int,
           clusters: Clusters = None, shared: bool = False, bias_corrected: bool = False) -> dict:
    """A figure record: ``stat`` on the full samples plus its bootstrap interval.

    ``bias_corrected``: the value is theta_bc and the interval the basic one (module docstring);
    ``estimate`` keeps theta_hat. A NaN point estimate becomes n/a.
    """
    samples = [np.asarray(s) for s in samples]
    value = float(stat(*samples)) if all(len(s) for s in samples) else math.nan
    if not math.isfinite(value):
        return not_available("not computable on these images (no pixels of this structure, or too few images)")
    out = {"value": value, "ci": None, "status": "ok", "n": [int(len(s)) for s in samples]}
    if clusters is not None:
        out["n_clusters"] = n_clusters(samples, clusters, shared)
    values = bootstrap_values(stat, samples, resamples, seed, clusters, shared)
    if values is not None and bias_corrected:
        out.update(_basic_interval(values, value, LEVEL))
    elif values is not None:
        out["ci"] = _percentile_interval(values, LEVEL)
    return out


def finite_mean(values: np.ndarray) -> np.ndarray | float:
    """Mean over the first axis of the finite values; NaN (without numpy's warning) where there
    are none. A float for a 1-D input."""
    x = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(x)
    count, total = finite.sum(axis=0), np.where(finite, x, 0.0).sum(axis=0)
    out = np.divide(total, count, out=np.full(np.shape(total), np.nan), where=count > 0)
    return float(out) if out.ndim == 0 else out


def not_available(reason: str) -> dict:
    """A figure that could not be computed, with the reason."""
    return {"value": None, "ci": None, "status": "n/a", "reason": reason}


def _percentile_interval(values: np.ndarray, level: float) -> list[float] | None:
    """``[q_alpha, q_(1-alpha)]`` of the finite ``values``, alpha = (1 - level) / 2; None if none."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return [float(low), float(high)]


def _basic_interval(values: np.ndarray, estimate: float, level: float) -> dict:
    """``value`` = 2 theta_hat - mean(theta*), ``ci`` = [2 theta_hat - q_hi, 2 theta_hat - q_lo], ``estimate``."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return {"value": estimate, "ci": None, "estimate": estimate}
    low, high = _percentile_interval(finite, level)
    return {"value": float(2 * estimate - finite.mean()), "ci": [float(2 * estimate - high), float(2 * estimate - low)],
            "estimate": estimate}


def cluster_bootstrap_ci(stat: Callable[[np.ndarray], float], values: np.ndarray, clusters: Sequence,
                         resamples: int, seed: int, level: float = LEVEL) -> list[float] | None:
    """Percentile interval of ``stat(values)`` resampling whole clusters (patients).

    ``values``' first axis indexes images, ``clusters[i]`` is image i's patient id (hashable).
    Returns ``[low, high]``, or None when ``resamples`` is 0, there are fewer than two clusters
    or every resample gave NaN.
    """
    values = np.asarray(values)
    if len(clusters) != len(values):
        raise ValueError(f"clusters: {len(clusters)} ids for {len(values)} images")
    return bootstrap_ci(stat, [values], resamples, seed, level, clusters=[clusters])


def paired_cluster_bootstrap_ci(stat: Callable[[np.ndarray], float], a: np.ndarray, b: np.ndarray,
                                clusters: Sequence, resamples: int, seed: int,
                                level: float = LEVEL) -> list[float] | None:
    """Percentile interval of ``stat(b) - stat(a)`` (b minus a), the same clusters drawn for both.

    ``a`` and ``b`` hold the two variants' values on the same images, aligned row by row, with
    shared ``clusters``. None as in :func:`cluster_bootstrap_ci`.
    """
    a, b = np.asarray(a), np.asarray(b)
    if len(a) != len(b):
        raise ValueError(f"paired values: {len(a)} rows in a, {len(b)} in b")
    return bootstrap_ci(lambda x, y: stat(y) - stat(x), [a, b], resamples, seed, level,
                        clusters=[clusters, clusters], shared=True)


def paired_difference_figure(stat: Callable[[np.ndarray], float], a: np.ndarray, b: np.ndarray,
                             clusters: Sequence, resamples: int, seed: int) -> dict:
    """A figure record of ``stat(b) - stat(a)`` with its paired cluster bootstrap interval.

    The record of :func:`figure` plus ``n_patients`` and ``n_images``; ``ci`` is None with one
    patient. A NaN point estimate becomes n/a.
    """
    a, b = np.asarray(a), np.asarray(b)
    value = float(stat(b) - stat(a)) if len(a) and len(b) else math.nan
    if not math.isfinite(value):
        return not_available("difference not computable on these images")
    if len(clusters) != len(a):
        raise ValueError(f"clusters: {len(clusters)} ids for {len(a)} images")
    return {"value": value, "status": "ok", "n": [int(len(a)), int(len(b))],
            "ci": paired_cluster_bootstrap_ci(stat, a, b, clusters, resamples, seed),
            "n_patients": len(set(clusters)), "n_images": int(len(a))}
