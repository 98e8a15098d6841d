"""Diffusion-model training: precision, EMA, checkpoint/resume, distributed (torchrun).

    from sonodiff.contracts.dataset import PreparedDataset
    from sonodiff.train import train_job
    dataset = PreparedDataset("results/data/camus/manifest.csv", "results/data/camus/dataset.json",
                              "results/data/camus/sector.png")
    model_path = train_job(cfg, dataset, "results/models/camus/bmaps/model.pt")

:mod:`~sonodiff.train.loop` holds the loop, :mod:`~sonodiff.train.data` the data order,
:mod:`~sonodiff.train.schedule` the learning-rate and EMA-decay schedules,
:mod:`~sonodiff.train.checkpoint` the checkpoint files, :mod:`~sonodiff.train.ema` the weight
average, :mod:`~sonodiff.train.logs` the CSV/TensorBoard logs, :mod:`~sonodiff.train.distributed`
the torchrun glue and :mod:`~sonodiff.seeds` the seed derivation shared with sampling. The
model file is written by :func:`sonodiff.contracts.model_file.write_model_file`, the process
built by :meth:`sonodiff.diffusion.BMapDiffusion.from_config`, the device chosen by
:mod:`sonodiff.device`.
"""

from sonodiff.train.loop import DiffusionObjective, Trainer, TrainingDiverged, train, train_job

__all__ = ["DiffusionObjective", "Trainer", "TrainingDiverged", "train", "train_job"]
