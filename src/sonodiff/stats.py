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
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return [float(low), float(high)]


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
