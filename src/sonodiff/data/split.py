"""Patient-level train/val/test splits: official where a dataset has one, else seeded.

Seeded split of ``n`` patients with fractions ``(f_train, f_val, f_test)``: the patients, sorted,
are permuted by ``numpy.random.default_rng(seed)``; the first ``n_test = round(f_test n)`` go to
test, the next ``n_val = round(f_val n)`` to val, the rest to train. With three or more patients
every split with a non-zero fraction gets at least one. Strata (e.g. BUSI classes) are split
one by one, so each class keeps the fractions.

Duplicate groups (:mod:`sonodiff.data.duplicates`): the patients of one group take one split. A
group enters the seeded split as one patient, its smallest id (:func:`representatives`), with that
patient's stratum; every member then takes its split. Without groups the split is unchanged.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

SPLITS = ("train", "val", "test")


def _counts(n: int, fractions: Mapping[str, float]) -> tuple[int, int]:
    f_val, f_test = float(fractions.get("val", 0)), float(fractions.get("test", 0))
    n_test, n_val = int(round(f_test * n)), int(round(f_val * n))
    if n >= 3:
        n_test = max(n_test, 1) if f_test > 0 else 0
        n_val = max(n_val, 1) if f_val > 0 else 0
    while n_test + n_val > n - (1 if float(fractions.get("train", 0)) > 0 and n > 0 else 0):
        if n_val >= n_test and n_val > 0:
            n_val -= 1
        else:
            n_test -= 1
    return n_val, n_test


def seeded_split(patients: Sequence[str], fractions: Mapping[str, float], seed: int,
                 strata: Mapping[str, str] | None = None) -> dict[str, str]:
    """Patient -> split by the seeded rule of the module docstring."""
    groups: dict[str, list[str]] = {}
    for p in sorted(set(patients)):
        groups.setdefault(strata.get(p, "") if strata else "", []).append(p)
    rng = np.random.default_rng(seed)
    out: dict[str, str] = {}
    for key in sorted(groups):
        members = groups[key]
        order = [members[i] for i in rng.permutation(len(members))]
        n_val, n_test = _counts(len(members), fractions)
        for i, p in enumerate(order):
            out[p] = "test" if i < n_test else ("val" if i < n_test + n_val else "train")
    return out


def representatives(patients: Sequence[str], groups: Mapping[str, Sequence[str]] | None) -> dict[str, str]:
    """Patient -> the patient that stands for its group among ``patients`` (smallest id), or itself."""
    rep = {p: p for p in patients}
    for members in (groups or {}).values():
        present = sorted(set(members) & rep.keys())
        for p in present:
            rep[p] = present[0]
    return rep


def grouped_split(patients: Sequence[str], fractions: Mapping[str, float], seed: int,
                  strata: Mapping[str, str] | None = None,
                  groups: Mapping[str, Sequence[str]] | None = None) -> dict[str, str]:
    """:func:`seeded_split` with each group of ``groups`` (id -> patients) in one split."""
    rep = representatives(patients, groups)
    heads = sorted(set(rep.values()))
    split = seeded_split(heads, fractions, seed, {h: strata[h] for h in heads if h in strata} if strata else None)
    return {p: split[rep[p]] for p in patients}


def carve_validation(patients: Sequence[str], fraction: float, seed: int,
                     groups: Mapping[str, Sequence[str]] | None = None) -> dict[str, str]:
    """Split official training patients into train and val (``fraction`` of them to val), each
    duplicate group whole."""
    return grouped_split(patients, {"train": 1 - fraction, "val": fraction, "test": 0.0}, seed, groups=groups)
