"""Training and test sets of the classification check (NumPy only).

Sources (the job's ``source`` name; :func:`parse_source`):

- ``real``: the prepared dataset's ``train`` split (validation is not used: every source trains a
  fixed number of steps and no model is selected);
- ``real+synthetic_<variant>``: the train split and every image of the given sample sets;
- ``synthetic_<variant>``: the sample sets' images alone (Freiche et al. 2025: a generator trained
  on a fraction of the train split; which model made the samples is the rule's business, the
  record keeps the fraction it is given).

Classes are the sorted distinct values of the prepared manifest's ``class`` column (every split),
numbered 0..K-1 (:func:`class_order`); a sample set's ``class`` column is the class its prompt
asked for. Synthetic images made from real label maps carry the map's ``source_sample_id``,
``patient_id`` and ``split``: a synthetic row of split ``test``, or of a patient of the prepared
test split, is refused (no classifier trains on test patients).

Test sets: ``test``, the prepared test split; ``external``, every row of another prepared dataset
(Freiche et al.: Yap et al. 2017, dataset B), whose classes must be among the training classes.
A set is a :class:`ClassSet`: uint8 images (N, H, W), class ids, sample and patient ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from sonodiff.config import Source
from sonodiff.config import parse_source as parse_config_source
from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.contracts.samples import read_samples
from sonodiff.errors import InputError
from sonodiff.io import read_pngs

CLASS_COLUMN = "class"
PREPARED_COLUMNS = ("sample_id", "patient_id", "split", "image", CLASS_COLUMN)
SAMPLE_COLUMNS = ("sample_id", "image", "patient_id", "split")


def parse_source(name: str) -> Source:
    """``real``, ``real+synthetic_<variant>`` or ``synthetic_<variant>`` (:func:`sonodiff.config.parse_source`)."""
    return parse_config_source(name, where="classification source")


@dataclass
class ClassSet:
    """Images (N, H, W) uint8, class ids (N,), ``sample_id``, ``patient_id`` and ``origin``
    (``real`` or the sample manifest's path) per row."""

    images: np.ndarray
    labels: np.ndarray
    sample_id: list[str]
    patient_id: list[str]
    origin: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def class_counts(self, classes: Sequence[str]) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(classes))
        return {c: int(n) for c, n in zip(classes, counts)}


def class_order(dataset: PreparedDataset) -> list[str]:
    """The sorted class names of the prepared manifest's ``class`` column (every split)."""
    rows = _prepared_rows(dataset)
    classes = sorted({str(c) for c in rows[CLASS_COLUMN] if str(c)})
    if len(classes) < 2:
        raise InputError(dataset.manifest, f"{len(classes)} class(es) in the class column; need at least 2")
    return classes


def _prepared_rows(dataset: PreparedDataset) -> pd.DataFrame:
    rows = dataset.rows(required=("sample_id", "patient_id", "split", "image"))
    if CLASS_COLUMN not in rows.columns:
        raise InputError(dataset.manifest, "no class column")
    return rows


def _class_ids(values: Sequence, classes: Sequence[str], where: str | Path) -> np.ndarray:
    lookup = {c: i for i, c in enumerate(classes)}
    unknown = sorted({str(v) for v in values} - set(lookup))
    if unknown:
        raise InputError(where, f"classes {unknown} are not among the training classes {list(classes)}")
    return np.array([lookup[str(v)] for v in values], dtype=np.int64)


def _set(rows: pd.DataFrame, images: np.ndarray, classes: Sequence[str], where: str | Path, origin: str) -> ClassSet:
    return ClassSet(images, _class_ids(rows[CLASS_COLUMN], classes, where), [str(s) for s in rows["sample_id"]],
                    [str(p) for p in rows["patient_id"]], [origin] * len(rows))


def real_set(dataset: PreparedDataset, split: str | None, classes: Sequence[str]) -> ClassSet:
    """The prepared rows of ``split`` (None: every row), sorted by ``sample_id``."""
    rows = _prepared_rows(dataset)
    rows = rows if split is None else rows[rows["split"] == split].reset_index(drop=True)
    if rows.empty:
        raise InputError(dataset.manifest, f"no rows of split {split!r}" if split else "no rows")
    return _set(rows, dataset.images(rows), classes, dataset.manifest, "real")


def synthetic_set(manifest: str | Path, classes: Sequence[str], test_patients: set[str] = frozenset()) -> ClassSet:
    """The images of one sample set with their prompts' classes; refuses test-split rows."""
    rows = read_samples(manifest, required=SAMPLE_COLUMNS)
    if CLASS_COLUMN not in rows.columns:
        raise InputError(manifest, "no class column")
    if rows.empty:
        raise InputError(manifest, "no synthetic images")
    leaked = rows[(rows["split"].astype(str) == "test") | rows["patient_id"].astype(str).isin(test_patients)]
    if len(leaked):
        raise InputError(manifest, f"{len(leaked)} synthetic image(s) come from test-split patients "
                                   f"(first: {leaked['sample_id'].iloc[0]}); a classifier never trains on them")
    return _set(rows, read_pngs(list(rows["image"]), manifest), classes, manifest, str(manifest))


def concat(sets: Sequence[ClassSet]) -> ClassSet:
    """The sets one after the other; their images must have one size."""
    sizes = {s.images.shape[1:] for s in sets}
    if len(sizes) != 1:
        raise InputError("classification training set", f"images of several sizes {sorted(sizes)}")
    return ClassSet(np.concatenate([s.images for s in sets]), np.concatenate([s.labels for s in sets]),
                    [x for s in sets for x in s.sample_id], [x for s in sets for x in s.patient_id],
                    [x for s in sets for x in s.origin])


def training_set(dataset: PreparedDataset, source: str, samples: Sequence[str | Path],
                 classes: Sequence[str]) -> ClassSet:
    """The training set of ``source`` (module docstring) from the prepared dataset and the sample
    manifests ``samples`` (none for ``real``, at least one otherwise)."""
    src = parse_source(source)
    if src.synthetic != bool(samples):
        raise InputError("classification source", f"{source!r} takes {'one or more' if src.synthetic else 'no'} "
                                                   f"sample sets; given {len(samples)}")
    test_patients = set(_prepared_rows(dataset).query("split == 'test'")["patient_id"].astype(str))
    parts = [real_set(dataset, "train", classes)] if src.real else []
    for manifest in samples:
        part = synthetic_set(manifest, classes, test_patients)
        if part.images.shape[1:] != (dataset.img_size, dataset.img_size):
            raise InputError(manifest, f"images of {'x'.join(map(str, part.images.shape[1:]))} px; the prepared "
                                       f"dataset's are {dataset.img_size}x{dataset.img_size}")
        parts.append(part)
    return concat(parts)


def test_sets(dataset: PreparedDataset, classes: Sequence[str],
              external: PreparedDataset | None = None) -> dict[str, ClassSet]:
    """``test`` (the prepared test split) and, when given, ``external`` (every row of it)."""
    out = {"test": real_set(dataset, "test", classes)}
    if external is not None:
        out["external"] = real_set(external, None, classes)
    return out
