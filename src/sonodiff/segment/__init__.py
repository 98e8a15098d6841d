"""Downstream segmentation check (Echo from noise, section 2.2 and table 1).

A MONAI UNet is trained on one *source* of images (``real``, ``synthetic_<variant>`` or
``real+synthetic_<variant>``) and tested on the real test split; Dice is reported per structure.

Modules: :mod:`~sonodiff.segment.sources` (source names, network shape; no torch),
:mod:`~sonodiff.segment.data` (sets per source), :mod:`~sonodiff.segment.train` (training,
checkpoints, prediction, the whole job), :mod:`~sonodiff.segment.evaluate` (Dice per structure
with MONAI), :mod:`~sonodiff.stats` (mean, std, bootstrap; NumPy only),
:mod:`~sonodiff.segment.leakage` (test patients never used), :mod:`~sonodiff.segment.figures`
(contour figure). Only ``train`` and ``evaluate`` import MONAI.
"""
