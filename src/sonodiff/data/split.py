"""Patient-level train/val/test splits: official where a dataset has one, else seeded.

Seeded split of ``n`` patients with fractions ``(f_train, f_val, f_test)``: the patients, sorted,
are permuted by ``numpy.random.default_rng(seed)``; the first ``n_test = round(f_test n)`` go to
test, the next ``n_val = round(f_val n)`` to val, the rest to train. Every split with a non-zero
fraction gets at least one patient: fewer patients than such splits is an
:class:`~sonodiff.errors.InputError` (config key ``split.fractions``, naming the dataset and both
numbers), never a split left empty. Strata (e.g. BUSI classes) are split one by one, so each class
keeps the fractions; strata too small to fill every split are pooled and split together.

Split files (an official split read by a converter, :func:`check_split_lists`) must match the
data: an id of a file without a patient in the data, and a patient of the data in no file, are
errors naming the file and the first few ids.

Duplicate groups (:mod:`sonodiff.data.duplicates`): the patients of one group take one split. A
group enters the seeded split as one patient, its smallest id (:func:`representatives`), with that
patient's stratum; every member then takes its split. Without groups the split is unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from sonodiff.errors import InputError

SPLITS = ("train", "val", "test")
#: Where a split that cannot be made is reported.
FRACTIONS_KEY = "config key split.fractions"


def needed(fractions: Mapping[str, float]) -> int:
    """The least number of patients ``fractions`` need: one per split of a non-zero fraction."""
    return sum(float(fractions.get(s, 0)) > 0 for s in SPLITS)


def check_enough(n: int, fractions: Mapping[str, float], dataset: str = "", what: str = "patients") -> None:
    """:class:`InputError` at ``split.fractions`` when ``n`` patients cannot fill every split of a
    non-zero fraction (the message names the dataset and says how many there are and are needed)."""
    need = needed(fractions)
    if n < need:
        splits = ", ".join(f"{s} {float(fractions.get(s, 0)):g}" for s in SPLITS if float(fractions.get(s, 0)) > 0)
        name = f"dataset {dataset} has" if dataset else "the data have"
        what = what if n != 1 else what.replace("patients", "patient", 1)
        raise InputError(FRACTIONS_KEY, f"{name} {n} {what}, but the non-zero fractions ({splits}) need at "
                                        f"least {need}, one per split; add patients or set a fraction to 0")


def first_ids(ids: Sequence[str], shown: int = 5) -> str:
    """The first ``shown`` of ``ids``, and their count where there are more."""
    more = f", ... ({len(ids)} in all)" if len(ids) > shown else ""
    return f"{', '.join(ids[:shown])}{more}"


def check_split_lists(lists: Mapping[Path, Sequence[str]], present: Iterable[str], data: str,
                      shown: int = 5) -> None:
    """The patient ids of split files (``{file: ids}``) against the patients of the data (found in
    ``data``, a folder): an id without a patient is an :class:`InputError` naming its file, a
    patient in no file one naming the file (the files' folder where there are several); each
    message gives the first ``shown`` ids and their count."""
    present = set(present)
    for path, ids in lists.items():
        missing = sorted(set(ids) - present)
        if missing:
            raise InputError(path, f"{len(missing)} patient ids with no images in {data}: {first_ids(missing, shown)}")
    listed = {pid for ids in lists.values() for pid in ids}
    absent = sorted(present - listed)
    if absent:
        files = list(lists)
        where = files[0] if len(files) == 1 else Path(os.path.commonpath([str(f.parent) for f in files]))
        raise InputError(where, f"{len(absent)} patients with images in {data} are in no split file "
                                f"({', '.join(f.name for f in files)}): {first_ids(absent, shown)}")


def _counts(n: int, fractions: Mapping[str, float]) -> tuple[int, int]:
    f_val, f_test = float(fractions.get("val", 0)), float(fractions.get("test", 0))
    n_test, n_val = int(round(f_test * n)), int(round(f_val * n))
    if n >= needed(fractions):
        n_test = max(n_test, 1) if f_test > 0 else 0
        n_val = max(n_val, 1) if f_val > 0 else 0
    while n_test + n_val > n - (1 if float(fractions.get("train", 0)) > 0 and n > 0 else 0):
        if n_val >= n_test and n_val > 0:
            n_val -= 1
        else:
            n_test -= 1
    return n_val, n_test


def seeded_split(patients: Sequence[str], fractions: Mapping[str, float], seed: int,
                 strata: Mapping[str, str] | None = None, dataset: str = "") -> dict[str, str]:
    """Patient -> split by the seeded rule of the module docstring (``dataset`` names the data in
    the error for too few patients)."""
    patients = sorted(set(patients))
    check_enough(len(patients), fractions, dataset)
    groups: dict[str, list[str]] = {}
    for p in patients:
        groups.setdefault(strata.get(p, "") if strata else "", []).append(p)
    need = needed(fractions)
    parts = [groups[key] for key in sorted(groups) if len(groups[key]) >= need]
    pooled = sorted(p for key in groups if len(groups[key]) < need for p in groups[key])
    if pooled:
        parts.append(pooled)
    rng = np.random.default_rng(seed)
    out: dict[str, str] = {}
    for members in parts:
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
                  groups: Mapping[str, Sequence[str]] | None = None, dataset: str = "") -> dict[str, str]:
    """:func:`seeded_split` with each group of ``groups`` (id -> patients) in one split."""
    rep = representatives(patients, groups)
    heads = sorted(set(rep.values()))
    n = len(set(patients))
    check_enough(len(heads), fractions, dataset,
                 "patients" if len(heads) == n else f"patients once duplicate groups are joined ({n} before)")
    split = seeded_split(heads, fractions, seed, {h: strata[h] for h in heads if h in strata} if strata else None,
                         dataset)
    return {p: split[rep[p]] for p in patients}


def carve_validation(patients: Sequence[str], fraction: float, seed: int,
                     groups: Mapping[str, Sequence[str]] | None = None, dataset: str = "") -> dict[str, str]:
    """Split official training patients into train and val (``fraction`` of them to val), each
    duplicate group whole."""
    return grouped_split(patients, {"train": 1 - fraction, "val": fraction, "test": 0.0}, seed, groups=groups,
                         dataset=dataset)
