"""Bootstrap confidence intervals, the one record every reported figure uses, and score summaries.

Neither paper reports an interval; every figure we compute carries a 95% percentile bootstrap
interval over images (Efron & Tibshirani 1993, ch. 13):

    theta*_b = stat(X*_b),  X*_b = n rows of X drawn with replacement,  b = 1..B
    CI_95 = [q_0.025(theta*), q_0.975(theta*)]

When a statistic compares two image sets (synthetic vs real), each set is resampled
independently with its own size. Resampled statistics that come out NaN (e.g. a structure absent
from every drawn image) are left out of the quantiles. Resampling uses one
``numpy.random.default_rng(seed)`` per figure, so a figure's interval is reproducible alone.

The percentile interval of a spread statistic (std, range) sits below the point estimate, since
a resample holds repeats; read those intervals as the spread's sampling variability only.

Images of one patient (and augmented copies of one label map) are not independent, so the
cluster bootstrap resamples whole clusters instead (Davison & Hinkley 1997, sec. 3.8; Field &
Welsh 2007). With clusters C_1..C_K (rows X_{C_k}) and k*_{b,1..K} drawn from {1..K} with
replacement:

    theta*_b = stat(X_{C_{k*_{b,1}}} u ... u X_{C_{k*_{b,K}}})       (repeats kept)

A paired comparison of two variants on the same images uses the same draws for both:

    Delta_hat = stat(B) - stat(A),   Delta*_b = stat(B*_b) - stat(A*_b)

(sign: b minus a, e.g. B-maps minus baseline), and the interval is the percentile interval of
Delta*. Fewer than two clusters give no interval (None): one patient says nothing about the
spread between patients.

A figure is the dict ``{"value", "ci", "status", "n"}`` (``status`` "ok"), or
``{"value": None, "ci": None, "status": "n/a", "reason": ...}`` when it could not be computed.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

LEVEL = 0.95


def bootstrap_ci(
    stat: Callable[..., float],
    samples: Sequence[np.ndarray],
    resamples: int,
    seed: int,
    level: float = LEVEL,
) -> list[float] | None:
    """Percentile bootstrap interval of ``stat(*samples)``, resampling rows of every sample.

    ``samples`` are arrays whose first axis indexes images; each is resampled independently.
    Returns ``[low, high]``, or None when ``resamples`` is 0 or every resample gave NaN.
    """
    if resamples <= 0 or any(len(s) == 0 for s in samples):
        return None
    rng = np.random.default_rng(seed)
    values = np.empty(resamples)
    for b in range(resamples):
        drawn = [s[rng.integers(0, len(s), len(s))] for s in samples]
        values[b] = stat(*drawn)
    return _percentile_interval(values, level)


def figure(
    stat: Callable[..., float],
    samples: Sequence[np.ndarray],
    resamples: int,
    seed: int,
) -> dict:
    """A figure record: ``stat`` on the full samples plus its bootstrap interval.

    A NaN point estimate becomes n/a ("no images with this structure").
    """
    value = float(stat(*samples)) if all(len(s) for s in samples) else math.nan
    if not math.isfinite(value):
        return not_available("not computable on these images (no pixels of this structure, or too few images)")
    return {"value": value, "ci": bootstrap_ci(stat, samples, resamples, seed), "status": "ok",
            "n": [int(len(s)) for s in samples]}


def not_available(reason: str) -> dict:
    """A figure that could not be computed, with the reason."""
    return {"value": None, "ci": None, "status": "n/a", "reason": reason}


def summarize(values: np.ndarray, resamples: int, seed: int) -> dict:
    """Mean, standard deviation (ddof 0, as numpy and the papers' tables), interval, n.

    Over the n finite values x_i: mean = (1/n) sum_i x_i, std = sqrt((1/n) sum_i (x_i - mean)^2),
    [ci_low, ci_high] = percentile bootstrap interval of the mean (NaN when not computable).
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    ci = bootstrap_ci(np.mean, [x], resamples, seed) if x.size else None
    return {
        "mean": float(x.mean()) if x.size else float("nan"),
        "std": float(x.std()) if x.size else float("nan"),
        "ci_low": ci[0] if ci else float("nan"),
        "ci_high": ci[1] if ci else float("nan"),
        "n": int(x.size),
    }


def _percentile_interval(values: np.ndarray, level: float) -> list[float] | None:
    """``[q_alpha, q_(1-alpha)]`` of the finite ``values``, alpha = (1 - level) / 2; None if none."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return [float(low), float(high)]


def _cluster_draws(clusters: Sequence, resamples: int, seed: int):
    """Row indices of ``resamples`` cluster resamples: K cluster ids drawn with replacement.

    Clusters are numbered in order of first appearance, so any hashable ids work and relabelling
    them does not change the draws. Each resample lists every row of every drawn cluster.
    """
    groups: dict = {}
    for row, cluster in enumerate(clusters):
        groups.setdefault(cluster, []).append(row)
    order = np.concatenate([np.asarray(g, dtype=np.intp) for g in groups.values()])
    sizes = np.array([len(g) for g in groups.values()], dtype=np.intp)
    starts = np.cumsum(sizes) - sizes
    rng = np.random.default_rng(seed)
    for _ in range(resamples):
        ids = rng.integers(0, sizes.size, sizes.size)
        n = sizes[ids]
        offset = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        yield order[np.repeat(starts[ids], n) + offset]


def _n_clusters(clusters: Sequence, n_rows: int) -> int:
    if len(clusters) != n_rows:
        raise ValueError(f"clusters: {len(clusters)} ids for {n_rows} images")
    return len(set(clusters))


def cluster_bootstrap_ci(
    stat: Callable[[np.ndarray], float],
    values: np.ndarray,
    clusters: Sequence,
    resamples: int,
    seed: int,
    level: float = LEVEL,
) -> list[float] | None:
    """Percentile interval of ``stat(values)`` resampling whole clusters (patients).

    ``values``' first axis indexes images, ``clusters[i]`` is image i's patient id (hashable).
    Returns ``[low, high]``, or None when ``resamples`` is 0, there are fewer than two clusters
    or every resample gave NaN.
    """
    values = np.asarray(values)
    if resamples <= 0 or _n_clusters(clusters, len(values)) < 2:
        return None
    thetas = np.array([stat(values[rows]) for rows in _cluster_draws(clusters, resamples, seed)],
                      dtype=np.float64)
    return _percentile_interval(thetas, level)


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
    pairs = np.stack([a, b], axis=1)  # row i: (a_i, b_i), so a draw keeps the pairs together
    return cluster_bootstrap_ci(lambda rows: stat(rows[:, 1]) - stat(rows[:, 0]), pairs, clusters,
                                resamples, seed, level)


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
    return {"value": value, "status": "ok", "n": [int(len(a)), int(len(b))],
            "ci": paired_cluster_bootstrap_ci(stat, a, b, clusters, resamples, seed),
            "n_patients": _n_clusters(clusters, len(a)), "n_images": int(len(a))}
