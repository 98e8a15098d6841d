"""Training sources and network shape of the segmentation check: checks that need no torch.

Imported by ``workflow/rules/segment.smk`` when the DAG is built, so a bad ``segment`` config
fails before any job runs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Iterable, Mapping

from sonodiff.errors import InputError

_SOURCE = re.compile(r"^(?P<real>real)?(?:(?(real)\+)synthetic_(?P<variant>[A-Za-z0-9_.-]+))?$")


@dataclass(frozen=True)
class Source:
    """A parsed training source: whether it uses real images, and which variant's samples."""

    name: str
    real: bool
    variant: str | None


def parse_source(name: str, variants: Iterable[str] | None = None) -> Source:
    """Parse ``real``, ``synthetic_<variant>`` or ``real+synthetic_<variant>``.

    ``variants`` (config ``variants``), when given, must contain the named variant.
    """
    m = _SOURCE.match(name)
    if not name or m is None or not (m["real"] or m["variant"]):
        raise InputError("config key segment.sources",
                         f"{name!r} is not real, synthetic_<variant> or real+synthetic_<variant>")
    variant = m["variant"]
    if variant is not None and variants is not None and variant not in set(variants):
        raise InputError("config key segment.sources", f"{name!r} names no configured variant {variant!r}")
    return Source(name=name, real=bool(m["real"]), variant=variant)


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
