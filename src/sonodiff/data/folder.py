"""A user's own folder of 2D images, with optional label maps, read as it is (no renaming).

Keys of the dataset's config entry (``config/README.md``), all paths relative to the raw folder:

- Images: the files matching ``image_glob`` (null: :data:`IMAGE_GLOB`), less the label files.
- Labels: the files matching ``label_glob`` (null or ``""``: none). Config ``labels`` holding
  only the background make the dataset unlabeled: the manifest's label column is empty and the
  workflow trains an unconditional model. Naming structures needs a ``label_glob``.
- Pairing: a label map pairs with the image whose stem is the label's stem less the label
  suffix: ``label_suffix`` where set (``_Annotation``: ``000_HC_Annotation.png`` labels
  ``000_HC.png``; ``""``: identical stems; a label without the suffix is ignored), else any of
  :data:`DEFAULT_SUFFIXES` or none, and that lies in the label's own folder or at the same place
  under the folder ``image_glob`` names (its part before the first wildcard) as the label under
  the one ``label_glob`` names (``images/p1/a.png`` with ``masks/p1/a_mask.png`` for the globs
  ``images/**/*.png``, ``masks/**/*.png``). So an image and a label of one stem in different
  patients' folders never pair. Refused, naming the files
  (:func:`sonodiff.data.readers.pair_files`): a label map that pairs with no image or with two,
  an image with two label maps (``a_mask.png`` and ``a_seg.png``), two images of one stem in one
  folder. In a labeled dataset images without a label map are skipped (one warning); no pair at
  all is an error saying what was searched for.
- Patients: ``patient_csv`` (a CSV with columns ``image``, ``patient``; ``image`` is the path
  relative to the raw folder, or a bare file name), else ``patient_pattern`` (a regular
  expression searched in the image's path relative to the raw folder, ``/``-separated; its named
  group ``patient`` is the id: ``(?P<patient>\\d+)_HC`` gives ``000`` for
  ``training_set/000_HC.png``), else the first subfolder under the images' deepest common
  folder (``<patient>/<image>.png``), else the image's stem. Where every image lies in one folder
  that ``image_glob`` does not name (``**/*.png`` over ``p1/a.png``, ``p1/b.png``), that folder is
  the one patient (:func:`patient_base`); the images of a folder the glob names
  (``images/*.png``) are one patient each.
- ``fill_outlines``: label maps hold closed contours (HC18's ellipses), filled into regions when
  read (:mod:`sonodiff.data.outlines`).

Sample ids are the image's folders under the images' common folder and its stem, joined by ``_``.
"""

from __future__ import annotations

import csv
import itertools
import logging
import os
import re
from collections import defaultdict
from pathlib import Path

from sonodiff.data.readers import find_files, pair_files, patient_regex, safe_id, stem
from sonodiff.data.units import Unit
from sonodiff.errors import InputError

log = logging.getLogger(__name__)

#: ``image_glob`` where the key is null.
IMAGE_GLOB = "**/*.png"
#: Label suffixes recognised where ``label_suffix`` is null (case-insensitive, optional).
DEFAULT_SUFFIXES = ("_gt", "_mask", "_label", "_labels", "_seg")


class Pairing:
    """How a label file's stem gives the stem of its image (``label_suffix``, module docstring)."""

    def __init__(self, suffix: str | None):
        self.suffix = suffix
        if suffix is None:
            self.pattern = re.compile(f"({'|'.join(map(re.escape, DEFAULT_SUFFIXES))})$", re.IGNORECASE)
        else:
            self.pattern = re.compile(f"{re.escape(suffix)}$", re.IGNORECASE)

    def image_stem(self, label: Path) -> str | None:
        """The stem of the image ``label`` belongs to; None for a label without the set suffix."""
        name = stem(label)
        if self.suffix is None:
            return self.pattern.sub("", name)
        if not self.suffix:
            return name
        return self.pattern.sub("", name) if self.pattern.search(name) else None

    def describe(self) -> str:
        if self.suffix is None:
            return f"one of the label suffixes {', '.join(DEFAULT_SUFFIXES)} or none (set label_suffix)"
        return f"label_suffix {self.suffix!r}" if self.suffix else "label_suffix '' (identical stems)"


def _common(paths: list[Path]) -> Path:
    return Path(os.path.commonpath([str(p.parent) for p in paths]))


#: Characters that make a glob component a wildcard.
WILDCARD = re.compile(r"[*?\[]")


def glob_root(raw: Path, pattern: str) -> Path:
    """The folder a glob names before its first wildcard: ``raw/images`` for ``images/**/*.png``,
    ``raw`` for ``**/*.png``. Every file the glob matches lies under it."""
    lead = itertools.takewhile(lambda part: not WILDCARD.search(part), pattern.split("/")[:-1])
    return raw.joinpath(*lead)


def patient_base(raw: Path, image_glob: str, images: list[Path]) -> Path:
    """The folder whose subfolders are the patients: the images' deepest common folder, or, where
    every image lies in that one folder and the folder is not the one ``image_glob`` names (its
    part before the first wildcard), the folder above it: the images of ``p1/*.png`` are patient
    ``p1``'s, never one patient each, while those of ``images/*.png`` are one patient each."""
    base = _common(images)
    if base != glob_root(raw, image_glob) and all(f.parent == base for f in images):
        return base.parent
    return base


def _identities(f: Path, raw: Path, root: Path, image_stem: str) -> tuple[tuple[str, str], ...]:
    """Where a file may meet its partner: its folder (relative to the raw folder) and its place
    under its glob's folder, each with the stem of the image."""
    return (("folder", (f.parent.relative_to(raw) / image_stem).as_posix()),
            ("glob", (f.parent.relative_to(root) / image_stem).as_posix()))


def pair_labels(raw: Path, images: list[Path], labels: list[Path], pairing: Pairing,
                image_glob: str, label_glob: str) -> dict[Path, Path]:
    """Image -> its label map (rules in the module docstring), by
    :func:`sonodiff.data.readers.pair_files`: a label map that pairs with no image or with two,
    and an image with two label maps, are errors naming the files. Where no label map pairs at
    all, ``{}`` (the caller says what was searched for)."""
    unsuffixed = [f for f in labels if pairing.image_stem(f) is None]
    if unsuffixed:
        log.warning("%d label files without %s ignored (e.g. %s)", len(unsuffixed), pairing.describe(),
                    unsuffixed[0])
    image_root, label_root = glob_root(raw, image_glob), glob_root(raw, label_glob)
    image_ids = {f: _identities(f, raw, image_root, stem(f)) for f in images}
    label_ids = {f: _identities(f, raw, label_root, pairing.image_stem(f)) for f in labels if f not in unsuffixed}

    def orphan(label: Path) -> str:
        place = label.parent.relative_to(label_root) / pairing.image_stem(label)
        return (f"label map without an image: no image {pairing.image_stem(label)}.* matching image_glob "
                f"{image_glob!r} in its folder or at {place.as_posix()}.* under {image_root} ({pairing.describe()})")

    known = {key for keys in image_ids.values() for key in keys}
    if not any(key in known for keys in label_ids.values() for key in keys):
        return {}
    pairs = pair_files(image_ids, label_ids, orphan, show=lambda key: key[1])
    return {image: files[0] for image, files in pairs.items()}


def read_patient_csv(path: Path) -> dict[str, str]:
    """``image`` -> ``patient`` from the ``patient_csv`` file ``path``; errors name the file."""
    if not path.is_file():
        raise InputError(path, "patient_csv not found")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if not {"image", "patient"} <= set(reader.fieldnames or ()):
            raise InputError(path, f"patient_csv needs the columns image and patient, has {reader.fieldnames}")
        out: dict[str, str] = {}
        for row in reader:
            image, patient = (row["image"] or "").strip().removeprefix("./"), (row["patient"] or "").strip()
            if not image or not patient:
                raise InputError(path, f"row {reader.line_num}: empty image or patient")
            if image in out:
                raise InputError(path, f"image {image} appears twice")
            out[image] = patient
    return out


class _Patients:
    """The patient of an image: ``patient_csv``, ``patient_pattern`` or folders (module docstring)."""

    def __init__(self, raw: Path, data: dict, images: list[Path], image_glob: str):
        self.raw, self.base = raw, patient_base(raw, image_glob, images)
        csv_value, text = data.get("patient_csv"), data.get("patient_pattern")
        if csv_value and text:
            raise InputError("config key patient_pattern", "set patient_pattern or patient_csv, not both")
        self.csv_path = raw / csv_value if csv_value else None  # an absolute csv_value stays as it is
        self.table = read_patient_csv(self.csv_path) if self.csv_path else None
        self.names = defaultdict(list)
        for image in images:
            self.names[image.name].append(image)
        self.pattern = None
        if text:
            self.pattern = patient_regex(text)

    def __call__(self, image: Path) -> str:
        rel = image.relative_to(self.raw).as_posix()
        if self.table is not None:
            if rel in self.table:
                return safe_id(self.table[rel])
            if image.name in self.table:
                if len(self.names[image.name]) > 1:
                    raise InputError(self.csv_path, f"file name {image.name} is in several folders; "
                                                    f"give its path relative to the raw folder ({rel})")
                return safe_id(self.table[image.name])
            raise InputError(image, f"no row of patient_csv {self.csv_path} names this image ({rel})")
        if self.pattern is not None:
            match = self.pattern.search(rel)
            if match is None or not match.group("patient"):
                raise InputError(image, f"patient_pattern '{self.pattern.pattern}' does not match '{rel}'")
            return safe_id(match.group("patient"))
        parts = image.relative_to(self.base).parts
        return safe_id(parts[0]) if len(parts) > 1 else safe_id(stem(image))


def list_units(raw: Path, data: dict) -> list[Unit]:
    """One unit per image (with its label map in a labeled dataset), rules in the module docstring."""
    raw = Path(raw)
    labeled = len(data.get("labels", {})) > 1
    image_glob = data.get("image_glob") or IMAGE_GLOB
    label_glob = (data.get("label_glob") or "") if labeled else ""
    if labeled and not label_glob:
        raise InputError("config key label_glob", "the labels name structures but label_glob is empty")
    label_files = find_files(raw, [label_glob]) if label_glob else []
    label_set = set(label_files)
    matched = find_files(raw, [image_glob])
    images = [f for f in matched if f not in label_set]
    if not images:
        extra = f" other than the label maps of label_glob {label_glob!r}" if matched else ""
        raise InputError(raw, f"no images match image_glob {image_glob!r}{extra}")
    pairs: dict[Path, Path] = {}
    if labeled:
        if not label_files:
            raise InputError(raw, f"no label maps match label_glob {label_glob!r}")
        pairing = Pairing(data.get("label_suffix"))
        pairs = pair_labels(raw, images, label_files, pairing, image_glob, label_glob)
        if not pairs:
            raise InputError(raw, f"no image/label pair: {len(images)} images match image_glob {image_glob!r}, "
                                  f"{len(label_files)} label maps match label_glob {label_glob!r}, no label "
                                  f"stem is an image stem plus {pairing.describe()} in the image's folder or "
                                  f"at its place under the globs' folders (e.g. image {stem(images[0])!r}, "
                                  f"label {stem(label_files[0])!r})")
        skipped = [f for f in images if f not in pairs]
        if skipped:
            log.warning("%d images without a label map skipped (e.g. %s)", len(skipped), skipped[0])
    patients = _Patients(raw, data, images, image_glob)
    fill = bool(data.get("fill_outlines", False))
    sample_base = _common(images)
    units: dict[str, Unit] = {}
    for image in images:
        if labeled and image not in pairs:
            continue
        rel = image.relative_to(sample_base)
        key = safe_id("_".join([*rel.parts[:-1], stem(image)]))
        if key in units:
            raise InputError(image, f"sample id {key} appears twice (also {units[key].image})")
        lab = pairs.get(image)
        units[key] = Unit(key=key, patient_id=patients(image), image=image,
                          labels=(lab,) if lab else (), fill_outlines=fill and lab is not None)
    return list(units.values())
