"""Leakage guard: no test patient may reach the data that made or trained on synthetic images.

The test patients are those of split ``test`` in the prepared manifest (which must put every
patient in one split only). A patient *leaks* when it appears in

- the augmented label maps (their manifest, :mod:`sonodiff.contracts.labelmaps`): by
  ``patient_id``, by a ``split`` of ``test``, by a ``source_sample_id`` that is a test sample, or
  by a ``real_image`` that is a test image;
- the samples of any variant a source uses (their manifests, :mod:`sonodiff.contracts.samples`):
  the same four ways, ``source_sample_id`` also read through the augmented maps' ids;
- the training or validation set of any configured segmentation source.

The undeformed maps of the augmented manifest (``sample_id == source_sample_id``, ``copy`` -1:
the val maps kept for the paired metrics) are checked the same four ways: they carry their
source's patient and split, so they pass as val-split maps unless that source is a test sample.
An undeformed id is its own alias, so its samples resolve to the prepared sample directly.

:func:`check_leakage` raises :class:`~sonodiff.errors.InputError` naming the file and the
patients, so the ``check_leakage`` rule fails the DAG before any segmenter trains; when nothing
leaks it returns the report that the rule writes
(:func:`sonodiff.contracts.segmentation.write_leakage_report`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from sonodiff.contracts.manifest import read_manifest
from sonodiff.contracts.samples import read_samples
from sonodiff.errors import InputError
from sonodiff.segment.data import build_sets, read_prepared


def leaking_patients(df: pd.DataFrame, prepared: pd.DataFrame,
                     aliases: Mapping[str, str] | None = None) -> list[str]:
    """Test patients that a manifest ``df`` uses (module docstring), sorted.

    ``aliases`` maps further sample ids (e.g. augmented maps') to prepared sample ids.
    """
    test = prepared[prepared["split"] == "test"]
    test_patients = set(test["patient_id"])
    sample_patient = dict(zip(prepared["sample_id"], prepared["patient_id"]))
    image_patient = {str(p): pid for p, pid in zip(test["image"], test["patient_id"])}
    found: set[str] = set()
    if "patient_id" in df:
        found |= set(df["patient_id"].astype(str)) & test_patients
    if "split" in df and "patient_id" in df:
        found |= set(df.loc[df["split"] == "test", "patient_id"].astype(str))
    if "source_sample_id" in df:
        for sid in df["source_sample_id"].astype(str):
            sid = (aliases or {}).get(sid, sid)
            if sample_patient.get(sid) in test_patients:
                found.add(sample_patient[sid])
    if "real_image" in df:
        found |= {image_patient[p] for p in df["real_image"].astype(str) if p in image_patient}
    return sorted(found)


def check_leakage(prepared_manifest: str | Path, augment_manifest: str | Path | None,
                  samples_manifests: Mapping[str, str | Path], sources: Iterable[str]) -> str:
    """Raise :class:`InputError` if any test patient leaks; else return a short report.

    ``samples_manifests`` maps each variant the ``sources`` use to its samples manifest.
    """
    prepared = read_prepared(prepared_manifest)
    test_patients = sorted(set(prepared.loc[prepared["split"] == "test", "patient_id"]))
    if not test_patients:
        raise InputError(prepared_manifest, "no test patients: the segmentation check needs a test split")
    problems: list[tuple[str, str, list[str]]] = []
    lines = [f"prepared: {prepared_manifest} ({len(prepared)} images, {len(test_patients)} test patients)"]
    aliases: dict[str, str] = {}
    if augment_manifest is not None:
        augmented = read_manifest(augment_manifest, required=["sample_id", "patient_id"])
        if "source_sample_id" in augmented:
            aliases = dict(zip(augmented["sample_id"].astype(str), augmented["source_sample_id"].astype(str)))
        bad = leaking_patients(augmented, prepared)
        if bad:
            problems.append((str(augment_manifest), "the augmented label maps", bad))
        lines.append(f"augmented label maps: {augment_manifest} ({len(augmented)} maps)")
    for variant, path in sorted(samples_manifests.items()):
        samples = read_samples(path, required=["sample_id", "patient_id"])
        bad = leaking_patients(samples, prepared, aliases)
        if bad:
            problems.append((str(path), f"the {variant} samples", bad))
        lines.append(f"samples {variant}: {path} ({len(samples)} images)")
    if not problems:
        test_set = set(test_patients)
        for source in sources:
            sets = build_sets(prepared_manifest, source, samples_manifests)
            used = pd.concat([sets["train"], sets["val"]])
            bad = sorted(set(used["patient_id"]) & test_set)
            if bad:
                problems.append((str(prepared_manifest), f"the {source} training sets", bad))
            lines.append(f"source {source}: {len(sets['train'])} train, {len(sets['val'])} val, "
                         f"{len(sets['test'])} test images")
    if problems:
        where = problems[0][0]
        reason = "; ".join(f"test patients in {what}: {', '.join(p)}" for _, what, p in problems)
        raise InputError(where, reason)
    lines.append(f"no test patient leaks ({', '.join(test_patients)})")
    return "\n".join(lines) + "\n"
