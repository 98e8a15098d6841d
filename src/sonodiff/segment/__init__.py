"""Downstream segmentation check (Echo from noise, section 2.2 and table 1).

A UNet (MONAI's ``UNet``) is trained on one *source* of images
(``real``, ``synthetic_<variant>`` or ``real+synthetic_<variant>``) for the same number of
optimiser steps whatever the source's size, and tested on the real test split; Dice is reported
per structure.

Modules: :mod:`~sonodiff.segment.sources` (source names, network shape; no torch),
:mod:`~sonodiff.segment.data` (sets per source and their pixels; NumPy),
:mod:`~sonodiff.segment.train`
(MONAI's UNet and DiceCE loss, training, checkpoints, prediction, the whole job), :mod:`~sonodiff.segment.evaluate` (Dice per
structure; NumPy), :mod:`~sonodiff.stats` (mean, std, bootstrap; NumPy only),
:mod:`~sonodiff.segment.leakage` (test patients never used), :mod:`~sonodiff.segment.figures`
(contour figure). Only ``train`` imports torch, and MONAI only inside the functions that build
the network and the loss.
"""
