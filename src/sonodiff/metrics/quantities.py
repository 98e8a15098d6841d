"""Every figure of the metrics tables as a function of per-image values, for one variant or two.

:class:`SetValues` holds the per-image values of one synthetic set and of the real set it is
compared with: Inception features per FID dimension, the paired metrics of the pairs (an image
generated from an undeformed validation label map and the real image of that map), and the
physics arrays (:class:`sonodiff.metrics.physics.PhysicsValues`), with every image's sample id
and patient id. A :class:`Quantity` is one figure: a statistic of the synthetic rows i and the
real rows j, ``stat(values, i, j)`` (of the pair rows i for the paired metrics).

Resampling unit (:mod:`sonodiff.stats`): the patient. For a conditional model the synthetic
images of a patient's label maps and that patient's real images are drawn together (one draw
over the patients, ``shared``); an unconditional model's images belong to no patient and are
drawn one by one, independently of the real patients. Paired metrics resample the pairs'
patients.

Variant differences (:func:`difference`): ``stat(values_b, i, j) - stat(values_a, i, j)`` on the
same draws, b minus a (e.g. B-maps minus baseline). The two variants sampled the same plan, so
their synthetic rows are the same label maps and seeds, row for row; this is checked.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from sonodiff.metrics import fid as fidlib
from sonodiff.metrics import paired, physics
from sonodiff.metrics.kid import ResampledKID
from sonodiff.stats import figure, finite_mean, not_available

PAIRED_METRICS = ("lpips", "ssim", "psnr")


@dataclass
class SetValues:
    """Per-image values of one synthetic set and of the real set (module docstring).

    ``reasons`` names the parts that could not be computed: ``fid`` (no Inception weights),
    ``lpips`` (no LPIPS weights), ``pairs`` (no undeformed pairs), ``labels`` (no label maps).
    """

    syn_ids: np.ndarray
    syn_patients: np.ndarray
    real_ids: np.ndarray
    real_patients: np.ndarray
    features: dict[int, np.ndarray]
    real_features: dict[int, np.ndarray]
    pair_ids: np.ndarray
    pair_patients: np.ndarray
    pairs: dict[str, np.ndarray]
    syn_physics: physics.PhysicsValues
    real_physics: physics.PhysicsValues
    label_names: list[str]
    reasons: dict[str, str] = field(default_factory=dict)
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def conditional(self) -> bool:
        """Synthetic images belong to patients (made from their label maps)."""
        return bool(len(self.syn_patients)) and all(str(p) != "" for p in self.syn_patients)

    def frechet(self, dim: int) -> fidlib.ResampledFrechet:
        key = ("fid", dim)
        if key not in self._cache:
            self._cache[key] = fidlib.ResampledFrechet(self.features[dim], self.real_features[dim])
        return self._cache[key]

    def kid(self, dim: int) -> ResampledKID:
        key = ("kid", dim)
        if key not in self._cache:
            self._cache[key] = ResampledKID(self.features[dim], self.real_features[dim])
        return self._cache[key]

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat arrays for :func:`sonodiff.contracts.metrics_record.write_metric_values`."""
        out = {"syn_ids": self.syn_ids, "syn_patients": self.syn_patients, "real_ids": self.real_ids,
               "real_patients": self.real_patients, "pair_ids": self.pair_ids,
               "pair_patients": self.pair_patients, "label_names": np.array(self.label_names, dtype=str),
               "reason_keys": np.array(list(self.reasons), dtype=str),
               "reason_texts": np.array(list(self.reasons.values()), dtype=str),
               "dims": np.array(sorted(self.features), dtype=np.int64)}
        out.update({f"features_{d}": v for d, v in self.features.items()})
        out.update({f"real_features_{d}": v for d, v in self.real_features.items()})
        out.update({f"pair_{m}": v for m, v in self.pairs.items()})
        return {**out, **self.syn_physics.arrays("syn_"), **self.real_physics.arrays("real_")}

    @classmethod
    def from_arrays(cls, a: Mapping[str, np.ndarray]) -> "SetValues":
        dims = [int(d) for d in a["dims"]]
        return cls(np.asarray(a["syn_ids"]), np.asarray(a["syn_patients"]), np.asarray(a["real_ids"]),
                   np.asarray(a["real_patients"]),
                   {d: a[f"features_{d}"] for d in dims}, {d: a[f"real_features_{d}"] for d in dims},
                   np.asarray(a["pair_ids"]), np.asarray(a["pair_patients"]),
                   {m: a[f"pair_{m}"] for m in PAIRED_METRICS if f"pair_{m}" in a},
                   physics.PhysicsValues.from_arrays(a, "syn_"), physics.PhysicsValues.from_arrays(a, "real_"),
                   [str(x) for x in a["label_names"]],
                   dict(zip((str(k) for k in a["reason_keys"]), (str(t) for t in a["reason_texts"]))))


#: ``stat(values, i, j)`` of synthetic rows i and real rows j; ``stat(values, i)`` of pair rows i.
Stat = Callable[..., float]


@dataclass(frozen=True)
class Quantity:
    """One figure: where it goes in the record, its statistic, and how it is resampled.

    ``unit``: ``images`` (``stat(values, i, j)``, rows of the synthetic and the real set) or
    ``pairs`` (``stat(values, i)``, rows of the pairs). ``compares``: whether a variant difference means something (not for a
    real-only figure). ``interval``: False for a figure reported without one (the gCNR baseline).
    """

    path: tuple[str, ...]
    stat: Stat
    unit: str = "images"
    bias_corrected: bool = False
    compares: bool = True
    interval: bool = True


def _rows(values: SetValues, q: Quantity) -> tuple[list[np.ndarray], list, bool]:
    """The samples (row indices), their cluster ids and whether they are drawn together."""
    if q.unit == "pairs":
        return [np.arange(len(values.pair_ids))], [list(values.pair_patients)], False
    syn_clusters = list(values.syn_patients) if values.conditional else None
    return ([np.arange(len(values.syn_ids)), np.arange(len(values.real_ids))],
            [syn_clusters, list(values.real_patients)], values.conditional)


def evaluate(values: SetValues, q: Quantity, resamples: int, seed: int) -> dict:
    """The figure of ``q`` on one variant's values, with its patient-level interval."""
    samples, clusters, shared = _rows(values, q)
    return figure(lambda *rows: q.stat(values, *rows), samples, resamples if q.interval else 0, seed,
                  clusters, shared, q.bias_corrected)


def difference(a: SetValues, b: SetValues, q: Quantity, resamples: int, seed: int) -> dict:
    """The figure of ``stat(b) - stat(a)`` on the same draws (module docstring)."""
    for name in ("syn_ids", "real_ids", "pair_ids"):
        if not np.array_equal(getattr(a, name), getattr(b, name)):
            raise ValueError(f"the variants' {name} differ: they were not sampled from one plan")
    samples, clusters, shared = _rows(a, q)
    return figure(lambda *rows: q.stat(b, *rows) - q.stat(a, *rows), samples, resamples, seed,
                  clusters, shared, q.bias_corrected)


# ---------------------------------------------------------------- the quantities

def image_quantities(dims: Sequence[int]) -> list[Quantity]:
    """FID (bias-corrected, :mod:`sonodiff.stats`) and KID at each Inception dimension."""
    out = []
    for d in dims:
        out.append(Quantity(("fid", str(d)), lambda v, i, j, d=d: v.frechet(d)(i, j), bias_corrected=True))
        out.append(Quantity(("kid", str(d)), lambda v, i, j, d=d: v.kid(d)(i, j)))
    return out


def _paired_stat(metric: str, stat: str) -> Stat:
    def value(v: SetValues, i: np.ndarray) -> float:
        return paired.summary(np.asarray(v.pairs[metric])[i])[stat]
    return value


def paired_quantities(metrics: Sequence[str] = PAIRED_METRICS) -> list[Quantity]:
    """Mean, standard deviation (ddof 0) and range of each paired metric over the pairs; only the
    mean is compared between variants."""
    return [Quantity(("paired", m, s), _paired_stat(m, s), unit="pairs", compares=s == "mean")
            for m in metrics for s in paired.STATS]


def physics_quantities(label_names: Sequence[str]) -> list[Quantity]:
    """The physics rows: ``("physics", metric, region, quantity)``."""
    out = [Quantity(("physics", "depth profile", "sector", "L1 synthetic vs real"),
                    lambda v, i, j: physics.profile_l1(v.syn_physics.profiles[i], v.real_physics.profiles[j]))]
    for k, name in enumerate(label_names):
        syn = lambda v, i, j, k=k: finite_mean(v.syn_physics.snr[i, k])  # noqa: E731
        real = lambda v, i, j, k=k: finite_mean(v.real_physics.snr[j, k])  # noqa: E731
        out += [Quantity(("physics", "speckle SNR", name, "synthetic"), syn),
                Quantity(("physics", "speckle SNR", name, "real"), real, compares=False),
                Quantity(("physics", "speckle SNR", name, "synthetic - real"),
                         lambda v, i, j, s=syn, r=real: s(v, i, j) - r(v, i, j))]
    for k, name in enumerate(label_names):
        out.append(Quantity(("physics", "intensity W1", name, "synthetic vs real"),
                            lambda v, i, j, k=k: physics.pooled_wasserstein(v.syn_physics.hist[i, k],
                                                                             v.real_physics.hist[j, k])))
    for (a, name_a), (b, name_b) in itertools.combinations(enumerate(label_names), 2):
        region = f"{name_a} vs {name_b}"
        syn = lambda v, i, j, a=a, b=b: physics.pooled_gcnr(v.syn_physics.hist[i, a], v.syn_physics.hist[i, b])  # noqa: E731
        real = lambda v, i, j, a=a, b=b: physics.pooled_gcnr(v.real_physics.hist[j, a], v.real_physics.hist[j, b])  # noqa: E731
        out += [Quantity(("physics", "gCNR", region, "synthetic"), syn),
                Quantity(("physics", "gCNR", region, "real"), real, compares=False),
                Quantity(("physics", "gCNR", region, "synthetic - real"),
                         lambda v, i, j, s=syn, r=real: s(v, i, j) - r(v, i, j)),
                Quantity(("physics", "gCNR", region, "synthetic, identical-distribution baseline"),
                         lambda v, i, j, a=a, b=b: physics.gcnr_chance(v.syn_physics.hist[i, a],
                                                                       v.syn_physics.hist[i, b]),
                         compares=False, interval=False),
                Quantity(("physics", "gCNR", region, "real, identical-distribution baseline"),
                         lambda v, i, j, a=a, b=b: physics.gcnr_chance(v.real_physics.hist[j, a],
                                                                       v.real_physics.hist[j, b]),
                         compares=False, interval=False)]
    return out


def quantities(values: SetValues) -> list[Quantity]:
    """Every quantity ``values`` can give (the sections in ``values.reasons`` left out)."""
    out = [] if "fid" in values.reasons else image_quantities(sorted(values.features))
    if "pairs" not in values.reasons:
        out += paired_quantities([m for m in PAIRED_METRICS if m in values.pairs])
    return out + physics_quantities([] if "labels" in values.reasons else values.label_names)


def unavailable(values: SetValues, dims: Sequence[int]) -> list[tuple[tuple[str, ...], dict]]:
    """n/a figures (with the reason) for the parts ``values`` could not compute."""
    out = []
    if "fid" in values.reasons:
        out += [((kind, str(d)), not_available(values.reasons["fid"])) for d in dims for kind in ("fid", "kid")]
    pair_reason = values.reasons.get("pairs") or values.reasons.get("lpips")
    for m in PAIRED_METRICS:
        if "pairs" in values.reasons or m not in values.pairs:
            reason = values.reasons.get("pairs") or pair_reason or "not computed"
            out += [(("paired", m, s), not_available(reason)) for s in paired.STATS]
    if "labels" in values.reasons:
        out.append((("physics", "speckle SNR, intensity W1, gCNR", "–", "–"), not_available(values.reasons["labels"])))
    return out
