"""AUC figures of the classification check and paired differences between sources (NumPy only).

Notation: p^k_i (K,) is seed k's softmax probabilities for test image i (K seeds s_1..s_K of
``classify.seeds``, N images of P patients), y_i its class. A test set's classes C are those of
its labels; A(p, y) is :func:`~sonodiff.classify.auc.present_classes_auc` over C (the one-vs-rest
macro AUC; on a set of two classes the binary AUC).

- The estimate is the mean over seeds of each seed's AUC, AUC = (1/K) sum_k A(p^k, y), with the
  seeds' std (ddof 1). Its 95% interval resamples test patients, each with all its images
  (:func:`sonodiff.stats.figure` with the patient ids as clusters), the same draw for every seed;
  it is conditional on the trained seeds. A resample that lacks a class of C has no AUC and is
  left out of the quantiles.
- ``auc_of_mean_scores`` is A(pbar, y) with pbar_i = (1/K) sum_k p^k_i (the seed ensemble) and the
  same kind of interval.
- The paired difference of source b minus source a on one test set is AUC_b - AUC_a on the images
  both were scored on (aligned by ``sample_id``), each the mean over its own seeds, with the same
  patients drawn for both (:func:`sonodiff.stats.bootstrap_ci` with shared clusters). A source
  against itself gives exactly 0 with the interval [0, 0]. Positive: b ranks better.

:func:`compare_sources` turns the records and score files of one table into the summary that
:mod:`sonodiff.report.classification_table` lays out (its docstring gives the structure).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from sonodiff.classify.auc import present_classes_auc
from sonodiff.contracts.classification import read_classification_record, read_scores
from sonodiff.errors import InputError
from sonodiff.stats import LEVEL, bootstrap_ci, figure, n_clusters, not_available

REFERENCE = "real"


def _present(labels: np.ndarray) -> list[int]:
    return sorted({int(y) for y in np.asarray(labels)})


def seed_mean_auc(scores_by_seed: np.ndarray, labels: np.ndarray, classes: Sequence[int]) -> float:
    """(1/K) sum_k A(p^k, y) over the classes ``classes`` (module docstring); NaN if any seed's is."""
    values = [present_classes_auc(s, labels, classes) for s in np.asarray(scores_by_seed)]
    return float(np.mean(values)) if values and all(math.isfinite(v) for v in values) else math.nan


def _seed_std(values: Sequence[float]) -> float | None:
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def auc_figures(scores_by_seed: np.ndarray, labels: np.ndarray, patients: Sequence[str],
                resamples: int, seed: int) -> dict[str, dict]:
    """``auc`` (mean over seeds, ``per_seed``, ``seed_std``) and ``auc_of_mean_scores`` figures of
    one test set (module docstring)."""
    by_seed, y = np.asarray(scores_by_seed, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    classes, rows, patients = _present(y), np.arange(len(y)), list(patients)
    if len(classes) < 2:
        reason = "fewer than two classes in this test set"
        return {"auc": not_available(reason), "auc_of_mean_scores": not_available(reason)}
    auc = figure(lambda r: seed_mean_auc(by_seed[:, r], y[r], classes), [rows], resamples, seed, clusters=[patients])
    per_seed = [present_classes_auc(s, y, classes) for s in by_seed]
    auc.update(per_seed=per_seed, seed_std=_seed_std(per_seed))
    mean = by_seed.mean(axis=0)
    ensemble = figure(lambda r: present_classes_auc(mean[r], y[r], classes), [rows], resamples, seed + 1,
                      clusters=[patients])
    return {"auc": auc, "auc_of_mean_scores": ensemble}


def paired_auc_difference(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], resamples: int,
                          seed: int) -> dict:
    """AUC of b minus AUC of a on one test set (module docstring) from two sources' score fields
    (:func:`sonodiff.contracts.classification.read_scores`); a figure record with ``n_patients``
    and ``n_images``, n/a without common images."""
    a_pos = {str(s): i for i, s in enumerate(a["sample_id"])}
    common = [(i, a_pos[str(s)]) for i, s in enumerate(b["sample_id"]) if str(s) in a_pos]
    if not common:
        return not_available("the two sources share no test images")
    b_idx, a_idx = (np.array(v, dtype=np.int64) for v in zip(*common))
    y = np.asarray(b["labels"], dtype=np.int64)[b_idx]
    if not np.array_equal(y, np.asarray(a["labels"], dtype=np.int64)[a_idx]):
        raise InputError("classification scores", "two sources disagree on the classes of their common test images")
    sa, sb = np.asarray(a["scores_by_seed"])[:, a_idx], np.asarray(b["scores_by_seed"])[:, b_idx]
    patients, classes, rows = [str(p) for p in np.asarray(b["patient_id"])[b_idx]], _present(y), np.arange(len(y))
    if len(classes) < 2:
        return not_available("fewer than two classes in this test set")

    def difference(ra: np.ndarray, rb: np.ndarray) -> float:
        return seed_mean_auc(sb[:, rb], y[rb], classes) - seed_mean_auc(sa[:, ra], y[ra], classes)

    value = difference(rows, rows)
    if not math.isfinite(value):
        return not_available("difference not computable on these images")
    ci = bootstrap_ci(difference, [rows, rows], resamples, seed, LEVEL, clusters=[patients, patients], shared=True)
    return {"value": value, "ci": ci, "status": "ok", "n": [len(rows), len(rows)],
            "n_clusters": n_clusters([rows], [patients]), "n_patients": len(set(patients)), "n_images": len(rows)}


def _bootstrap(record: Mapping, bootstrap: Mapping | None) -> tuple[int, int]:
    settings = {**record.get("bootstrap", {}), **(bootstrap or {})}
    return int(settings.get("resamples", 1000)), int(settings.get("seed", 0))


def compare_sources(records: Sequence[str | Path], scores: Sequence[str | Path], bootstrap: Mapping | None = None,
                    reference: str = REFERENCE) -> list[dict]:
    """The summary of every dataset's sources (the table's input): per dataset ``dataset``,
    ``format``, ``classes``, ``test_sets`` (name -> ``dataset``, ``n_images``, ``n_patients``),
    ``sources`` (each record's identity, ``n_seeds``, ``train`` and per test set its ``auc`` figure,
    recomputed from the scores with ``bootstrap``), ``reference`` and ``differences`` (per source
    other than ``reference``: ``source`` and per test set the paired figure source - reference).

    ``records[i]`` and ``scores[i]`` are one job's two files; ``bootstrap`` (``resamples``,
    ``seed``) overrides the records' settings, so that a change re-runs the table, not training.
    """
    if not records:
        raise InputError("classification table", "no classification records given")
    if len(records) != len(scores):
        raise InputError("classification table", f"{len(records)} records but {len(scores)} score files")
    datasets: dict[str, dict] = {}
    for record_path, scores_path in zip(records, scores):
        record = read_classification_record(record_path)
        classes, sets = read_scores(scores_path)
        if classes != list(record["classes"]):
            raise InputError(scores_path, f"classes {classes} differ from the record's {record['classes']}")
        resamples, seed = _bootstrap(record, bootstrap)
        entry = datasets.setdefault(record["dataset"], {
            "dataset": record["dataset"], "format": record.get("format"), "classes": classes, "test_sets": {},
            "sources": [], "reference": reference, "differences": [], "_scores": {},
            "bootstrap": {"resamples": resamples, "seed": seed, "level": LEVEL, "unit": "patient_id"}})
        source = {k: record.get(k) for k in ("source", "kind", "variant", "generator_fraction", "arch", "train")}
        source.update(n_seeds=len(record["seeds"]), test_sets={})
        for j, (name, fields) in enumerate(sets.items()):
            info = record["test_sets"].get(name, {})
            entry["test_sets"].setdefault(name, {"dataset": info.get("dataset"), "n_images": len(fields["labels"]),
                                                 "n_patients": len(set(map(str, fields["patient_id"])))})
            source["test_sets"][name] = auc_figures(fields["scores_by_seed"], fields["labels"],
                                                    [str(p) for p in fields["patient_id"]], resamples,
                                                    seed + 2 * j)["auc"]
        entry["sources"].append(source)
        entry["_scores"][record["source"]] = (sets, resamples, seed)
    out = []
    for entry in datasets.values():
        by_source = entry.pop("_scores")
        if reference in by_source:
            ref_sets = by_source[reference][0]
            for source in entry["sources"]:
                name = source["source"]
                if name == reference:
                    continue
                sets, resamples, seed = by_source[name]
                entry["differences"].append({"source": name, "test_sets": {
                    t: paired_auc_difference(ref_sets[t], sets[t], resamples, seed + 2 * j)
                    for j, t in enumerate(sets) if t in ref_sets}})
        out.append(entry)
    return out
