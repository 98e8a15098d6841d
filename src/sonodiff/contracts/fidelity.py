"""The mask-fidelity record: how well a mask-conditioned (ControlNet) sample set follows its masks.

One JSON record per (dataset, variant), written by :mod:`sonodiff.segment.fidelity`: the
segmenter trained on real data only segments every generated image, and its prediction is scored
against the label map the image was conditioned on. Paths are the caller's (the rule's); the
proposed places are ``segment/{dataset}/fidelity_{variant}.json`` and the figure
``figures/{dataset}/mask_fidelity_{variant}.png``.

Keys (:data:`RECORD_KEYS` are required):

- ``dataset``, ``variant``, ``segmenter`` (``source``, ``seeds``), ``structures``
  (``{key: {"label", "ids"}}``, the segmenter's), ``bootstrap`` (``resamples``, ``seed``, ``level``,
  ``unit``: ``patient_id``), ``counts`` (``images``, ``patients``, ``seeds``, ``skipped``: rows
  without a conditioning map);
- ``dice``: per structure, over the images whose conditioning map holds it, the figure record of
  the mean Dice (:func:`sonodiff.stats.figure`: ``value``, ``ci``, ``status``; plus ``n_images``
  and ``n_patients``), or ``status`` "n/a" with the reason;
- ``empty_masks``: per structure, the images whose map lacks it (Dice undefined): ``n_images``,
  ``n_patients`` and ``empty_prediction``, the figure record of the fraction of them where the
  segmenter also predicts none of it;
- ``by_class``: with a ``class`` column, the same ``dice`` and ``empty_masks`` per class;
- ``reference``: the real segmenter's Dice on the real test split, from its segmentation record
  (``source``, and per structure the record's mean over seeds, ``record_mean``, with the figure
  record of the per-image Dice averaged over seeds), or null without one;
- ``per_image``: ``sample_id``, ``patient_id``, ``class`` (empty without the column), ``label``
  (the conditioning map's path), per structure the Dice averaged over seeds (null where the map
  lacks the structure) and ``<structure>_empty_prediction`` (fraction of seeds predicting none of
  it), and ``by_seed`` (per seed, the Dice per structure).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from sonodiff.contracts.records import read_record, write_record

RECORD_KEYS = ("dataset", "variant", "structures", "counts", "dice", "empty_masks", "per_image")


def write_fidelity_record(path: str | Path, record: Mapping) -> None:
    """Write the record atomically (NaN as null); a record without :data:`RECORD_KEYS` is refused."""
    write_record(path, record, RECORD_KEYS, "mask-fidelity record")


def read_fidelity_record(path: str | Path) -> dict:
    return read_record(path, RECORD_KEYS, "mask-fidelity record")
