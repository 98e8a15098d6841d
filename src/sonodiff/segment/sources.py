"""Training sources and network shape of the segmentation check: checks that need no torch.

Imported by ``workflow/rules/segment.smk`` when the DAG is built, so a bad ``segment`` config
fails before any job runs. Also the sources exported as nnU-Net datasets and their dataset ids
(:func:`nnunet_ids`; the folders are written by :mod:`sonodiff.segment.nnunet`).
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping

from sonodiff.config import Source, parse_source
from sonodiff.errors import InputError

__all__ = ["Source", "parse_source", "source_variants", "check_network", "nnunet_sources", "nnunet_ids"]

def source_variants(sources: Iterable[str], variants: Iterable[str] | None = None) -> list[str]:
    """Variants whose samples the given sources need, sorted."""
    return sorted({s.variant for s in (parse_source(n, variants) for n in sources) if s.variant})


def check_network(img_size: int, seg: Mapping, where: str = "segment") -> None:
    """The UNet must fit the image: one stride per level transition, and the image size
    divisible by the product of the strides with at least 2 x 2 pixels left at the bottom
    (instance normalisation needs more than one pixel)."""
    channels, strides = list(seg["channels"]), list(seg["strides"])
    if len(channels) < 2 or len(strides) != len(channels) - 1:
        raise InputError(f"config key {where}.strides",
                         f"{len(strides)} strides for {len(channels)} channel levels; need {len(channels) - 1}")
    down = math.prod(strides)
    if img_size % down or img_size // down < 2:
        raise InputError(f"config key {where}.strides",
                         f"img_size {img_size} with strides {strides} (product {down}) leaves "
                         f"{img_size / down:g} px at the bottom; need a whole number >= 2")


#: nnU-Net dataset ids are three digits (``Dataset001`` ... ``Dataset999``).
NNUNET_ID_RANGE = (1, 999)


def nnunet_sources(variants: Iterable[str]) -> list[str]:
    """The sources exported as nnU-Net datasets: ``real``, then ``synthetic_<v>`` for every variant
    in sorted order (the mixed sources are left out: nnU-Net users combine folders themselves)."""
    return ["real", *(f"synthetic_{v}" for v in sorted(set(variants)))]


def nnunet_ids(datasets: Iterable[str], variants: Iterable[str], first_id: int) -> dict[tuple[str, str], int]:
    """nnU-Net dataset id of every exported (dataset, source) pair: the pairs of the sorted
    (labelled) ``datasets``, each with :func:`nnunet_sources`, numbered ``first_id``, ``first_id + 1``...

    The ids shift when a dataset or variant is added before others in sorted order.
    """
    pairs = [(d, s) for d in sorted(set(datasets)) for s in nnunet_sources(variants)]
    low, high = NNUNET_ID_RANGE
    if pairs and not low <= int(first_id) <= int(first_id) + len(pairs) - 1 <= high:
        raise InputError("config key export.nnunet_first_id",
                         f"{first_id} + {len(pairs)} exported sets leaves nnU-Net's ids {low}-{high}")
    return {pair: int(first_id) + i for i, pair in enumerate(pairs)}
