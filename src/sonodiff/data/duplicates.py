"""Duplicate images across patients, found at prepare time: exact copies and re-cropped copies.

A duplicate pair is two 2D samples of *different* patients (pairs within one patient share a
split anyway) that are

- **exact**: the same loaded uint8 pixels and shape (a BLAKE2 hash of shape and bytes);
- **near**: the same scan re-cropped by up to 5 % per side and/or resized, found by partial
  correlation of small fingerprints under a search over crop windows (below).

Constant images (one value) are never duplicates. Linked patients form one *group* (connected
components, union-find), and a group takes one split (:func:`sonodiff.data.prepare.assign_splits`).

Near-duplicate similarity. The image ``A`` is area-resized to ``B`` (64 x 64, Pillow box filter).
A crop window ``w = (t, b, l, r)`` (fractions cut from top, bottom, left, right, each in
:data:`CROP_STEPS` = {0, 2.5 %, 5 %}: 81 windows, ``w0`` = no crop) gives the 32 x 32 fingerprint
``f^w = R(t, b) B R(l, r)^T``, ``R`` the area-averaging matrix of the window. Then

    g^w = u(f^w - mean(f^w)),   h^w = u(g^w - (g^w . m) m),   u(x) = x / ||x||,

with ``m = u(sum_i g_i^w0)`` the direction of the dataset's mean image over the compared samples:
``h`` is the fingerprint with what every image shares (sector fan, dark depth, overall brightness)
projected out, so ``h_i . h_j`` is a partial correlation. The similarity of samples ``i, j`` is

    r_ij = max_w max(h_i^w . h_j^w0, h_i^w0 . h_j^w),

high when one is a crop of the other (one side's crop window re-aligns them); near-duplicates have
``r_ij >= near_threshold``. Measured (tests/data/busi, the 20 real BUSI cases): distinct images
r <= 0.665, planted re-crops (1-6 % off one to four sides) r >= 0.946 and half-size copies
r >= 0.997; distinct patients of the CAMUS-like phantom (24 patients, 96 images, all alike) r <= 0.85.
Default threshold 0.90. (A perceptual hash of the whole image, pHash/dHash, is dominated by what
every ultrasound image shares and is not re-aligned after a crop: distinct fans look alike to it.)

An official split is authoritative (benchmarks are compared on it): a group it splits is kept as
it is and reported (:func:`describe` warns, naming the files), not an error.

Cost: the near comparison is a block matrix product, ``(81 n_i) x 1024`` variants of a block of
samples against ``N x 1024`` fingerprints, O(81 N^2 1024) in all; at most ``max_per_patient``
samples per patient (evenly spaced, e.g. slices of one volume, which are near-identical by nature
and never compared with each other) take part; exact hashes cover every sample. 780 samples take
about 3 s on one core; each sample keeps a 4 KB base copy until the comparison.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from dataclasses import dataclass, field, fields
from typing import Iterable, Mapping

import numpy as np
from PIL import Image

from sonodiff.errors import InputError

log = logging.getLogger(__name__)
#: Side of the area-resized copy kept per sample, and of the fingerprint.
BASE, SIDE = 64, 32
#: Fractions cut from each side in the crop-window search.
CROP_STEPS = (0.0, 0.025, 0.05)
_BLOCK = 16  # samples whose 81 variants are compared at once


@dataclass(frozen=True)
class DuplicateSettings:
    """``datasets.<name>.duplicates``: ``detect``, ``near_threshold`` (None: exact only),
    ``max_per_patient`` (samples per patient in the near comparison; 0: all)."""

    detect: bool = True
    near_threshold: float | None = 0.90
    max_per_patient: int = 16

    @classmethod
    def from_config(cls, entry: Mapping | None, where: str) -> "DuplicateSettings":
        defaults = {f.name: f.default for f in fields(cls)}
        entry = {**defaults, **(entry or {})}
        unknown = sorted(set(entry) - set(defaults))
        if unknown:
            raise InputError(f"{where}.{unknown[0]}", "unknown key")
        t = entry["near_threshold"]
        if t is not None and not 0.0 < float(t) <= 1.0:
            raise InputError(f"{where}.near_threshold", f"must be in (0, 1], not {t}")
        if int(entry["max_per_patient"]) < 0:
            raise InputError(f"{where}.max_per_patient", f"must be >= 0, not {entry['max_per_patient']}")
        return cls(bool(entry["detect"]), None if t is None else float(t), int(entry["max_per_patient"]))


@dataclass(frozen=True)
class Pair:
    """Two duplicate samples (indices into :attr:`DuplicateFinder.samples`)."""

    a: int
    b: int
    kind: str  # "exact" | "near"
    similarity: float


@dataclass(frozen=True)
class SampleInfo:
    """What the finder keeps of a sample besides its fingerprint."""

    sample_id: str
    patient_id: str
    source_file: str
    cls: str | None
    label_key: str | None
    structures: tuple[int, ...]


def pixel_key(arr: np.ndarray) -> str:
    """Hash of an array's shape, dtype and bytes: equal keys = identical pixels."""
    arr = np.ascontiguousarray(arr)
    h = hashlib.blake2b(f"{arr.shape}{arr.dtype}".encode(), digest_size=16)
    h.update(arr.tobytes())
    return h.hexdigest()


def area_matrix(n_in: int, lo: float, hi: float, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` area-averaging matrix of the window ``[lo, hi)`` (input pixel units)."""
    edges = lo + (hi - lo) * np.arange(n_out + 1) / n_out
    x = np.arange(n_in)[None, :]
    w = np.clip(np.minimum(edges[1:, None], x + 1) - np.maximum(edges[:-1, None], x), 0, None)
    return w / w.sum(axis=1, keepdims=True)


def _windows() -> np.ndarray:
    """``(9, SIDE, BASE)`` matrices R(t, b) of every (t, b) in CROP_STEPS^2, (0, 0) first."""
    return np.stack([area_matrix(BASE, t * BASE, BASE - b * BASE, SIDE)
                     for t, b in itertools.product(CROP_STEPS, CROP_STEPS)])


def base_image(image: np.ndarray) -> np.ndarray:
    """The uint8 ``BASE x BASE`` area-resized copy a fingerprint is made from."""
    return np.asarray(Image.fromarray(np.asarray(image, np.uint8)).resize((BASE, BASE), Image.Resampling.BOX))


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.where(norm > 1e-6, x / np.maximum(norm, 1e-12), 0.0).astype(np.float32)


def fingerprints(bases: np.ndarray, mean_dir: np.ndarray | None = None, crops: bool = True) -> np.ndarray:
    """``(n, 81, SIDE^2)`` fingerprints h^w of ``bases`` (n, BASE, BASE), window w0 first
    (``(n, 1, SIDE^2)``, w0 alone, without ``crops``).

    With ``mean_dir`` None, the standardized g^w (module docstring) instead of h^w.
    """
    R = _windows() if crops else _windows()[:1]
    f = np.einsum("aij,njk,blk->nabil", R, bases.astype(np.float64), R, optimize=True)
    f = f.reshape(len(bases), len(R) ** 2, SIDE * SIDE)
    g = _unit(f - f.mean(axis=-1, keepdims=True))
    if mean_dir is None:
        return g
    return _unit(g - (g @ mean_dir)[..., None] * mean_dir)


def near_pairs(bases: np.ndarray, patients: list[str], threshold: float) -> dict[tuple[int, int], float]:
    """``{(i, j): r_ij}`` for i < j of different patients with ``r_ij >= threshold``."""
    n = len(bases)
    if n < 3:  # the mean image of fewer than three says nothing
        return {}
    g0 = fingerprints(bases, crops=False)[:, 0]
    mean_dir = _unit(g0.sum(axis=0))
    h0 = _unit(g0 - (g0 @ mean_dir)[:, None] * mean_dir)
    pid = np.asarray(patients, dtype=object)
    found: dict[tuple[int, int], float] = {}
    for s in range(0, n, _BLOCK):
        hv = fingerprints(bases[s:s + _BLOCK], mean_dir)  # (b, 81, d)
        sims = (hv.reshape(-1, hv.shape[-1]) @ h0.T).reshape(len(hv), -1, n).max(axis=1)
        for k, i in enumerate(range(s, s + len(hv))):
            for j in np.flatnonzero((sims[k] >= threshold) & (pid != pid[i])):
                key = (min(i, int(j)), max(i, int(j)))
                found[key] = max(found.get(key, -1.0), float(sims[k, j]))
    return found


def evenly_spaced(indices: list[int], k: int) -> list[int]:
    """At most ``k`` of ``indices`` (all for ``k == 0``), evenly spaced, first and last kept."""
    if k == 0 or len(indices) <= k:
        return indices
    return [indices[int(round(p))] for p in np.linspace(0, len(indices) - 1, k)]


@dataclass
class DuplicateFinder:
    """Collects the loaded 2D samples (:meth:`add`) and finds duplicate pairs (:meth:`pairs`)."""

    settings: DuplicateSettings
    samples: list[SampleInfo] = field(default_factory=list)
    pixel_keys: list[str | None] = field(default_factory=list)
    _bases: list[np.ndarray | None] = field(default_factory=list)

    def add(self, sample_id: str, patient_id: str, source_file: str, image: np.ndarray,
            label: np.ndarray | None = None, cls: str | None = None) -> None:
        """Keep one sample: its pixel hash and base copy (none for constant images)."""
        constant = not self.settings.detect or int(image.max()) == int(image.min())
        structures = tuple(int(v) for v in np.unique(label) if v != 0) if label is not None else ()
        self.samples.append(SampleInfo(sample_id, patient_id, source_file, cls,
                                       pixel_key(label) if label is not None else None, structures))
        self.pixel_keys.append(None if constant else pixel_key(image))
        self._bases.append(None if constant or self.settings.near_threshold is None else base_image(image))

    def pairs(self) -> list[Pair]:
        """Exact pairs (each patient's first copy against the first patient's), then near pairs."""
        if not self.settings.detect:
            return []
        out: list[Pair] = []
        by_key: dict[str, list[int]] = {}
        for i, key in enumerate(self.pixel_keys):
            if key is not None:
                by_key.setdefault(key, []).append(i)
        for members in by_key.values():
            first: dict[str, int] = {}
            for i in members:
                first.setdefault(self.samples[i].patient_id, i)
            heads = list(first.values())
            out += [Pair(heads[0], i, "exact", 1.0) for i in heads[1:]]
        if self.settings.near_threshold is None:
            return out
        chosen = self._near_candidates()
        bases = np.stack([self._bases[i] for i in chosen]) if chosen else np.zeros((0, BASE, BASE), np.uint8)
        found = near_pairs(bases, [self.samples[i].patient_id for i in chosen], self.settings.near_threshold)
        for (i, j), r in sorted(found.items()):
            a, b = chosen[i], chosen[j]
            if self.pixel_keys[a] != self.pixel_keys[b]:
                out.append(Pair(a, b, "near", round(min(r, 1.0), 4)))
        return out

    def _near_candidates(self) -> list[int]:
        per_patient: dict[str, list[int]] = {}
        for i, base in enumerate(self._bases):
            if base is not None:
                per_patient.setdefault(self.samples[i].patient_id, []).append(i)
        return sorted(i for ids in per_patient.values() for i in evenly_spaced(ids, self.settings.max_per_patient))


def group_patients(links: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Connected components of patients linked by duplicate pairs: ``{group id: sorted patients}``,
    groups numbered ``dup001, dup002...`` by their smallest patient id (union-find)."""
    parent: dict[str, str] = {}

    def find(p: str) -> str:
        parent.setdefault(p, p)
        while parent[p] != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    for a, b in links:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    comps: dict[str, list[str]] = {}
    for p in parent:
        comps.setdefault(find(p), []).append(p)
    groups = sorted(sorted(c) for c in comps.values() if len(c) > 1)
    width = max(3, len(str(len(groups))))
    return {f"dup{k + 1:0{width}d}": members for k, members in enumerate(groups)}


def _conflicts(x: SampleInfo, y: SampleInfo, kind: str) -> list[str]:
    """What differs between two duplicates: class, label map (exact copies), structures (near)."""
    out = []
    if x.cls is not None and y.cls is not None and x.cls != y.cls:
        out.append(f"classes differ: {x.sample_id} {x.cls}, {y.sample_id} {y.cls}")
    if x.label_key is None or y.label_key is None:
        return out
    if kind == "exact" and x.label_key != y.label_key:
        out.append(f"label maps differ: {x.sample_id}, {y.sample_id}")
    elif kind == "near" and x.structures != y.structures:
        out.append(f"structures differ: {x.sample_id} {list(x.structures)}, {y.sample_id} {list(y.structures)}")
    return out


def describe(finder: DuplicateFinder, pairs: list[Pair], groups: Mapping[str, list[str]],
             splits: Mapping[str, str]) -> dict:
    """The ``duplicates`` block of ``dataset.json``; logs a warning naming the files of every
    conflict (class or labels differ within a pair) and of every group that spans splits."""
    s, info = finder.settings, finder.samples
    group_of = {p: g for g, members in groups.items() for p in members}
    listed = []
    for g, members in groups.items():
        mine = [p for p in pairs if group_of.get(info[p.a].patient_id) == g]
        conflicts = []
        for p in mine:
            for text in _conflicts(info[p.a], info[p.b], p.kind):
                log.warning("%s and %s: %s duplicates, %s", info[p.a].source_file, info[p.b].source_file,
                            p.kind, text)
                conflicts.append(text)
        spans = sorted({splits[m] for m in members})
        if len(spans) > 1:
            files = sorted({info[i].source_file for p in mine for i in (p.a, p.b)})
            log.warning("duplicate images in official splits %s (the official split is kept, so they "
                        "leak): %s", "/".join(spans), ", ".join(files))
        listed.append({"group": g, "patients": members, "splits": spans, "conflicts": conflicts,
                       "pairs": [{"a": info[p.a].sample_id, "b": info[p.b].sample_id, "kind": p.kind,
                                  "similarity": p.similarity} for p in mine]})
    images = {i for p in pairs for i in (p.a, p.b)}
    exact_keys = {finder.pixel_keys[i] for p in pairs if p.kind == "exact" for i in (p.a,)}
    images |= {i for i, k in enumerate(finder.pixel_keys) if k is not None and k in exact_keys}
    return {
        "settings": {"detect": s.detect, "near_threshold": s.near_threshold, "max_per_patient": s.max_per_patient},
        "counts": {"groups": len(groups), "patients": len(group_of), "images": len(images),
                   "exact_pairs": sum(p.kind == "exact" for p in pairs),
                   "near_pairs": sum(p.kind == "near" for p in pairs),
                   "conflicts": sum(len(x["conflicts"]) for x in listed),
                   "groups_across_splits": sum(len(x["splits"]) > 1 for x in listed)},
        "groups": listed,
    }
