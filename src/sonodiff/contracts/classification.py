"""The classify stage's record: one classifier per (dataset, training source), Freiche et al. 2025.

Two files, paths given by the rule:

- the record (JSON, :data:`RECORD_KEYS` required): ``dataset``, ``format``, ``source``, ``kind``
  (``real``, ``real+synthetic``, ``synthetic``), ``variant``, ``generator_fraction`` (the fraction
  of the train split the generator of a synthetic source was trained on; None: all of it or no
  generator), ``classes`` (class names in id order), ``arch``, ``seeds``, ``train`` (image counts
  in all, real, synthetic and per class; steps, batch size, rates; seconds per seed),
  ``bootstrap`` (``resamples``, ``seed``, ``level``, ``unit``), and ``test_sets``: per test set
  name (``test``: the real test split; ``external``: another prepared dataset) its ``dataset``,
  ``n_images``, ``n_patients``, ``classes_present``, ``per_class`` image counts and

  - ``auc``: a figure record (:mod:`sonodiff.stats`: ``value``, ``ci``, ``status``, ``n``,
    ``n_clusters``) of the mean over seeds of each seed's AUC, with ``per_seed`` and ``seed_std``
    (ddof 1; None with one seed); the interval resamples test patients, the same draws for every
    seed;
  - ``auc_of_mean_scores``: the figure of the AUC of the seed-averaged scores (the ensemble).

- the scores (``.npz``, no pickles), per test set ``t``: ``<t>/scores`` (N, K) float64, the
  softmax probabilities averaged over seeds; ``<t>/scores_by_seed`` (S, N, K); ``<t>/labels`` (N,)
  int64 class ids; ``<t>/sample_id`` and ``<t>/patient_id`` (N,) str; plus ``classes`` (K,) str
  and ``test_sets`` (names) str. Read back by :func:`read_scores` as ``{t: {field: array}}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from sonodiff.contracts.records import read_record, write_record
from sonodiff.errors import InputError
from sonodiff.io import atomic_path

RECORD_KEYS = ("dataset", "source", "kind", "classes", "seeds", "test_sets")
SCORE_FIELDS = ("scores", "scores_by_seed", "labels", "sample_id", "patient_id")


def write_classification_record(path: str | Path, record: Mapping) -> None:
    write_record(path, record, RECORD_KEYS, "classification record")


def read_classification_record(path: str | Path) -> dict:
    return read_record(path, RECORD_KEYS, "classification record")


def write_scores(path: str | Path, classes: list[str], test_sets: Mapping[str, Mapping[str, np.ndarray]]) -> None:
    """The per-image scores of every test set (module docstring), atomically."""
    arrays = {"classes": np.array(list(classes), dtype=str), "test_sets": np.array(list(test_sets), dtype=str)}
    for name, fields in test_sets.items():
        missing = [f for f in SCORE_FIELDS if f not in fields]
        if missing:
            raise ValueError(f"scores of test set {name!r} lack {missing}")
        arrays.update({f"{name}/{f}": np.asarray(fields[f], dtype=str if f.endswith("_id") else None)
                       for f in SCORE_FIELDS})
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def read_scores(path: str | Path) -> tuple[list[str], dict[str, dict[str, np.ndarray]]]:
    """(classes, ``{test set: {field: array}}``) of a scores file."""
    try:
        with np.load(path, allow_pickle=False) as data:
            classes = [str(c) for c in data["classes"]]
            sets = {str(t): {f: data[f"{t}/{f}"] for f in SCORE_FIELDS} for t in data["test_sets"]}
    except (OSError, KeyError, ValueError) as err:
        raise InputError(path, f"unreadable classification scores ({err})") from err
    return classes, sets
