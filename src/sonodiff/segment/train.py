"""Train the downstream UNet on one source for every seed and test each seed's best model.

Echo from noise, section 2.2: a 2D UNet (MONAI's ``UNet``; channels, strides and
``num_res_units`` from config ``segment``, the activation from the recipe) trained with Adam
(betas 0.9/0.999) at the rate lr(s) of the recipe (:mod:`sonodiff.segment.recipes`) on the recipe's
loss, over the recipe's classes (:class:`sonodiff.segment.data.LabelClasses`):

    dice_ce:  L = L_Dice(softmax(z), onehot(y)) + L_CE(z, y)      (MONAI ``DiceCELoss``)
    ce:       L = L_CE(z, y) = -(1/|pixels|) sum_p log softmax(z_p)[y_p]   (``torch.nn.CrossEntropyLoss``)

Only structures are scored. Every source trains the same number of optimiser steps,
``segment.steps`` (a synthetic source with five times the images gets no more updates than the real
one); every ``segment.val_every`` steps (and at the last) the validation set is segmented
(unaugmented) and the model with the best validation mean Dice (mean over scored structures,
:func:`sonodiff.segment.evaluate.mean_dice`) is kept.

Seeds: one job trains each seed k of ``segment.seeds`` in turn. For seed k, weights are initialised
under ``torch.manual_seed(k)``; with N training images and batch size B, step s reads positions
p = s B + j (j < B), position p being image ``perm_e[p mod N]`` of pass ``e = p div N``, ``perm_e`` a
permutation drawn from ``derive_seed(k, "segment", e)``; augmentation (recipes with it) draws from
``derive_seed(k, "segment-augment", s)`` (:mod:`sonodiff.segment.augment`). A step is thus a pure
function of (k, s). Each seed has its own checkpoint folder, ``seed_<k>/`` in the checkpoints
folder beside the model (:data:`sonodiff.contracts.layout.CHECKPOINTS`), whose ``last.pt`` is
written at every validation: a job killed during seed k resumes seed k from it exactly as an
uninterrupted run continues, and a finished seed resumes at its last step (no training).
Checkpoints are written atomically and read with ``weights_only=True``; one that does not belong
to the run (unreadable, entries missing, another run's settings, seed or sets, a step that is no
validation step of this run) is moved to ``stale/`` beside it with a warning naming the first
differing key (:func:`identity`). A job first removes the temporaries of writes killed in its own
folders (:func:`sonodiff.io.sweep_stale_temporaries`).

The job's ``model.pt`` holds every seed's best weights; ``predictions.npz`` holds the first seed's
test predictions (the contour figure shows one model); the record keeps per-seed results and the
per-image Dice of every seed (:func:`segmentation_record`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from sonodiff.contracts import layout
from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.contracts.segmentation import write_predictions, write_segment_record
from sonodiff.config import first_difference
from sonodiff.device import resolve_device
from sonodiff.io import atomic_path, sweep_stale_temporaries
from sonodiff.seeds import derive_seed
from sonodiff.segment.augment import augment_batch, echo_from_noise_transform
from sonodiff.segment.data import LabelClasses, PngSegmentationSet, build_sets, label_classes
from sonodiff.segment.evaluate import (dice_per_structure, mean_dice, seed_mean_dice, structure_definitions,
                                       summarize_seeds)
from sonodiff.segment.recipes import Recipe, get_recipe
from sonodiff.segment.sources import check_network

log = logging.getLogger(__name__)

#: Keys of ``segment`` that do not change one seed's trajectory up to a given step (``steps`` does
#: under a recipe whose rate depends on it: :func:`fingerprint`).
NON_TRAJECTORY_KEYS = ("steps", "sources", "seeds")
#: Keys of ``segment`` that shape the network (stored in ``model.pt`` with the activation).
NETWORK_KEYS = ("channels", "strides", "num_res_units")


def network_spec(seg: Mapping, recipe: Recipe) -> dict:
    """The UNet's shape (``NETWORK_KEYS`` of ``segment``) and the recipe's activation (``act``)."""
    return {**{k: seg[k] for k in NETWORK_KEYS}, "act": recipe.activation}


def build_unet(n_classes: int, network: Mapping) -> torch.nn.Module:
    """MONAI ``UNet(spatial_dims=2, in_channels=1, out_channels=n_classes, ...)`` from :func:`network_spec`.

    MONAI is imported here, not at module level: ``import monai`` costs seconds (torchvision,
    ``torch._dynamo``) that only the jobs that build a network should pay.
    """
    from monai.networks.nets import UNet

    act = network["act"]
    return UNet(spatial_dims=2, in_channels=1, out_channels=int(n_classes), channels=list(network["channels"]),
                strides=list(network["strides"]), num_res_units=int(network["num_res_units"]),
                act=tuple(act) if isinstance(act, list) else act)


def dice_ce_loss() -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """MONAI's ``DiceCELoss(to_onehot_y=True, softmax=True)``: logits (B, C, H, W), ids (B, 1, H, W)."""
    from monai.losses import DiceCELoss

    return DiceCELoss(to_onehot_y=True, softmax=True)


def cross_entropy_loss() -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``torch.nn.CrossEntropyLoss`` (mean over pixels) of logits (B, C, H, W) and ids (B, 1, H, W)."""
    ce = torch.nn.CrossEntropyLoss()
    return lambda logits, labels: ce(logits, labels[:, 0])


#: Losses by the recipe's ``loss`` name.
LOSSES = {"dice_ce": dice_ce_loss, "ce": cross_entropy_loss}


def _save(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def save_segmenters(path: str | Path, fits: Sequence[Mapping], network: Mapping, classes: LabelClasses,
                    structures: Mapping, meta: Mapping | None = None) -> None:
    """Write ``model.pt``: the network, the class -> prepared id lookup, and per seed its best
    weights, step and validation Dice (``fits``: results of :func:`fit`)."""
    _save({"num_classes": classes.network_classes, "network": dict(network), "to_id": classes.to_id.tolist(),
           "structures": dict(structures), "meta": dict(meta or {}),
           "seeds": [{"seed": f["seed"], "step": f["best_step"], "val_dice": f["best_val_dice"],
                      "state_dict": f["state_dict"]} for f in fits]}, Path(path))


def load_segmenter(path: str | Path, seed: int | None = None,
                   device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """The best model of ``seed`` (default: the first) from ``model.pt``, in eval mode, and the
    file's dict with that seed's entry (``seed``, ``step``, ``val_dice``) merged in."""
    ckpt = torch.load(path, map_location=device, weights_only=True)
    entries = {e["seed"]: e for e in ckpt["seeds"]}
    entry = entries[ckpt["seeds"][0]["seed"] if seed is None else int(seed)]
    model = build_unet(ckpt["num_classes"], ckpt["network"]).to(device)
    model.load_state_dict(entry["state_dict"])
    model.eval()
    return model, {**{k: v for k, v in ckpt.items() if k != "seeds"}, **entry}


@lru_cache(maxsize=4)
def _pass_permutation(n: int, seed: int, index: int) -> np.ndarray:
    return np.random.default_rng(derive_seed(seed, "segment", index)).permutation(n)


def batch_indices(n: int, step: int, batch_size: int, seed: int) -> np.ndarray:
    """Training-image indices of ``step``: ``perm_{p div n}[p mod n]`` for p = step B + j (module docstring)."""
    positions = range(step * batch_size, (step + 1) * batch_size)
    return np.array([_pass_permutation(n, seed, p // n)[p % n] for p in positions], dtype=np.int64)


def _tensors(arrays: tuple[np.ndarray, np.ndarray], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    return tuple(torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in arrays)  # type: ignore[return-value]


@torch.no_grad()
def predict(model: torch.nn.Module, dataset: PngSegmentationSet, device: torch.device, batch_size: int,
            to_id: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Predicted and true prepared id maps, each uint8 (N, H, W), in dataset order: the argmax class
    mapped to its prepared id by ``to_id`` (:class:`LabelClasses`; None: class = id)."""
    model.eval()
    preds, trues = [], []
    for start in range(0, len(dataset), batch_size):
        image, label = _tensors(dataset.batch(range(start, min(start + batch_size, len(dataset)))), device)
        preds.append(model(image).argmax(dim=1).cpu().numpy())
        trues.append(label[:, 0].to(torch.uint8).cpu().numpy())
    pred = np.concatenate(preds)
    return (pred if to_id is None else np.asarray(to_id)[pred]).astype(np.uint8), np.concatenate(trues)


def validation_steps(steps: int, val_every: int) -> list[int]:
    """Steps after which the validation set is segmented: every ``val_every`` and the last."""
    return sorted(set(range(val_every, steps + 1, val_every)) | {steps})


def _identity_parts(seg: Mapping, seed: int, recipe: Recipe, train: PngSegmentationSet,
                    val: PngSegmentationSet) -> tuple[dict, int, list[list[str]]]:
    keys = {k: v for k, v in seg.items() if k not in NON_TRAJECTORY_KEYS}
    if recipe.depends_on_steps:
        keys["steps"] = seg["steps"]
    return keys, int(seed), [list(train.table["sample_id"]), list(val.table["sample_id"])]


def fingerprint(seg: Mapping, seed: int, recipe: Recipe, train: PngSegmentationSet,
                val: PngSegmentationSet) -> str:
    """What a resumed seed must share with the interrupted one: the settings but
    ``NON_TRAJECTORY_KEYS`` (``steps`` kept when the recipe's rate depends on it), the seed, the sets."""
    return hashlib.sha256(json.dumps(list(_identity_parts(seg, seed, recipe, train, val)),
                                     sort_keys=True).encode()).hexdigest()


def identity(seg: Mapping, seed: int, recipe: Recipe, train: PngSegmentationSet,
             val: PngSegmentationSet) -> dict:
    """What :func:`fingerprint` hashes, one flat key each (``segment.<key>``, ``seed``, the sample
    ids of the training and validation sets), as JSON values: stored beside the fingerprint so
    that a checkpoint set aside is reported with the first key that differs."""
    keys, seed, (train_ids, val_ids) = _identity_parts(seg, seed, recipe, train, val)
    return json.loads(json.dumps({**{f"segment.{k}": keys[k] for k in sorted(keys)}, "seed": seed,
                                  "train sample ids": train_ids, "val sample ids": val_ids}))


#: Entries of a seed's ``last.pt`` (with the resumable ``state`` of :func:`fit`).
CHECKPOINT_KEYS = ("step", "best_step", "best_val_dice", "history", "best_state_dict", "state_dict", "optimizer",
                   "fingerprint")


def _first_difference(want: Mapping, got: Any) -> str:
    """The first key of ``want`` (then of ``got``) whose value differs, with both values."""
    if not isinstance(got, Mapping):
        return "the checkpoint records no identity"
    return first_difference(want, got) or "the same identity under another fingerprint"


def _rejection(ckpt: Any, key: str, ident: Mapping, checks: list[int]) -> str | None:
    """Why a loaded ``last.pt`` cannot be resumed by this run, or None."""
    if not isinstance(ckpt, Mapping):
        return f"a {type(ckpt).__name__}, not a checkpoint"
    missing = [k for k in CHECKPOINT_KEYS if k not in ckpt]
    if missing:
        return f"missing entries {missing}"
    if ckpt["fingerprint"] != key:
        return f"made by another run ({_first_difference(ident, ckpt.get('identity'))})"
    if ckpt["step"] not in checks:
        return f"its step {ckpt['step']} is no validation step of this run ({checks})"
    return None


def _set_aside(last: Path, reason: str) -> None:
    """Move ``last`` into ``stale/`` beside it (replacing the one set aside before), with a warning."""
    stale = last.parent / "stale"
    shutil.rmtree(stale, ignore_errors=True)
    stale.mkdir(parents=True)
    os.replace(last, stale / last.name)
    log.warning("set checkpoint %s aside to %s: %s", last, stale, reason)


def _resume(last: Path | None, key: str, ident: Mapping, checks: list[int], model: torch.nn.Module,
            optimizer: torch.optim.Optimizer, state: dict, device: torch.device) -> dict:
    """The state of ``last`` loaded into ``model`` and ``optimizer`` when it belongs to this run
    (same fingerprint, its step a validation step of this run); else ``state`` unchanged, and
    ``last`` set aside (:func:`_set_aside`)."""
    if last is None or not last.is_file():
        return state
    try:
        ckpt = torch.load(last, map_location=device, weights_only=True)
    except Exception as err:  # truncated zip, unpickling error
        _set_aside(last, f"unreadable ({' '.join(str(err).split())[:200]})")
        return state
    reason = _rejection(ckpt, key, ident, checks)
    if reason:
        _set_aside(last, reason)
        return state
    model.load_state_dict(ckpt["state_dict"])
    optimizer.load_state_dict(ckpt["optimizer"])
    log.info("resumed from %s at step %d", last, ckpt["step"])
    return {k: ckpt[k] for k in state}


class _Batches:
    """Training batches of one seed: data order, the recipe's augmentation, ids -> classes."""

    def __init__(self, train_set: PngSegmentationSet, seed: int, batch_size: int, recipe: Recipe,
                 classes: LabelClasses, device: torch.device):
        self.train_set, self.seed, self.batch_size, self.device = train_set, seed, batch_size, device
        self.to_class = classes.to_class
        self.transform = echo_from_noise_transform(train_set.img_size) if recipe.augment else None

    def __call__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = self.train_set.batch(batch_indices(len(self.train_set), step, self.batch_size, self.seed))
        labels = self.to_class[labels]
        if self.transform is not None:
            images, labels = augment_batch(self.transform, images, labels, self.seed, step)
        return _tensors((images, labels), self.device)


def fit(train_set: PngSegmentationSet, val_set: PngSegmentationSet, structures: Mapping[str, Mapping],
        seg: Mapping, seed: int, device: torch.device, classes: LabelClasses | None = None,
        checkpoint_dir: str | Path | None = None, progress: bool = True) -> dict:
    """Train one seed for ``segment.steps`` steps with ``segment.recipe`` (module docstring) over
    ``classes`` (None: every prepared id is a class).

    Returns ``{"seed", "best_step", "best_val_dice", "history", "state_dict"}`` (the best weights;
    history one row per validation: ``step``, ``lr``, ``loss``: mean training loss since the
    previous row, ``val_dice``). With ``checkpoint_dir`` the state after every validation goes to
    ``last.pt`` there, and a run of this seed with the same settings and sets resumes from it
    (the temporaries of writes killed there are removed first).
    """
    recipe = get_recipe(seg["recipe"])
    classes = classes or label_classes(train_set.num_classes, None, True)
    steps, batch, lr = int(seg["steps"]), int(seg["batch_size"]), float(seg["lr"])
    checks = validation_steps(steps, int(seg["val_every"]))
    torch.manual_seed(int(seed))
    model = build_unet(classes.network_classes, network_spec(seg, recipe)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.learning_rate(lr, 0, steps), betas=(0.9, 0.999))
    ident = identity(seg, seed, recipe, train_set, val_set)
    key = fingerprint(seg, seed, recipe, train_set, val_set)
    last = Path(checkpoint_dir) / "last.pt" if checkpoint_dir else None
    if checkpoint_dir:
        sweep_stale_temporaries(checkpoint_dir)
    state = _resume(last, key, ident, checks, model, optimizer,
                    {"step": 0, "best_step": 0, "best_val_dice": -1.0, "history": [], "best_state_dict": None},
                    device)
    batches, loss_fn = _Batches(train_set, int(seed), batch, recipe, classes, device), LOSSES[recipe.loss]()
    bar = tqdm(total=steps, initial=state["step"], desc=f"segmenter seed {seed}", unit="step", disable=not progress)
    total, count = 0.0, 0
    for step in range(state["step"], steps):
        model.train()
        image, label = batches(step)
        for group in optimizer.param_groups:
            group["lr"] = recipe.learning_rate(lr, step, steps)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(image), label)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite segmentation loss at step {step + 1} (seed {seed})")
        loss.backward()
        optimizer.step()
        total, count = total + float(loss.detach()), count + 1
        bar.update(1)
        if step + 1 not in checks:
            continue
        pred, true = predict(model, val_set, device, batch, classes.to_id)
        val = mean_dice(dice_per_structure(pred, true, structures))
        row = {"step": step + 1, "lr": optimizer.param_groups[0]["lr"], "loss": total / max(count, 1), "val_dice": val}
        total, count = 0.0, 0
        state["history"].append(row)
        if val > state["best_val_dice"]:
            state.update(best_step=step + 1, best_val_dice=val,
                         best_state_dict={k: v.detach().clone() for k, v in model.state_dict().items()})
        state["step"] = step + 1
        log.info("seed %d step %d loss %.4f val Dice %.4f (best %.4f at %d)", seed, step + 1, row["loss"], val,
                 state["best_val_dice"], state["best_step"])
        bar.set_postfix(loss=f"{row['loss']:.3f}", val_dice=f"{val:.3f}")
        if last is not None:
            _save({**state, "state_dict": model.state_dict(), "optimizer": optimizer.state_dict(),
                   "fingerprint": key, "identity": ident}, last)
    bar.close()
    return {"seed": int(seed), "best_step": state["best_step"], "best_val_dice": state["best_val_dice"],
            "history": state["history"], "state_dict": state["best_state_dict"]}


def evaluate_seed(result: Mapping, test_set: PngSegmentationSet, structures: Mapping[str, Mapping],
              network: Mapping, classes: LabelClasses, device: torch.device,
              batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Predictions (N, H, W) of one seed's best model on the test set and their Dice (N, S)."""
    model = build_unet(classes.network_classes, network).to(device)
    model.load_state_dict(result["state_dict"])
    pred, true = predict(model, test_set, device, batch_size, classes.to_id)
    return pred, dice_per_structure(pred, true, structures)


def _columns(dice: np.ndarray, keys: Sequence[str]) -> dict[str, list[float]]:
    """Dice (N, S) as one list per structure key."""
    return {k: [float(x) for x in dice[:, j]] for j, k in enumerate(keys)}


def segmentation_record(info: Mapping, source: str, structures: Mapping, sets: Mapping, fits: Sequence[Mapping],
                        dice: np.ndarray, cfg: Mapping, device: torch.device) -> dict:
    """The segmentation record of one source (:mod:`sonodiff.contracts.segmentation`).

    ``dice`` is (K, N, S): seed, test image, structure. ``dice`` of the record is
    :func:`~sonodiff.segment.evaluate.summarize_seeds`; ``per_image`` holds the test images'
    ``sample_id`` and ``patient_id``, per structure the Dice averaged over seeds and, in ``by_seed``,
    every seed's; ``per_seed`` each seed's training result; ``bootstrap`` the settings of the table's
    patient-level intervals (``metrics.bootstrap`` resamples, the master ``seed``).
    """
    seg, keys, test = cfg["segment"], list(structures), sets["test"]
    return {
        "dataset": cfg.get("dataset"),
        "format": info.get("format"),
        "source": source,
        "recipe": seg["recipe"],
        "seeds": [f["seed"] for f in fits],
        "structures": dict(structures),
        "dice": summarize_seeds(dice, keys),
        "bootstrap": {"level": 0.95, "seed": int(cfg.get("seed", 0)), "unit": "patient_id"},  # resamples: the table's
        "counts": {"train": len(sets["train"]), "val": len(sets["val"]), "test": len(test),
                   "test_patients": int(test["patient_id"].nunique()), "seeds": len(fits)},
        "train": {"steps": int(seg["steps"]), "val_every": int(seg["val_every"])},
        "per_seed": [{k: f[k] for k in ("seed", "best_step", "best_val_dice", "history")} for f in fits],
        "per_image": {"sample_id": list(test["sample_id"]), "patient_id": list(test["patient_id"]),
                      **_columns(seed_mean_dice(dice), keys),
                      "by_seed": [{"seed": f["seed"], **_columns(d, keys)} for f, d in zip(fits, dice)]},
        "segment": dict(seg),
        "device": str(device),
    }


def run_segmentation(dataset: PreparedDataset, source: str, samples_manifests: Mapping[str, str | Path],
                     cfg: Mapping, record: str | Path, model: str | Path, predictions: str | Path,
                     threads: int | None = None, progress: bool = True) -> dict:
    """One ``train_segmenter`` job: build the sets of ``source``, train every seed of
    ``segment.seeds`` in turn, test each seed's best model on the real test images.

    ``cfg`` is the resolved job config (keys ``segment``, ``metrics.bootstrap``, ``seed``,
    ``device``, ``dataset``...). Writes ``model`` (every seed's best weights; checkpoints per seed
    in the checkpoints folder beside it), ``predictions`` (``sample_id`` and the first seed's
    predicted id maps of the test images) and the segmentation ``record``
    (:func:`segmentation_record`), through :mod:`sonodiff.contracts.segmentation`. The temporaries
    of writes killed in the folders of these files and in the checkpoints folder are removed first.
    """
    if threads:
        torch.set_num_threads(int(threads))
    checkpoints = Path(model).parent / layout.CHECKPOINTS
    for folder in sorted({Path(p).parent for p in (record, model, predictions)} | {checkpoints}):
        sweep_stale_temporaries(folder)
    seg = cfg["segment"]
    recipe = get_recipe(seg["recipe"])
    check_network(dataset.img_size, seg)
    structures = structure_definitions(dataset.info, dataset.info_path)
    classes = label_classes(int(dataset.num_classes), dataset.sector_id, recipe.sector_class)
    sets = build_sets(dataset.manifest, source, samples_manifests)
    data = {k: PngSegmentationSet(v, int(dataset.num_classes), dataset.img_size) for k, v in sets.items()}
    device = resolve_device(cfg.get("device", "auto"))
    log.info("source %s, recipe %s: %d train, %d val, %d test images on %s, %d classes, seeds %s", source,
             recipe.name, *(len(data[k]) for k in ("train", "val", "test")), device, classes.network_classes,
             list(seg["seeds"]))

    network = network_spec(seg, recipe)
    fits, preds, dice = [], [], []
    for seed in seg["seeds"]:
        result = fit(data["train"], data["val"], structures, seg, int(seed), device, classes,
                     checkpoint_dir=checkpoints / f"seed_{int(seed)}", progress=progress)
        pred, d = evaluate_seed(result, data["test"], structures, network, classes, device, int(seg["batch_size"]))
        fits.append(result)
        preds.append(pred)
        dice.append(d)
    save_segmenters(model, fits, network, classes, structures,
                    meta={"config": dict(cfg), "source": source})
    metrics = segmentation_record(dataset.info, source, structures, sets, fits, np.stack(dice), cfg, device)
    write_predictions(predictions, list(sets["test"]["sample_id"]), preds[0])
    write_segment_record(record, metrics)
    return metrics
