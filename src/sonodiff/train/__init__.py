"""Diffusion-model training: precision, EMA, checkpoint/resume, distributed (torchrun).

    from sonodiff.train import train
    model_path = train(cfg, "results/data/camus", "results/models/camus/bmaps")

:mod:`~sonodiff.train.loop` holds the loop, :mod:`~sonodiff.train.data` the data order,
:mod:`~sonodiff.train.checkpoint` the checkpoint files, :mod:`~sonodiff.train.ema` the weight
average, :mod:`~sonodiff.train.logs` the CSV/TensorBoard logs, :mod:`~sonodiff.train.distributed`
the torchrun glue and :mod:`~sonodiff.train.seeds` the seed derivation shared with sampling.
"""

from sonodiff.train.loop import DiffusionObjective, Trainer, TrainingDiverged, make_diffusion, resolve_device, train, train_job

__all__ = ["DiffusionObjective", "Trainer", "TrainingDiverged", "make_diffusion", "resolve_device", "train", "train_job"]
