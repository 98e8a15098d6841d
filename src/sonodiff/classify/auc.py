"""The area under the ROC curve from the Mann-Whitney rank statistic (NumPy only).

Binary (Hanley & McNeil 1982; Mann & Whitney 1947): with n_1 positive and n_0 negative images and
r_i the rank of image i's score among all N = n_1 + n_0 scores (1 = lowest; tied scores share
the average of the ranks they span),

    AUC = (R_1 - n_1 (n_1 + 1) / 2) / (n_1 n_0),      R_1 = sum of r_i over the positive images

which is P(s_pos > s_neg) + P(s_pos = s_neg) / 2 over all positive-negative pairs, the area under
the empirical ROC curve with ties drawn as diagonal segments (sklearn's ``roc_auc_score``). It is
undefined (NaN) without a positive or without a negative image.

One-vs-rest macro (Provost & Domingos 2000, as sklearn's ``multi_class="ovr", average="macro"``):
with scores S (N, K) and labels y_i in {0..K-1},

    AUC_macro = (1/K) sum_k AUC(S[:, k], y == k)

A class with no image among the labels has no one-vs-rest AUC, so the macro AUC is undefined:
:func:`ovr_macro_auc` returns NaN then (sklearn raises instead). :func:`present_classes_auc` is the
figure the classification check reports on a test set that lacks some training classes (an
external set of benign and malignant lesions only): the probabilities are restricted to the
classes present and renormalised, p'_ik = p_ik / sum_{j present} p_ij, and the macro AUC is taken
over those classes; with two classes present it is the binary AUC of the higher class id against
the lower, on p'_high (the two one-vs-rest AUCs are equal but for rounding in tied scores).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values`` (N,), ties given the average of the ranks they span (float64)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    new = np.r_[True, xs[1:] != xs[:-1]] if len(xs) else np.zeros(0, bool)
    group = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], len(xs)]
    ranks = np.empty(len(xs), dtype=np.float64)
    ranks[order] = ((starts + ends + 1) / 2.0)[group]   # mean of the 1-based ranks start+1 .. end
    return ranks


def binary_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """AUC of ``scores`` (N,) for the boolean ``positive`` (N,) (module docstring); NaN without a
    positive or a negative image."""
    s, pos = np.asarray(scores, dtype=np.float64).ravel(), np.asarray(positive, dtype=bool).ravel()
    if s.shape != pos.shape:
        raise ValueError(f"{len(s)} scores for {len(pos)} labels")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    n1 = int(pos.sum())
    n0 = len(pos) - n1
    if n1 == 0 or n0 == 0:
        return math.nan
    r1 = float(average_ranks(s)[pos].sum())
    return (r1 - n1 * (n1 + 1) / 2.0) / (n1 * n0)


def ovr_aucs(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """One-vs-rest AUC of each class k (K,): ``binary_auc(scores[:, k], labels == k)``; NaN for a
    class absent from ``labels`` (or the only one present)."""
    s, y = _check(scores, labels)
    return np.array([binary_auc(s[:, k], y == k) for k in range(s.shape[1])], dtype=np.float64)


def ovr_macro_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """One-vs-rest macro AUC of scores (N, K) and integer labels (N,) in 0..K-1; NaN when a class
    has no image (module docstring)."""
    aucs = ovr_aucs(scores, labels)
    return math.nan if np.isnan(aucs).any() else float(aucs.mean())


def present_classes_auc(probabilities: np.ndarray, labels: np.ndarray,
                        classes: Sequence[int] | None = None) -> float:
    """Macro AUC over the classes present, on probabilities renormalised over them (module
    docstring). ``classes``: the class ids to score (default: those in ``labels``); a row whose
    label is not among them is an error. NaN with fewer than two classes."""
    p, y = _check(probabilities, labels)
    keep = np.unique(y) if classes is None else np.asarray(sorted(set(int(c) for c in classes)), dtype=np.int64)
    if len(keep) < 2:
        return math.nan
    index = np.full(p.shape[1], -1, dtype=np.int64)
    index[keep] = np.arange(len(keep))
    if (index[y] < 0).any():
        raise ValueError("labels outside the scored classes")
    sub = p[:, keep]
    total = sub.sum(axis=1, keepdims=True)
    sub = np.divide(sub, total, out=np.full_like(sub, 1.0 / len(keep)), where=total > 0)
    if len(keep) == 2:   # one AUC: p'_0 = 1 - p'_1 up to rounding, which would break ties differently
        return binary_auc(sub[:, 1], index[y] == 1)
    return ovr_macro_auc(sub, index[y])


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels).astype(np.int64).ravel()
    if s.ndim != 2 or len(s) != len(y):
        raise ValueError(f"scores of shape {s.shape} for {len(y)} labels; need (N, K)")
    if len(y) and (y.min() < 0 or y.max() >= s.shape[1]):
        raise ValueError(f"labels outside 0..{s.shape[1] - 1}")
    return s, y
