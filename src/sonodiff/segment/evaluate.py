"""Dice per structure (Echo from noise, table 1) with MONAI's ``compute_dice``.

Structures are unions of prepared label ids (the prepared dataset's description,
:attr:`sonodiff.contracts.dataset.PreparedDataset.info`):

- CAMUS-like data (``format: camus``; prepared ids 1 LV cavity, 2 myocardium, 3 left atrium):
  LV endocardium = {1}, LV epicardium = {1, 2} (cavity and myocardium together), left atrium = {3}.
- Any other dataset (SegThy-like: thyroid, carotid, jugular; generic): each structure of
  ``dataset.json["structures"]`` by its own id.

Predictions are prepared id maps (the recipe's classes mapped back,
:class:`sonodiff.segment.data.LabelClasses`); background and sector are never scored. For one
image and structure S with predicted mask P and true mask T,

    Dice = 2 |P ∩ T| / (|P| + |T|),

NaN where T is empty (MONAI ``ignore_empty=True``): such an image does not count for that
structure (and, the truth being the same, for no seed).

Seeds: with Dice d_kij of seed k (K seeds), test image i and structure j, the structure mean of a
seed is m_kj = nanmean_i d_kij and the papers' "Mean" is M_k = mean_j m_kj. A source's summary
(:func:`summarize_seeds`) is, per structure and for the Mean,

    mean = (1/K) sum_k m_kj,    seed_std = sqrt(sum_k (m_kj - mean)^2 / (K - 1))   (ddof 1; NaN for K = 1),

and the per-image Dice averaged over seeds is d_ij = (1/K) sum_k d_kij, whose nanmean over images
equals ``mean``. Intervals (patients resampled) are the segmentation table's
(:mod:`sonodiff.report.segmentation_table`), from d_ij and the test images' patients.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from sonodiff.errors import InputError
from sonodiff.stats import finite_mean

#: CAMUS structures: key -> (display name, prepared ids).
CAMUS_STRUCTURES = {
    "lv_endo": ("LV endo", (1,)),
    "lv_epi": ("LV epi", (1, 2)),
    "la": ("LA", (3,)),
}


def structure_definitions(info: Mapping, where: str | Path = "the prepared dataset's description") -> dict[str, dict]:
    """Scored structures of a prepared dataset: ``{key: {"label": display name, "ids": [ids]}}``.

    ``info`` is the prepared dataset's description (``where``: its file, named in errors).
    CAMUS-like data gives LV endo/epi and LA (module docstring); other formats give each entry of
    ``info["structures"]`` in id order.
    """
    structures = info.get("structures")
    if not isinstance(structures, Mapping) or not structures:
        raise InputError(where, "no structures to segment (the dataset has no label maps)")
    if info.get("format") == "camus":
        ids = set(int(v) for v in structures.values())
        if not {1, 2, 3} <= ids:
            raise InputError(where, f"CAMUS-like data needs structure ids 1, 2, 3; has {sorted(ids)}")
        return {k: {"label": name, "ids": list(v)} for k, (name, v) in CAMUS_STRUCTURES.items()}
    ordered = sorted(structures.items(), key=lambda kv: int(kv[1]))
    return {name: {"label": name, "ids": [int(i)]} for name, i in ordered}


def structure_masks(labels, structures: Mapping[str, Mapping]):
    """Binary masks (N, S, H, W) of each structure (union of its ids) from id maps (N, H, W) (torch)."""
    import torch

    masks = []
    for spec in structures.values():
        ids = torch.as_tensor(list(spec["ids"]), device=labels.device)
        masks.append(torch.isin(labels, ids))
    return torch.stack(masks, dim=1).float()


def dice_per_structure(pred, true, structures: Mapping[str, Mapping]) -> np.ndarray:
    """Dice (N, S) of predicted and true id maps (N, H, W), per structure (module docstring).

    torch and MONAI are imported here: the table and figure rules import this module without them.
    """
    import torch
    from monai.metrics import compute_dice

    pred = torch.as_tensor(np.asarray(pred) if not isinstance(pred, torch.Tensor) else pred).long()
    true = torch.as_tensor(np.asarray(true) if not isinstance(true, torch.Tensor) else true).long()
    if pred.shape != true.shape or pred.ndim != 3:
        raise ValueError(f"prediction {tuple(pred.shape)} and truth {tuple(true.shape)} must both be (N, H, W)")
    dice = compute_dice(structure_masks(pred, structures), structure_masks(true, structures),
                        include_background=True, ignore_empty=True)
    return dice.cpu().numpy().astype(np.float64)


def _nanmean(values: np.ndarray) -> float:
    """Mean of the finite values; NaN (without a warning) when there are none."""
    return float(finite_mean(np.ravel(values)))


def structure_means(dice: np.ndarray) -> np.ndarray:
    """m_j = nanmean_i d_ij per structure (S,) of Dice (N, S); NaN for a structure in no image."""
    return np.array([_nanmean(c) for c in np.asarray(dice, dtype=np.float64).T])


def mean_dice(dice: np.ndarray) -> float:
    """One number for model selection: the mean over structures of the per-structure mean Dice
    (0 when no structure is in any image)."""
    value = _nanmean(structure_means(dice))
    return value if np.isfinite(value) else 0.0


def _across_seeds(values: np.ndarray) -> dict:
    """Mean, std (ddof 1; NaN for one seed) and the values of one quantity over seeds."""
    x = np.asarray(values, dtype=np.float64)
    finite = x[np.isfinite(x)]
    return {"mean": _nanmean(x),
            "seed_std": float(finite.std(ddof=1)) if finite.size > 1 else float("nan"),
            "per_seed": [float(v) for v in x]}


def summarize_seeds(dice: np.ndarray, keys: Sequence[str]) -> dict:
    """Summary over seeds of Dice (K, N, S) (module docstring): per structure ``key`` and for
    ``structure_mean`` (the papers' Mean column), ``{"mean", "seed_std", "per_seed"}``."""
    means = np.stack([structure_means(d) for d in dice])             # (K, S): m_kj
    out = {key: _across_seeds(means[:, j]) for j, key in enumerate(keys)}
    out["structure_mean"] = _across_seeds(np.array([_nanmean(m) for m in means]))   # M_k
    return out


def seed_mean_dice(dice: np.ndarray) -> np.ndarray:
    """d_ij = (1/K) sum_k d_kij (N, S) from Dice (K, N, S); NaN where the structure is absent."""
    return np.asarray(dice, dtype=np.float64).mean(axis=0)
