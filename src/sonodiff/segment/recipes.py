"""Training recipes of the segmentation check (config ``segment.recipe``), a registry.

A :class:`Recipe` fixes what the config does not: the UNet's activation, the loss, the learning-rate
schedule, training-time augmentation and whether the sector is a class of its own. Channels,
strides, ``num_res_units``, ``lr``, ``batch_size``, ``steps`` and the seeds stay config keys.

- ``sonodiff``: MONAI's default PReLU, DiceCE loss, Adam at the constant rate ``lr``, no
  augmentation, every prepared class learned (the sector too, as the label maps that drive the
  diffusion models have it).
- ``echo_from_noise``: the segmentation code of Stojanovski et al. 2023 (``echo_segmentations/
  runner.py``): LeakyReLU (slope 0.1), cross-entropy, Adam with a cosine rate from ``lr`` to
  ``lr / 10`` (1e-3 to 1e-4 there), gamma 0.5-3, horizontal flip, rotation of +-10 degrees,
  translation 0.2 and scale 0.8-1.2 (:mod:`sonodiff.segment.augment`), 4 classes: the sector is
  background.

The learning rate of step s (0 <= s < S = ``segment.steps``, the rate of the update that ends step s):

    constant:  lr(s) = lr
    cosine:    lr(s) = lr_S + (lr - lr_S) (1 + cos(pi s / S)) / 2,   lr_S = ``final_lr_ratio`` lr

(Loshchilov & Hutter 2017, no restarts). With the cosine the trajectory depends on S, so
``segment.steps`` then joins the resume check (:func:`sonodiff.segment.train.fingerprint`).

How each recipe differs from Echo from noise's code (also in ``config/README.md``):

- both: images are scaled to [0, 1], not standardised by the training set's mean and std; the
  validation set is segmented without augmentation (their validation loader augments); a batch
  is ``segment.batch_size`` images (their default is 1); the best model is chosen by the mean
  validation Dice over scored structures with absent structures left out (theirs: torchmetrics'
  Dice with NaN set to 0);
  their ``CosineAnnealingLR(T_max=epochs)`` is stepped every batch, so their rate oscillates with a
  period of 2 x epochs batches; ours decays once over the steps.
- ``echo_from_noise``: gamma is MONAI's ``RandAdjustContrast``, which raises the image rescaled to
  its own [min, max] to the power gamma (torchvision's ``adjust_gamma`` raises x in [0, 1]; the two
  agree for an image that spans 0 to 1); rotation, scale and translation are three nearest-neighbour
  resamplings (theirs: rotation, then one affine for translation and scale).
- ``sonodiff``: MONAI's default PReLU instead of LeakyReLU 0.1; DiceCE instead of cross-entropy;
  a constant rate; no augmentation; the sector learned as a fifth class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sonodiff.errors import InputError


@dataclass(frozen=True)
class Recipe:
    """One training recipe (module docstring).

    ``activation``: MONAI UNet ``act`` (a name, or a name and its keyword arguments);
    ``loss``: a key of :data:`sonodiff.segment.train.LOSSES`; ``final_lr_ratio``: None for a constant
    rate, else the cosine schedule's end as a fraction of ``lr``; ``augment``: training-time
    augmentation of :mod:`sonodiff.segment.augment`; ``sector_class``: the sector is learned as a class
    (else it is merged into background).
    """

    name: str
    activation: Any
    loss: str
    final_lr_ratio: float | None
    augment: bool
    sector_class: bool

    @property
    def depends_on_steps(self) -> bool:
        """Whether the rate of a step depends on the total number of steps (cosine)."""
        return self.final_lr_ratio is not None

    def learning_rate(self, lr: float, step: int, steps: int) -> float:
        """lr(s) of the module docstring."""
        if self.final_lr_ratio is None:
            return float(lr)
        end = self.final_lr_ratio * lr
        return float(end + (lr - end) * 0.5 * (1.0 + math.cos(math.pi * step / max(1, steps))))


RECIPES = {
    "sonodiff": Recipe("sonodiff", activation="PRELU", loss="dice_ce", final_lr_ratio=None,
                       augment=False, sector_class=True),
    "echo_from_noise": Recipe("echo_from_noise", activation=("LEAKYRELU", {"negative_slope": 0.1}),
                              loss="ce", final_lr_ratio=0.1, augment=True, sector_class=False),
}


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name`` (config ``segment.recipe``)."""
    try:
        return RECIPES[name]
    except KeyError:
        raise InputError("config key segment.recipe",
                         f"{name!r} is not one of {', '.join(RECIPES)}") from None
