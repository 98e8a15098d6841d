"""Reverse-process snapshots x_t along one chain of a trained model (Domínguez et al. fig. 3).

The chain is the sampling stage's own: the model's guided prediction and the sampler, steps,
guidance weight (:func:`sonodiff.config.guidance_weight`), eta and clipping of the ``sample``
section of the job's config (the rule's, or the one stored with the model), from the initial noise x_T ~ N(0, I) of
``Generator().manual_seed(seed)`` (the config's seed) with step noise from ``seed + 1``, conditioned on the label map of the first validation row (by
``sample_id``) of the prepared dataset. With K respaced steps it keeps x_t every
``max(1, (K - 1) div (n - 2))`` steps (and at the first step), then ``n - 1`` of those evenly
spread, and the final x_0: n frames (K + 1 when K < n - 1), each the channel mean, in [-1, 1]
(before clipping to uint8). With the model's ``sample.mask_sector`` the final x_0 is black (-1) outside the
dataset's sector mask, as the sample sets are; the x_t frames are the chain's states, unmasked.
The file is :func:`sonodiff.contracts.samples.write_snapshots` (``FINAL_STEP`` marks x_0).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from sonodiff.config import guidance_weight
from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.contracts.model_file import LoadedModel, load_model
from sonodiff.contracts.samples import FINAL_STEP, write_snapshots
from sonodiff.device import resolve_device
from sonodiff.diffusion.sampling import sample_loop
from sonodiff.models import LABEL_KINDS
from sonodiff.sample.generate import apply_sector, clip_setting, configured_mask, configured_process, guided_fn


def reverse_chain(loaded: LoadedModel, labels: np.ndarray | None, num_snapshots: int, seed: int,
                  progress: bool = True, sector: torch.Tensor | None = None,
                  scfg: Mapping | None = None, class_id: int | None = None) -> tuple[list[int], np.ndarray]:
    """(original step of each frame, FINAL_STEP for x_0) and the frames (n, H, W) of one chain.

    ``sector``: a (H, W) bool mask; x_0 is set to -1 outside it (None: unmasked). ``scfg``: the
    ``sample`` section (None: the one stored with the model). ``class_id``: a latent model's
    prompt; its chain runs on the latent grid and every frame is the decoded latent.
    """
    scfg = loaded.config["sample"] if scfg is None else scfg
    sampler, process = configured_process(loaded.diffusion, scfg)
    n = process.num_steps
    every = max(1, (n - 1) // max(num_snapshots - 2, 1))
    cond_labels = None if labels is None else torch.as_tensor(labels, dtype=torch.long)[None].to(process.device)
    classes = None if class_id is None else torch.tensor([int(class_id)], device=process.device)
    cond = loaded.model.condition(cond_labels, classes)
    model_fn = guided_fn(loaded, cond, guidance_weight(scfg), None)
    noise = torch.randn((1, *loaded.image_shape), generator=torch.Generator().manual_seed(int(seed)))
    x0, snaps = sample_loop(process, model_fn, noise, [torch.Generator().manual_seed(int(seed) + 1)],
                            sampler=sampler, eta=float(scfg["eta"]),
                            clip_x0=clip_setting(loaded, scfg),
                            progress=progress, snapshot_every=every)
    keep = [snaps[i] for i in sorted({int(round(v)) for v in np.linspace(0, len(snaps) - 1, num_snapshots - 1)})]
    steps = [s.step for s in keep] + [FINAL_STEP]
    image = (lambda x: loaded.model.decode(x.to(process.device)).cpu()) if loaded.latent else (lambda x: x)
    x0 = apply_sector(image(x0), sector)
    frames = np.stack([image(s.x_t)[0].mean(0).numpy() for s in keep] + [x0[0].mean(0).detach().cpu().numpy()])
    return steps, frames


def snapshot_rows(dataset: PreparedDataset, *columns: str):
    """The prepared rows the chain is conditioned on: the validation split sorted by ``sample_id``
    (every row without a val split); the first one is used."""
    rows = dataset.rows("val", required=("sample_id", "split", *columns))
    return rows if not rows.empty else dataset.rows(required=("sample_id", "split", *columns))


def snapshot_class(dataset: PreparedDataset, loaded: LoadedModel) -> int | None:
    """A latent model's class id for the chain: the class of the row :func:`snapshot_label_map` uses."""
    if loaded.classes is None:
        return None
    return loaded.classes.index(str(snapshot_rows(dataset, "class")["class"].iloc[0]))


def snapshot_label_map(dataset: PreparedDataset) -> np.ndarray | None:
    """The prepared label map of the first validation row by ``sample_id`` (any row without a
    val split), or None for a dataset without label maps."""
    rows = snapshot_rows(dataset)
    if rows.empty or not dataset.has_labels or "label" not in rows or not rows["label"].iloc[0]:
        return None
    return dataset.label_maps(rows.iloc[:1])[0]


def write_reverse_snapshots(model_path: str | Path, dataset: PreparedDataset, out: str | Path,
                            num_snapshots: int = 8, device: str = "auto", progress: bool = True,
                            cfg: Mapping | None = None) -> Path:
    """Write the snapshots of one chain of ``model_path`` on ``dataset`` (module docstring) to ``out``.

    ``cfg``: the job's config (its ``sample`` section and ``seed``); None uses the config stored
    with the model (a model file that holds one).
    """
    loaded = load_model(model_path, resolve_device(device))
    labels = snapshot_label_map(dataset) if loaded.spec["kind"] in LABEL_KINDS else None
    cfg = loaded.config if cfg is None else cfg
    sector = configured_mask(cfg["sample"], dataset.sector_path, loaded)
    steps, frames = reverse_chain(loaded, labels, num_snapshots, seed=int(cfg["seed"]), progress=progress,
                                  sector=sector, scfg=cfg["sample"], class_id=snapshot_class(dataset, loaded))
    return write_snapshots(out, steps, frames, labels)
