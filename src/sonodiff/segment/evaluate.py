"""Dice per structure (Echo from noise, table 1) with MONAI's ``compute_dice``.

Structures are unions of prepared label ids (the prepared dataset's description,
:attr:`sonodiff.contracts.dataset.PreparedDataset.info`):

- CAMUS-like data (``format: camus``; prepared ids 1 LV cavity, 2 myocardium, 3 left atrium):
  LV endocardium = {1}, LV epicardium = {1, 2} (cavity and myocardium together), left atrium = {3}.
- Any other dataset (SegThy-like: thyroid, carotid, jugular; generic): each structure of
  ``dataset.json["structures"]`` by its own id.

The network predicts every prepared class (background, structures, sector); background and
sector are never scored. For one image and structure S with predicted mask P and true mask T,

    Dice = 2 |P ∩ T| / (|P| + |T|),

NaN where T is empty (MONAI ``ignore_empty=True``): such an image does not count for that
structure. Summaries (mean, std, 95% bootstrap interval) run over test images
(:mod:`sonodiff.stats`); the per-image mean is the mean over the structures present.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from sonodiff.errors import InputError
from sonodiff.stats import summarize

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


def mean_dice(dice: np.ndarray) -> float:
    """One number for model selection: the mean over structures of the per-structure mean Dice."""
    with np.errstate(all="ignore"):
        per_structure = np.array([np.nanmean(c) if np.isfinite(c).any() else np.nan for c in dice.T])
    return float(np.nanmean(per_structure)) if np.isfinite(per_structure).any() else 0.0


def summarize_dice(dice: np.ndarray, keys: Sequence[str], resamples: int, seed: int) -> dict:
    """Per structure and for the per-image mean: mean, std, 95% bootstrap interval, n.

    Also ``structure_mean`` as the papers' "Mean" column: the mean and standard deviation (ddof 0)
    of the per-structure means (e.g. Echo from noise: 88.5, 92.3, 86.3 -> 89.0 ± 2.5).
    """
    out = {key: summarize(dice[:, j], resamples, seed + j) for j, key in enumerate(keys)}
    with np.errstate(all="ignore"):
        per_image = np.array([np.nanmean(r) if np.isfinite(r).any() else np.nan for r in dice])
    out["image_mean"] = summarize(per_image, resamples, seed + len(keys))
    means = np.array([out[k]["mean"] for k in keys], dtype=np.float64)
    means = means[np.isfinite(means)]
    out["structure_mean"] = {
        "mean": float(means.mean()) if means.size else float("nan"),
        "std": float(means.std()) if means.size else float("nan"),
    }
    return out
