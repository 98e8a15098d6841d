"""nnU-Net v2 raw datasets of the segmentation check's training sets, for training nnU-Net on them.

nnU-Net v2 (Isensee et al. 2021, Nature Methods 18:203-211) trains on a *raw* dataset folder
``Dataset<ID>_<name>/`` (nnU-Net's ``documentation/dataset_format.md``; the folder's place and
name come from ``sonodiff.contracts.layout``: ``nnunet_dataset``)::

    imagesTr/<case>_0000.png   a training image, channel 0: 8-bit grey, img_size square
    labelsTr/<case>.png        its label map: uint8 classes 0..K-1, background 0
    imagesTs/<case>_0000.png   the real test split's images
    labelsTs/<case>.png        their label maps (nnU-Net does not read them; nnUNetv2_evaluate_folder does)
    dataset.json               channel_names, labels, numTraining, file_ending, and optional keys

What goes in (:func:`sonodiff.segment.data.build_sets`): the training cases are the source's
``train`` and ``val`` sets, since nnU-Net chooses its validation cases itself (five-fold
cross-validation over ``imagesTr``); the ``sonodiff`` block of ``dataset.json`` lists the val
cases, from which a ``splits_final.json`` reproduces sonodiff's split (``docs/nnunet.md``). The
test cases are the real test split, for every source.

Classes are exactly those the sonodiff segmenter trains on: the prepared ids i mapped by
:func:`sonodiff.segment.data.label_classes` with the recipe's ``sector_class``, so class(i) = i
(``sonodiff``) or the sector merged into background (``echo_from_noise``). Each class c > 0 is
named after its prepared id in the prepared ``dataset.json``; nnU-Net's reserved names
(``background`` for a structure, ``ignore``) are refused.

Case ids are the sample ids with every character outside ``[A-Za-z0-9_-]`` replaced by ``_``
(stable: the same sample always gets the same case); two samples whose ids become one case are
refused, naming both. The folder is written whole into a temporary sibling and renamed into
place (:func:`sonodiff.io.atomic_dir`), replacing an older export.

``channel_names`` is ``{"0": "ultrasound"}``: nnU-Net normalises any channel not named ``CT``
by the z-score of each image. ``overwrite_image_reader_writer`` ``NaturalImage2DIO`` reads the
PNGs as 2D images (skimage).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from sonodiff.contracts import layout
from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.errors import InputError
from sonodiff.io import atomic_dir, write_json, write_png
from sonodiff.segment.data import LabelClasses, build_sets, label_classes, read_pair
from sonodiff.segment.recipes import get_recipe

log = logging.getLogger(__name__)

#: nnU-Net v2's folders of a raw dataset (its format, not a sonodiff contract).
IMAGES_TR, LABELS_TR, IMAGES_TS, LABELS_TS = "imagesTr", "labelsTr", "imagesTs", "labelsTs"
#: The channel suffix of a single-channel image and nnU-Net's file ending.
CHANNEL_SUFFIX, FILE_ENDING = "_0000", ".png"
#: nnU-Net's name of the one channel: anything but "CT" gets z-score normalisation.
CHANNEL_NAME = "ultrasound"
#: nnU-Net's reader of 2D PNGs.
READER_WRITER = "NaturalImage2DIO"
#: A raw dataset folder's name: ``Dataset<three-digit id>_<name>``.
FOLDER_NAME = re.compile(r"^Dataset(?P<id>\d{3})_(?P<name>\S+)$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def case_id(sample_id: str) -> str:
    """The nnU-Net case of a sample: ``sample_id`` with each character outside [A-Za-z0-9_-] -> ``_``."""
    return _UNSAFE.sub("_", str(sample_id))


def case_ids(sample_ids: Sequence[str], where: str) -> list[str]:
    """:func:`case_id` of every sample, refusing two samples that become one case (``where``
    names the set in the error)."""
    seen: dict[str, str] = {}
    cases = []
    for sid in map(str, sample_ids):
        case = case_id(sid)
        if case in seen:
            raise InputError(where, f"sample ids {seen[case]!r} and {sid!r} both become nnU-Net case {case!r}")
        seen[case] = sid
        cases.append(case)
    return cases


def nnunet_labels(dataset: PreparedDataset, classes: LabelClasses) -> dict[str, int]:
    """nnU-Net's ``labels``: ``background`` 0, then each class c > 0 under its prepared name."""
    names = dataset.label_names
    labels = {"background": 0}
    for c, i in enumerate(classes.to_id.tolist()[1:], start=1):
        name = names.get(int(i))
        if name is None:
            raise InputError(dataset.info_path, f"label id {i} (nnU-Net class {c}) has no name")
        if name in labels or name == "ignore":
            raise InputError(dataset.info_path, f"label name {name!r} is reserved or repeated in nnU-Net's labels")
        labels[name] = c
    return labels


def _write_cases(folder: Path, images: str, labels: str, table: pd.DataFrame, cases: Sequence[str],
                 dataset: PreparedDataset, classes: LabelClasses) -> None:
    num_ids, size = int(dataset.num_classes), dataset.img_size
    for case, image_path, label_path in zip(cases, table["image"], table["label"]):
        image, label = read_pair(image_path, label_path, num_ids, size)
        write_png(folder / images / f"{case}{CHANNEL_SUFFIX}{FILE_ENDING}", image)
        write_png(folder / labels / f"{case}{FILE_ENDING}", classes.to_class[label].astype(np.uint8))


def write_nnunet_dataset(folder: str | Path, dataset: PreparedDataset, source: str,
                         samples_manifests: Mapping[str, str | Path] | None, cfg: Mapping) -> dict:
    """Write the nnU-Net v2 raw dataset ``folder`` (``Dataset<ID>_<name>``) of one source
    (module docstring) and return its ``dataset.json``.

    ``samples_manifests`` maps a variant to its samples manifest (as for
    :func:`sonodiff.segment.data.build_sets`); ``cfg`` is the job's resolved config, of which
    ``segment.recipe`` (the classes) is read.
    """
    folder = Path(folder)
    match = FOLDER_NAME.match(folder.name)
    if match is None:
        raise InputError(folder, "an nnU-Net raw dataset folder is named Dataset<three-digit id>_<name>")
    if not dataset.has_labels:
        raise InputError(dataset.info_path, "the dataset has no label maps to export for nnU-Net")
    recipe = get_recipe(cfg["segment"]["recipe"])
    classes = label_classes(int(dataset.num_classes), dataset.sector_id, recipe.sector_class)
    labels = nnunet_labels(dataset, classes)
    sets = build_sets(dataset.manifest, source, samples_manifests)
    train = pd.concat([sets["train"], sets["val"]], ignore_index=True)
    cases = case_ids(list(train["sample_id"]) + list(sets["test"]["sample_id"]), f"nnU-Net export of {source}")
    train_cases, test_cases = cases[:len(train)], cases[len(train):]
    name = str(dataset.info.get("name", cfg.get("dataset", "")))
    description = {
        "channel_names": {"0": CHANNEL_NAME},
        "labels": labels,
        "numTraining": len(train_cases),
        "file_ending": FILE_ENDING,
        "overwrite_image_reader_writer": READER_WRITER,
        "name": match["name"],
        "description": (f"sonodiff segmentation training set {source!r} of dataset {name!r}: "
                        f"{len(sets['train'])} train and {len(sets['val'])} val images as training cases; "
                        f"imagesTs and labelsTs hold the {len(test_cases)} real test images. Classes are "
                        f"those of sonodiff's segmenter under recipe {recipe.name!r}"
                        + ("" if recipe.sector_class else " (the sector merged into background)") + "."),
        "reference": str(dataset.info.get("reference", f"sonodiff, prepared dataset {name!r}")),
        "licence": str(dataset.info.get("licence", f"that of the source data of {name!r}; synthetic images "
                                                   f"are generated from its label maps")),
        "sonodiff": {
            "dataset": name, "source": source, "recipe": recipe.name, "sector_class": recipe.sector_class,
            "prepared_ids": classes.to_id.tolist(),
            "counts": {"train": len(sets["train"]), "val": len(sets["val"]), "test": len(test_cases)},
            "val_cases": train_cases[len(sets["train"]):],
        },
    }
    with atomic_dir(folder) as tmp:
        _write_cases(tmp, IMAGES_TR, LABELS_TR, train, train_cases, dataset, classes)
        _write_cases(tmp, IMAGES_TS, LABELS_TS, sets["test"], test_cases, dataset, classes)
        write_json(tmp / layout.NNUNET_DATASET_JSON, description)
    log.info("%s: %d training cases, %d test cases, labels %s", folder, len(train_cases), len(test_cases), labels)
    return description
