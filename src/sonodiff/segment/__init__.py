"""Downstream segmentation check (Echo from noise, section 2.2 and table 1).

A UNet (MONAI's ``UNet``) is trained on one *source* of images
(``real``, ``synthetic_<variant>`` or ``real+synthetic_<variant>``) for the same number of
optimiser steps whatever the source's size, once per seed of ``segment.seeds`` (one job trains
them in turn), and each seed's best model is tested on the real test split; Dice is reported per
structure, per seed and per test image.

Recipes (``segment.recipe``, :mod:`~sonodiff.segment.recipes`):

- ``sonodiff``: MONAI's default PReLU, DiceCE loss, Adam at a constant rate, no training-time
  augmentation, the sector learned as a class of its own.
- ``echo_from_noise``: the code of Stojanovski et al. 2023 (``echo_segmentations/runner.py``):
  LeakyReLU 0.1 (``num_res_units`` stays a config key; their code and ``config/paper.yaml`` use 0),
  cross-entropy, a cosine rate from ``lr`` to ``lr / 10``, gamma 0.5-3, horizontal flip, +-10
  degrees rotation, 0.2 translation and 0.8-1.2 scale (:mod:`~sonodiff.segment.augment`), and 4
  classes: the sector merged into background.

Where each differs from Echo from noise's code, in short (the full list is in
:mod:`~sonodiff.segment.recipes` and ``config/README.md``): both scale images to [0, 1] instead of
standardising them, validate without augmentation, batch ``segment.batch_size`` images, and decay
the cosine rate once over the steps (their scheduler, stepped per batch with ``T_max`` in epochs,
oscillates); ``echo_from_noise`` uses MONAI's gamma (rescaled to the image's own range) and three
resamplings for rotation, scale and translation; ``sonodiff`` differs in activation, loss, rate,
augmentation and the sector class.

Modules: :mod:`~sonodiff.segment.sources` (source names, network shape; no torch),
:mod:`~sonodiff.segment.data` (sets per source, their pixels and the label -> class lookup; NumPy),
:mod:`~sonodiff.segment.recipes` (the recipe registry; no torch),
:mod:`~sonodiff.segment.augment` (``echo_from_noise``'s MONAI transforms),
:mod:`~sonodiff.segment.train` (MONAI's UNet, the losses, training per seed, checkpoints,
prediction, the whole job), :mod:`~sonodiff.segment.evaluate` (Dice per structure, summaries
over seeds; NumPy), :mod:`~sonodiff.segment.leakage` (test patients never used),
:mod:`~sonodiff.segment.figures` (contour figure). Only ``train`` and the ``augment`` it uses
import torch, and MONAI only
inside the functions that build the network, the loss and the transforms. Intervals (test patients
resampled) are computed by the segmentation table, :mod:`sonodiff.report.segmentation_table`.
"""
