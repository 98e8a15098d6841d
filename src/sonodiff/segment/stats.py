"""Summary of per-image scores: mean, standard deviation, 95% percentile bootstrap interval.

NumPy only (the table rule runs without MONAI). Scores that are NaN (a structure absent from an
image's ground truth) are left out of every statistic. The interval comes from
:func:`sonodiff.metrics.bootstrap.bootstrap_ci` (resampling test images with replacement).
"""

from __future__ import annotations

import numpy as np

from sonodiff.metrics.bootstrap import bootstrap_ci


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
