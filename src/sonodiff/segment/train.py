"""Train the downstream MONAI UNet on one source and test it on the real test split.

Echo from noise, section 2.2: a 2D UNet (MONAI ``UNet``, channels/strides from config
``segment``) trained with Adam (lr from config, betas 0.9/0.999) on the DiceCE loss

    L = L_Dice(softmax(z), onehot(y)) + L_CE(z, y)

over every prepared class (background, structures and the sector label: the network learns the
whole label map, as the label maps that drive the diffusion models have it; only structures are
scored). After every epoch the validation set is segmented and the model with the best validation
mean Dice (mean over scored structures, :func:`sonodiff.segment.evaluate.mean_dice`) is kept.

Seeded: weights are initialised under ``torch.manual_seed(seed)`` and epoch e shuffles with a
generator seeded ``seed * 100003 + e``, so an interrupted run resumed from ``last.pt`` (in the
checkpoints folder beside the model, :data:`sonodiff.contracts.layout.CHECKPOINTS`) continues exactly
as an uninterrupted one. Checkpoints are written atomically and read with ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from monai.losses import DiceCELoss
from monai.networks.nets import UNet
from tqdm.auto import tqdm

from sonodiff.contracts import layout
from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.contracts.segmentation import write_predictions, write_segment_record
from sonodiff.device import resolve_device
from sonodiff.io import atomic_path
from sonodiff.segment.data import PngSegmentationSet, build_sets
from sonodiff.segment.evaluate import dice_per_structure, mean_dice, structure_definitions, summarize_dice
from sonodiff.segment.sources import check_network

log = logging.getLogger(__name__)


def build_unet(n_classes: int, seg: Mapping) -> UNet:
    """MONAI ``UNet(spatial_dims=2, in_channels=1, out_channels=n_classes, ...)`` from ``segment``."""
    return UNet(spatial_dims=2, in_channels=1, out_channels=int(n_classes),
                channels=list(seg["channels"]), strides=list(seg["strides"]),
                num_res_units=int(seg["num_res_units"]))


def _save(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_segmenter(path: str | Path, device: str | torch.device = "cpu") -> tuple[UNet, dict]:
    """The best model of a run (``model.pt``) and its checkpoint dict, loaded ``weights_only``."""
    ckpt = torch.load(path, map_location=device, weights_only=True)
    model = build_unet(ckpt["num_classes"], ckpt["network"]).to(device)
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model, ckpt


@torch.no_grad()
def predict(model: torch.nn.Module, dataset: PngSegmentationSet, device: torch.device,
            batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Predicted (argmax) and true id maps, each uint8 (N, H, W), in dataset order."""
    model.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    preds, trues = [], []
    for image, label in loader:
        logits = model(image.to(device))
        preds.append(logits.argmax(dim=1).to(torch.uint8).cpu())
        trues.append(label[:, 0].to(torch.uint8))
    return torch.cat(preds).numpy(), torch.cat(trues).numpy()


def _fingerprint(seg: Mapping, train: PngSegmentationSet, val: PngSegmentationSet) -> str:
    """What a resumed run must share with the interrupted one (everything but the epoch count)."""
    keys = {k: v for k, v in seg.items() if k not in ("epochs", "sources")}
    ids = [list(train.table["sample_id"]), list(val.table["sample_id"])]
    return hashlib.sha256(json.dumps([keys, ids], sort_keys=True).encode()).hexdigest()


def fit(train_set: PngSegmentationSet, val_set: PngSegmentationSet, structures: Mapping[str, Mapping],
        seg: Mapping, device: torch.device, out_model: str | Path, meta: Mapping | None = None,
        checkpoint_dir: str | Path | None = None, progress: bool = True) -> dict:
    """Train (module docstring); write the best model to ``out_model``; return the history.

    ``meta`` is stored in ``out_model`` beside the weights (e.g. the resolved config).
    With ``checkpoint_dir`` the state after every epoch goes to ``last.pt`` there, and a run
    with the same settings and sets resumes from it.
    """
    n_classes = train_set.num_classes
    torch.manual_seed(int(seg["seed"]))
    model = build_unet(n_classes, seg).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=float(seg["lr"]), betas=(0.9, 0.999))
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    fingerprint = _fingerprint(seg, train_set, val_set)
    state = {"epoch": 0, "best_epoch": 0, "best_val_dice": -1.0, "history": [],
             "best_state_dict": None}
    last = Path(checkpoint_dir) / "last.pt" if checkpoint_dir else None
    if last is not None and last.is_file():
        ckpt = torch.load(last, map_location=device, weights_only=True)
        if ckpt.get("fingerprint") == fingerprint and ckpt["epoch"] <= int(seg["epochs"]):
            model.load_state_dict(ckpt["state_dict"])
            optimizer.load_state_dict(ckpt["optimizer"])
            state = {k: ckpt[k] for k in state}
            log.info("resumed from %s at epoch %d", last, state["epoch"])
        else:
            log.info("ignoring %s: different settings or sets", last)

    epochs = int(seg["epochs"])
    bar = tqdm(range(state["epoch"], epochs), initial=state["epoch"], total=epochs,
               desc="segmenter", unit="epoch", disable=not progress)
    for epoch in bar:
        model.train()
        gen = torch.Generator().manual_seed(int(seg["seed"]) * 100003 + epoch)
        order = torch.randperm(len(train_set), generator=gen).tolist()
        loader = torch.utils.data.DataLoader(train_set, batch_size=int(seg["batch_size"]), sampler=order)
        total, count = 0.0, 0
        for image, label in loader:
            image, label = image.to(device), label.to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(image), label)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite segmentation loss at epoch {epoch + 1}")
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * image.shape[0]
            count += image.shape[0]
        pred, true = predict(model, val_set, device, int(seg["batch_size"]))
        dice = dice_per_structure(pred, true, structures)
        val = mean_dice(dice)
        row = {"epoch": epoch + 1, "loss": total / max(count, 1), "val_dice": val}
        state["history"].append(row)
        if val > state["best_val_dice"]:
            state.update(best_epoch=epoch + 1, best_val_dice=val,
                         best_state_dict={k: v.detach().clone() for k, v in model.state_dict().items()})
        state["epoch"] = epoch + 1
        log.info("epoch %d loss %.4f val Dice %.4f (best %.4f at %d)", epoch + 1, row["loss"], val,
                 state["best_val_dice"], state["best_epoch"])
        bar.set_postfix(loss=f"{row['loss']:.3f}", val_dice=f"{val:.3f}")
        if last is not None:
            _save({**state, "state_dict": model.state_dict(), "optimizer": optimizer.state_dict(),
                   "fingerprint": fingerprint}, last)

    network = {k: seg[k] for k in ("channels", "strides", "num_res_units")}
    _save({"state_dict": state["best_state_dict"], "num_classes": n_classes, "network": network,
           "structures": dict(structures), "epoch": state["best_epoch"],
           "val_dice": state["best_val_dice"], "meta": dict(meta or {})}, Path(out_model))
    return {"best_epoch": state["best_epoch"], "best_val_dice": state["best_val_dice"],
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
        "train": {"best_epoch": result["best_epoch"], "best_val_dice": result["best_val_dice"],
                  "epochs": int(seg["epochs"]), "history": result["history"]},
        "per_image": {"sample_id": list(test["sample_id"]),
                      **{k: [float(x) for x in dice[:, j]] for j, k in enumerate(keys)}},
        "segment": dict(seg),
        "device": str(device),
    }
    write_predictions(predictions, list(test["sample_id"]), pred)
    write_segment_record(record, metrics)
    return metrics
