"""Train the downstream UNet on one source and test it on the real test split.

Echo from noise, section 2.2: a 2D UNet (MONAI's ``UNet``; channels/strides from config
``segment``) trained with Adam (lr from
config, betas 0.9/0.999) on the DiceCE loss

    L = L_Dice(softmax(z), onehot(y)) + L_CE(z, y)

over every prepared class (background, structures and the sector label: the network learns the
whole label map, as the label maps that drive the diffusion models have it; only structures are
scored). Every source trains the same number of optimiser steps, ``segment.steps`` (a synthetic
source with five times the images gets no more updates than the real one); every
``segment.val_every`` steps (and at the last) the validation set is segmented and the model with
the best validation mean Dice (mean over scored structures,
:func:`sonodiff.segment.evaluate.mean_dice`) is kept.

Data order: with N training images and batch size B, step s reads positions p = s B + j
(j < B); position p is image ``perm_e[p mod N]`` of pass ``e = p div N``, ``perm_e`` a permutation
drawn from ``derive_seed(seed, "segment", e)``: a pure function of (seed, step). Weights are
initialised under ``torch.manual_seed(seed)``. An interrupted run resumed from ``last.pt`` (in the
checkpoints folder beside the model, :data:`sonodiff.contracts.layout.CHECKPOINTS`, written at every
validation) therefore continues exactly as an uninterrupted one. Checkpoints are written
atomically and read with ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from tqdm.auto import tqdm

from sonodiff.contracts import layout
from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.contracts.segmentation import write_predictions, write_segment_record
from sonodiff.device import resolve_device
from sonodiff.io import atomic_path
from sonodiff.seeds import derive_seed
from sonodiff.segment.data import PngSegmentationSet, build_sets
from sonodiff.segment.evaluate import dice_per_structure, mean_dice, structure_definitions, summarize_dice
from sonodiff.segment.sources import check_network

log = logging.getLogger(__name__)

#: Keys of ``segment`` that do not change a run's trajectory up to a given step.
NON_TRAJECTORY_KEYS = ("steps", "sources")


def build_unet(n_classes: int, seg: Mapping) -> torch.nn.Module:
    """MONAI ``UNet(spatial_dims=2, in_channels=1, out_channels=n_classes, ...)`` from ``segment``.

    MONAI is imported here, not at module level: ``import monai`` costs seconds (torchvision,
    ``torch._dynamo``) that only the jobs that build a network should pay.
    """
    from monai.networks.nets import UNet

    return UNet(spatial_dims=2, in_channels=1, out_channels=int(n_classes), channels=list(seg["channels"]),
                strides=list(seg["strides"]), num_res_units=int(seg["num_res_units"]))


def dice_ce_loss() -> torch.nn.Module:
    """MONAI's ``DiceCELoss(to_onehot_y=True, softmax=True)``: logits (B, C, H, W), ids (B, 1, H, W)."""
    from monai.losses import DiceCELoss

    return DiceCELoss(to_onehot_y=True, softmax=True)


def _save(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_segmenter(path: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """The best model of a run (``model.pt``) and its checkpoint dict, loaded ``weights_only``."""
    ckpt = torch.load(path, map_location=device, weights_only=True)
    model = build_unet(ckpt["num_classes"], ckpt["network"]).to(device)
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model, ckpt


@lru_cache(maxsize=4)
def _pass_permutation(n: int, seed: int, index: int) -> np.ndarray:
    return np.random.default_rng(derive_seed(seed, "segment", index)).permutation(n)


def batch_indices(n: int, step: int, batch_size: int, seed: int) -> np.ndarray:
    """Training-image indices of ``step``: ``perm_{p div n}[p mod n]`` for p = step B + j (module docstring)."""
    positions = range(step * batch_size, (step + 1) * batch_size)
    return np.array([_pass_permutation(n, seed, p // n)[p % n] for p in positions], dtype=np.int64)


def _tensors(arrays: tuple[np.ndarray, np.ndarray], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    return tuple(torch.from_numpy(a).to(device) for a in arrays)  # type: ignore[return-value]


@torch.no_grad()
def predict(model: torch.nn.Module, dataset: PngSegmentationSet, device: torch.device,
            batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Predicted (argmax) and true id maps, each uint8 (N, H, W), in dataset order."""
    model.eval()
    preds, trues = [], []
    for start in range(0, len(dataset), batch_size):
        image, label = _tensors(dataset.batch(range(start, min(start + batch_size, len(dataset)))), device)
        preds.append(model(image).argmax(dim=1).to(torch.uint8).cpu())
        trues.append(label[:, 0].to(torch.uint8).cpu())
    return torch.cat(preds).numpy(), torch.cat(trues).numpy()


def validation_steps(steps: int, val_every: int) -> list[int]:
    """Steps after which the validation set is segmented: every ``val_every`` and the last."""
    return sorted(set(range(val_every, steps + 1, val_every)) | {steps})


def _fingerprint(seg: Mapping, train: PngSegmentationSet, val: PngSegmentationSet) -> str:
    """What a resumed run must share with the interrupted one (everything but the step count)."""
    keys = {k: v for k, v in seg.items() if k not in NON_TRAJECTORY_KEYS}
    ids = [list(train.table["sample_id"]), list(val.table["sample_id"])]
    return hashlib.sha256(json.dumps([keys, ids], sort_keys=True).encode()).hexdigest()


def fit(train_set: PngSegmentationSet, val_set: PngSegmentationSet, structures: Mapping[str, Mapping],
        seg: Mapping, device: torch.device, out_model: str | Path, meta: Mapping | None = None,
        checkpoint_dir: str | Path | None = None, progress: bool = True) -> dict:
    """Train ``segment.steps`` steps (module docstring); write the best model to ``out_model``;
    return ``{"best_step", "best_val_dice", "history"}``, history one row per validation
    (``step``, ``loss``: mean training loss since the previous row, ``val_dice``).

    ``meta`` is stored in ``out_model`` beside the weights (e.g. the resolved config).
    With ``checkpoint_dir`` the state after every validation goes to ``last.pt`` there, and a run
    with the same settings and sets resumes from it (when its step is a validation step of this run).
    """
    n_classes = train_set.num_classes
    seed, steps, batch = int(seg["seed"]), int(seg["steps"]), int(seg["batch_size"])
    checks = validation_steps(steps, int(seg["val_every"]))
    torch.manual_seed(seed)
    model = build_unet(n_classes, seg).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=float(seg["lr"]), betas=(0.9, 0.999))
    fingerprint = _fingerprint(seg, train_set, val_set)
    state = {"step": 0, "best_step": 0, "best_val_dice": -1.0, "history": [], "best_state_dict": None}
    last = Path(checkpoint_dir) / "last.pt" if checkpoint_dir else None
    if last is not None and last.is_file():
        ckpt = torch.load(last, map_location=device, weights_only=True)
        if ckpt.get("fingerprint") == fingerprint and ckpt.get("step") in checks:
            model.load_state_dict(ckpt["state_dict"])
            optimizer.load_state_dict(ckpt["optimizer"])
            state = {k: ckpt[k] for k in state}
            log.info("resumed from %s at step %d", last, state["step"])
        else:
            log.info("ignoring %s: different settings, sets or validation steps", last)

    loss_fn = dice_ce_loss()
    bar = tqdm(total=steps, initial=state["step"], desc="segmenter", unit="step", disable=not progress)
    total, count = 0.0, 0
    for step in range(state["step"], steps):
        model.train()
        image, label = _tensors(train_set.batch(batch_indices(len(train_set), step, batch, seed)), device)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(image), label)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite segmentation loss at step {step + 1}")
        loss.backward()
        optimizer.step()
        total, count = total + float(loss.detach()), count + 1
        bar.update(1)
        if step + 1 not in checks:
            continue
        pred, true = predict(model, val_set, device, batch)
        val = mean_dice(dice_per_structure(pred, true, structures))
        row = {"step": step + 1, "loss": total / max(count, 1), "val_dice": val}
        total, count = 0.0, 0
        state["history"].append(row)
        if val > state["best_val_dice"]:
            state.update(best_step=step + 1, best_val_dice=val,
                         best_state_dict={k: v.detach().clone() for k, v in model.state_dict().items()})
        state["step"] = step + 1
        log.info("step %d loss %.4f val Dice %.4f (best %.4f at %d)", step + 1, row["loss"], val,
                 state["best_val_dice"], state["best_step"])
        bar.set_postfix(loss=f"{row['loss']:.3f}", val_dice=f"{val:.3f}")
        if last is not None:
            _save({**state, "state_dict": model.state_dict(), "optimizer": optimizer.state_dict(),
                   "fingerprint": fingerprint}, last)
    bar.close()

    network = {k: seg[k] for k in ("channels", "strides", "num_res_units")}
    _save({"state_dict": state["best_state_dict"], "num_classes": n_classes, "network": network,
           "structures": dict(structures), "step": state["best_step"],
           "val_dice": state["best_val_dice"], "meta": dict(meta or {})}, Path(out_model))
    return {"best_step": state["best_step"], "best_val_dice": state["best_val_dice"],
            "history": state["history"]}


def run_segmentation(dataset: PreparedDataset, source: str, samples_manifests: Mapping[str, str | Path],
                     cfg: Mapping, record: str | Path, model: str | Path, predictions: str | Path,
                     threads: int | None = None, progress: bool = True) -> dict:
    """One ``train_segmenter`` job: build the sets of ``source``, train, test on real test images.

    ``cfg`` is the resolved job config (keys ``segment``, ``metrics.bootstrap``, ``device``,
    ``dataset``, ``variant``...). Writes ``model`` (best weights; checkpoints go to the
    checkpoints folder beside it), ``predictions`` (``sample_id`` and predicted id maps of the
    test images) and the segmentation ``record`` (Dice per structure: mean, std, 95% bootstrap
    interval; per-image Dice; training history), through :mod:`sonodiff.contracts.segmentation`.
    """
    if threads:
        torch.set_num_threads(int(threads))
    seg = cfg["segment"]
    img_size = dataset.img_size
    check_network(img_size, seg)
    structures = structure_definitions(dataset.info, dataset.info_path)
    n_classes = int(dataset.num_classes)
    sets = build_sets(dataset.manifest, source, samples_manifests)
    data = {k: PngSegmentationSet(v, n_classes, img_size) for k, v in sets.items()}
    device = resolve_device(cfg.get("device", "auto"))
    log.info("source %s: %d train, %d val, %d test images on %s", source,
             *(len(data[k]) for k in ("train", "val", "test")), device)

    result = fit(data["train"], data["val"], structures, seg, device, model,
                 meta={"config": dict(cfg), "source": source},
                 checkpoint_dir=Path(model).parent / layout.CHECKPOINTS, progress=progress)
    best, _ = load_segmenter(model, device)
    pred, true = predict(best, data["test"], device, int(seg["batch_size"]))
    dice = dice_per_structure(pred, true, structures)
    keys = list(structures)
    resamples = int(cfg.get("metrics", {}).get("bootstrap", 1000))
    test = sets["test"]
    metrics = {
        "dataset": cfg.get("dataset"),
        "format": dataset.info.get("format"),
        "source": source,
        "structures": structures,
        "dice": summarize_dice(dice, keys, resamples, int(seg["seed"])),
        "bootstrap": {"resamples": resamples, "level": 0.95, "seed": int(seg["seed"])},
        "counts": {"train": len(sets["train"]), "val": len(sets["val"]), "test": len(test),
                   "test_patients": int(test["patient_id"].nunique())},
        "train": {"best_step": result["best_step"], "best_val_dice": result["best_val_dice"],
                  "steps": int(seg["steps"]), "val_every": int(seg["val_every"]), "history": result["history"]},
        "per_image": {"sample_id": list(test["sample_id"]),
                      **{k: [float(x) for x in dice[:, j]] for j, k in enumerate(keys)}},
        "segment": dict(seg),
        "device": str(device),
    }
    write_predictions(predictions, list(test["sample_id"]), pred)
    write_segment_record(record, metrics)
    return metrics
