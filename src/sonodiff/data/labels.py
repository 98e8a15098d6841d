"""Label names, raw values and prepared ids of one dataset (config ``datasets.<name>.labels``).

The config lists label names in order, each with the raw value (or list of raw values, merged)
it has in the raw label maps, background first with value 0. Prepared label maps number the
names in that order: background 0, structures 1..K, and, where ``sector_label`` is true, the
sector K+1 (tissue inside the imaging sector that is in no structure).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from sonodiff.errors import InputError


@dataclass(frozen=True)
class LabelSpec:
    """Raw values per label name (config order) and whether a sector label is added."""

    names: tuple[str, ...]
    raw: tuple[tuple[int, ...], ...]
    sector: bool = True
    where: str = "config key labels"

    @classmethod
    def from_config(cls, labels: Mapping, sector_label: bool = True,
                    where: str = "config key labels") -> "LabelSpec":
        names = tuple(labels)
        raw = tuple(tuple(v) if isinstance(v, (list, tuple)) else (int(v),) for v in labels.values())
        if not names or raw[0] != (0,):
            raise InputError(where, "the first label must be the background with raw value 0")
        flat = [v for vals in raw for v in vals]
        dup = sorted({v for v in flat if flat.count(v) > 1})
        if dup:
            raise InputError(where, f"raw values {dup} are given to more than one label")
        if len(names) + 1 > 255:
            raise InputError(where, "at most 254 labels fit a uint8 label map")
        return cls(names, raw, bool(sector_label) and len(names) > 1, where)

    @property
    def labeled(self) -> bool:
        """Whether the dataset has label maps (any structure besides the background)."""
        return len(self.names) > 1

    @property
    def structures(self) -> dict[str, int]:
        """Foreground structures and their prepared ids 1..K."""
        return {name: i for i, name in enumerate(self.names) if i > 0}

    @property
    def sector_id(self) -> int | None:
        """Prepared id of the sector label (K+1), or None without one."""
        return len(self.names) if self.sector else None

    @property
    def ids(self) -> dict[str, int]:
        """All prepared ids by name, the sector included."""
        out = {name: i for i, name in enumerate(self.names)}
        if self.sector:
            out["sector"] = len(self.names)
        return out

    @property
    def allowed(self) -> np.ndarray:
        """Sorted raw values the label maps may contain."""
        return np.array(sorted(v for vals in self.raw for v in vals), dtype=np.int64)

    def raw_values(self, name: str) -> tuple[int, ...]:
        """Raw values of one label name."""
        if name not in self.names:
            raise InputError(self.where, f"no label named {name!r} (labels: {list(self.names)})")
        return self.raw[self.names.index(name)]

    def check(self, label: np.ndarray, where: str | Path) -> np.ndarray:
        """Return ``label`` as int64 after checking its values are integers of the configured set;
        :class:`InputError` names ``where``, the values outside the set and every value found."""
        if np.issubdtype(label.dtype, np.floating):
            if not np.isfinite(label).all():
                raise InputError(where, "label map contains NaN or infinite values")
            if not np.array_equal(label, np.round(label)):
                raise InputError(where, "label map has non-integer values")
        values = np.unique(label).astype(np.int64)
        bad = np.setdiff1d(values, self.allowed)
        if bad.size:
            raise InputError(where, f"label values {bad.tolist()} are not in the configured set "
                                    f"{self.allowed.tolist()} (values found {values.tolist()}; {self.where})")
        return label.astype(np.int64)

    def remap(self, label: np.ndarray) -> np.ndarray:
        """Raw values -> prepared ids (uint8); values must have passed :meth:`check`."""
        lut = np.zeros(int(self.allowed.max()) + 1, dtype=np.uint8)
        for i, vals in enumerate(self.raw):
            lut[list(vals)] = i
        return lut[label]
