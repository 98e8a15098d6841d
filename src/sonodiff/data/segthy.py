"""SegThy ultrasound volumes (Kroenke et al. 2022) in the layout of the real ``US_data.zip``::

    US_volunteer_dataset/ground_truth_data/US/<id>_US.nii               image volume
    US_volunteer_dataset/ground_truth_data/US_thyroid_label/<id>.nii    label volume

``<id>`` is ``<scan>_<volunteer>_<sweep>_<side>``, e.g. ``005_P1_1_left``: scan 5, volunteer
``P1``, sweep 1, left side. Rules:

- Images are the files matching ``image_glob`` (null: :data:`IMAGE_GLOB`), labels those matching
  ``label_glob`` (null: :data:`LABEL_GLOB`; ``""``: no labels, an unlabelled dataset); a file
  matching both is a label.
- id of an image = its stem without a trailing ``_US``; id of a label = its stem. An image and a
  label pair when their ids are equal. An id found twice, a label without an image and (once label
  volumes exist) an image without a label are errors.
- patient = the named group ``patient`` of ``patient_pattern`` (null: :data:`PATIENT_PATTERN`)
  matched against the whole id: ``005_P1_1_left`` -> ``P1``. An id it does not match is an error.
  Each volume is its own unit (key: the id); all sweeps of one volunteer share the patient id, so
  :func:`sonodiff.data.prepare.assign_splits` puts them in one split.
- Volumes are sliced along ``slice_axis`` by :func:`sonodiff.data.units.load_unit`, which checks
  the raw values of every label volume against the config's ``labels``
  (:meth:`sonodiff.data.labels.LabelSpec.check`): a value the config does not name fails, naming
  the file and the values. The release's values are documented inconsistently (thyroid 1; some
  loaders read 2/4 as carotid and 3/5 as jugular, others find the thyroid only), so they are read
  from the volumes, never assumed.
"""

from __future__ import annotations

import re
from pathlib import Path

from sonodiff.data.readers import find_files, index_files, pair_files, patient_regex, safe_id, stem
from sonodiff.data.units import Unit
from sonodiff.errors import InputError

#: Default globs (relative to the raw folder) of the real release's image and label volumes.
IMAGE_GLOB = "**/US/*_US.nii*"
LABEL_GLOB = "**/US_thyroid_label/*.nii*"
#: Suffix of an image's stem after the id (``<id>_US.nii``).
IMAGE_SUFFIX = "_US"
#: Default ``patient_pattern``: ``<scan>_<volunteer>_<sweep>_<side>``, the volunteer is the patient.
PATIENT_PATTERN = r"(?P<scan>\d+)_(?P<patient>P\d+)_(?P<sweep>\d+)_(?P<side>[A-Za-z]+)"


def setting(data: dict, key: str, default: str) -> str:
    """``data[key]``, or ``default`` where the key is missing or null (the format's own default)."""
    value = data.get(key)
    return default if value is None else str(value)


def volume_id(path: Path, suffix: str = "") -> str:
    """The id of a volume: its stem without ``suffix`` where the stem ends with it."""
    name = stem(path)
    return name[: -len(suffix)] if suffix and name.endswith(suffix) and name != suffix else name


def by_id(files: list[Path], suffix: str = "") -> dict[str, Path]:
    """Files by id; an id found twice is an error naming both files
    (:func:`sonodiff.data.readers.index_files`)."""
    return index_files(files, lambda f: volume_id(f, suffix), "volume id")


def patient_of(key: str, path: Path, pattern: re.Pattern) -> str:
    """The ``patient`` group of ``pattern`` matched against the whole id ``key`` of ``path``."""
    match = pattern.fullmatch(key)
    if match is None or not match.group("patient"):
        raise InputError(path, f"id {key!r} does not match patient_pattern {pattern.pattern!r}")
    return safe_id(match.group("patient"))


def list_units(raw: Path, data: dict) -> list[Unit]:
    """One unit per image volume, paired with its label volume, patient = volunteer (module docstring)."""
    raw = Path(raw)
    image_glob = setting(data, "image_glob", IMAGE_GLOB)
    label_glob = setting(data, "label_glob", LABEL_GLOB)
    pattern = patient_regex(setting(data, "patient_pattern", PATIENT_PATTERN))
    if len(data.get("labels", {})) > 1 and not label_glob:
        raise InputError("config key label_glob", "the labels name structures but label_glob is empty")
    label_files = find_files(raw, [label_glob]) if label_glob else []
    label_set = set(label_files)
    images = by_id([f for f in find_files(raw, [image_glob]) if f not in label_set], IMAGE_SUFFIX)
    labels = by_id(label_files)
    if not images:
        raise InputError(raw, f"no image volumes match image_glob {image_glob!r}")
    if len(data.get("labels", {})) > 1 and not labels:
        raise InputError(raw, f"no label volumes match label_glob {label_glob!r}")
    pairs = pair_files({path: (key,) for key, path in images.items()}, {path: (key,) for key, path in labels.items()},
                       lambda path: f"label volume without an image volume {volume_id(path)}{IMAGE_SUFFIX}.* "
                                    f"(image_glob {image_glob!r})", what="label volume")
    units = []
    for key, path in images.items():
        lab = pairs.get(path, ())
        if not lab and labels:
            raise InputError(path, f"image volume without a label volume {key}.* (label_glob {label_glob!r})")
        units.append(Unit(key=safe_id(key), patient_id=patient_of(key, path, pattern), image=path, labels=lab))
    return units
