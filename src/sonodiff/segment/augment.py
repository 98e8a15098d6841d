"""Training-time augmentation of the ``echo_from_noise`` recipe, with MONAI dictionary transforms.

Echo from noise's segmentation code (``echo_segmentations/runner.py``) transforms every training
image and its label map with, in this order:

1. gamma, image only: gamma ~ U(0.5, 3) (MONAI ``RandAdjustContrastd``, module
   :mod:`sonodiff.segment.recipes` says how it differs from torchvision's ``adjust_gamma``);
2. horizontal flip with probability 0.5 (``RandFlipd`` along the width);
3. rotation by theta ~ U(-10, 10) degrees (``RandRotated``);
4. isotropic scale s ~ U(0.8, 1.2) about the centre (``RandZoomd``, size kept);
5. translation t ~ U(-0.2, 0.2) x the image size along each axis (``RandAffined``),

image and label alike with nearest-neighbour interpolation (as their torchvision transforms) and
zeros outside the image. A step's batch is a pure function of (seed, step): the transforms'
random state is set from ``derive_seed(seed, "segment-augment", step) mod 2^32`` before the step,
then the images are drawn in batch order, so a resumed run augments exactly as an uninterrupted one.
MONAI is imported inside the function that builds the transforms.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sonodiff.seeds import derive_seed

KEYS = ("image", "label")
GAMMA = (0.5, 3.0)
FLIP_PROBABILITY = 0.5
ROTATION_DEG = 10.0
SCALE = (0.8, 1.2)
TRANSLATE = 0.2
#: MONAI seeds ``numpy.random.RandomState``, which takes seeds below 2^32.
SEED_MODULUS = 2 ** 32


def echo_from_noise_transform(img_size: int) -> Any:
    """The MONAI ``Compose`` of steps 1-5 (module docstring) for ``(1, img_size, img_size)`` arrays."""
    from monai.transforms import Compose, RandAdjustContrastd, RandAffined, RandFlipd, RandRotated, RandZoomd

    shift = TRANSLATE * img_size
    return Compose([
        RandAdjustContrastd(keys="image", prob=1.0, gamma=GAMMA),
        RandFlipd(keys=KEYS, prob=FLIP_PROBABILITY, spatial_axis=1),
        RandRotated(keys=KEYS, range_x=math.radians(ROTATION_DEG), prob=1.0, keep_size=True,
                    mode="nearest", padding_mode="zeros"),
        RandZoomd(keys=KEYS, prob=1.0, min_zoom=SCALE[0], max_zoom=SCALE[1], keep_size=True,
                  mode="nearest", padding_mode="constant"),
        RandAffined(keys=KEYS, prob=1.0, translate_range=(shift, shift), mode="nearest", padding_mode="zeros"),
    ])


def augment_batch(transform: Any, images: np.ndarray, labels: np.ndarray, seed: int,
                  step: int) -> tuple[np.ndarray, np.ndarray]:
    """Images float32 (B, 1, H, W) and labels int64 (B, 1, H, W) of one step, transformed
    (module docstring); a pure function of (``seed``, ``step``)."""
    from monai.data import get_track_meta, set_track_meta

    transform.set_random_state(seed=derive_seed(seed, "segment-augment", step) % SEED_MODULUS)
    tracking = get_track_meta()
    set_track_meta(False)
    try:
        out = [transform({"image": image, "label": label.astype(np.float32)})
               for image, label in zip(images, labels)]
    finally:
        set_track_meta(tracking)
    aug_images = np.stack([np.asarray(o["image"], dtype=np.float32) for o in out])
    aug_labels = np.stack([np.rint(np.asarray(o["label"])).astype(np.int64) for o in out])
    return aug_images, aug_labels
