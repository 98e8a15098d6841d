"""Training data: the prepared train split in memory, and a data order fixed by (seed, step).

Images are uint8 PNGs mapped to ``x0 = png / 127.5 - 1`` in [-1, 1]
(:func:`sonodiff.io.to_model_range`); label maps are the prepared ids (background 0, structures
1..K, sector K+1), one-hot encoded by the model. The whole split is held in memory as uint8
(1800 CAMUS images at 128 px are 30 MB). The files are read through
:class:`sonodiff.contracts.dataset.PreparedDataset` (``pairs``: a label map of another size than
its image is an error naming both).

Data order. With N images and a global batch G (batch size x processes), step s reads the
global positions ``p = s G + r B + j`` (process r, j < B). Position p is image
``perm_e[p mod N]`` of epoch ``e = p div N``, where ``perm_e`` is a permutation drawn from
``generator(seed, "epoch", e)``. The order is thus a pure function of (seed, step): a resumed
run reads exactly the batches an uninterrupted one would, with nothing to restore but the step.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.errors import InputError
from sonodiff.io import to_model_range
from sonodiff.seeds import generator


@dataclass
class TrainingSet:
    """The train split: ``images`` (N, 1, H, W) uint8 (or float latents (N, C, h, w), used as they
    are), ``labels`` (N, H, W) uint8 or None, ``classes`` (N,) class ids or None."""

    images: torch.Tensor
    labels: torch.Tensor | None
    num_classes: int | None
    sample_ids: list[str]
    classes: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.images.shape[0]

    def batch(self, step: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        """(x0, labels or None, classes or None) of process ``rank`` at ``step`` (module docstring);
        x0 in [-1, 1] for images, the latents themselves for latents."""
        idx = batch_indices(len(self), step, batch_size, seed, rank, world_size)
        x0 = self.images[idx]
        x0 = to_model_range(x0) if x0.dtype == torch.uint8 else x0
        labels = self.labels[idx].long() if self.labels is not None else None
        classes = self.classes[idx].long() if self.classes is not None else None
        return x0, labels, classes


@lru_cache(maxsize=4)
def _epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    return torch.randperm(n, generator=generator(seed, "epoch", epoch))


def batch_indices(n: int, step: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> torch.Tensor:
    """Image indices of process ``rank`` at ``step``: ``perm_{p div n}[p mod n]`` for its positions p."""
    start = step * batch_size * world_size + rank * batch_size
    positions = range(start, start + batch_size)
    return torch.stack([_epoch_permutation(n, seed, p // n)[p % n] for p in positions])


def load_training_set(dataset: PreparedDataset, split: str = "train") -> TrainingSet:
    """The ``split`` rows of a prepared dataset (sorted by ``sample_id``), images and label maps."""
    rows = dataset.rows(split, required=("sample_id", "split", "image", "label"))
    if rows.empty:
        raise InputError(dataset.manifest, f"no rows with split {split!r}")
    classes = dataset.num_classes
    if classes is None:
        images, labels = dataset.images(rows), None
    else:  # each map checked against its image as the pair is read
        images, maps = dataset.pairs(rows)
        labels = torch.from_numpy(maps)
    size = int(dataset.info.get("img_size", images.shape[-1]))
    if images.shape[1:] != (size, size):
        raise InputError(dataset.manifest, f"images are {images.shape[1:]}, the dataset's img_size is {size}")
    return TrainingSet(images=torch.from_numpy(images)[:, None], labels=labels, num_classes=classes,
                       sample_ids=list(rows["sample_id"]))
