"""Train the classifier of one source for every seed; score the test sets (Freiche et al. 2025).

Network: a torchvision ResNet from scratch (``classify.arch``: ``resnet18``, ``resnet34`` or
``resnet50``, the paper's; ``weights=None, num_classes=K``) for grey images: ``conv1`` is
replaced by a 1-channel convolution, 7x7 stride 2 as torchvision's for images of 64 px and more;
for smaller images (the demo's 32 px) a 3x3 stride-1 ``conv1`` (as the CIFAR variant of He et
al. 2016) before torchvision's max-pool, which keeps a 2 x 2 map before the pooling of a 32 px
input instead of 1 x 1 (without the max-pool too, 4 x 4, at 2.3x the cost per step); below
``TINY_IMAGE`` px (the tests') the max-pool goes too. The new convolution is initialised as torchvision initialises its own (Kaiming normal,
fan-out). Pixels u in [0, 255] enter as x = u / 127.5 - 1; an image of another size than the
prepared dataset's ``img_size`` (an external set) is resized to it (bilinear, antialiased).

Training (seed s of ``classify.seeds``): weights initialised under
``torch.manual_seed(derive_seed(s, "classify-init"))``; ``classify.steps`` AdamW steps
(``lr``, ``weight_decay``, no schedule) on the cross-entropy of batches of ``batch_size`` images.
Step t draws its images with replacement, image i with probability proportional to
1 / count(class of i) (class-balanced: the synthetic sets are balanced, BUSI is not), from
``generator(s, "classify-batch", t)``, and flips each horizontally with probability 1/2 from
``generator(s, "classify-flip", t)`` (:mod:`sonodiff.seeds`): a step is a pure function of (s, t),
whatever the source's size (every source trains the same number of steps). The model after the
last step is the seed's model (no validation-based selection; the val split is not used), with
its BatchNorm statistics recomputed over the training images (:func:`recalibrate_batchnorm`, the
"precise BN" of Wu & Johnson 2021): after a short run the moving averages lag the weights and
scores in eval mode are off (a 20-step test run ranked separable classes at AUC 0.74 before, 1.0
after).

Scoring: each seed's softmax probabilities on every test set; the record and the scores file
(:mod:`sonodiff.contracts.classification`) hold the seeds' and their mean, and the AUC figures of
:mod:`sonodiff.classify.evaluate`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from sonodiff.classify.data import ClassSet, class_order, parse_source, test_sets, training_set
from sonodiff.classify.evaluate import auc_figures
from sonodiff.contracts.classification import write_classification_record, write_scores
from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.device import resolve_device
from sonodiff.errors import InputError
from sonodiff.io import sweep_stale_temporaries, to_model_range
from sonodiff.seeds import derive_seed, generator

log = logging.getLogger(__name__)

ARCHS = ("resnet18", "resnet34", "resnet50")
#: Images smaller than this get the 3x3 stride-1 ``conv1``.
SMALL_IMAGE = 64
#: Images smaller than this also lose the max-pool (a 1 x 1 map would reach layer4 before the pooling).
TINY_IMAGE = 32
#: Steps per history row: the mean training loss over about a tenth of the run.
HISTORY_ROWS = 10


def build_classifier(arch: str, num_classes: int, img_size: int) -> torch.nn.Module:
    """A grey-input torchvision ResNet from scratch (module docstring)."""
    import torchvision

    if arch not in ARCHS:
        raise InputError("config key classify.arch", f"{arch!r} is not one of {list(ARCHS)}")
    model = getattr(torchvision.models, arch)(weights=None, num_classes=int(num_classes))
    if img_size < SMALL_IMAGE:
        model.conv1 = torch.nn.Conv2d(1, 64, kernel_size=3, stride=1, padding=1, bias=False)
        if img_size < TINY_IMAGE:
            model.maxpool = torch.nn.Identity()
    else:
        model.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    torch.nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    return model


def to_input(images: np.ndarray, img_size: int, device: torch.device) -> torch.Tensor:
    """uint8 (B, H, W) -> float (B, 1, img_size, img_size) in [-1, 1]."""
    x = to_model_range(torch.from_numpy(np.ascontiguousarray(images))[:, None]).to(device)
    if x.shape[-2:] != (img_size, img_size):
        x = torch.nn.functional.interpolate(x, size=(img_size, img_size), mode="bilinear", antialias=True,
                                            align_corners=False)
    return x


def balanced_weights(labels: np.ndarray) -> torch.Tensor:
    """Sampling weight 1 / count(class of i) of each training image i."""
    counts = np.bincount(labels)
    return torch.from_numpy(1.0 / counts[labels]).double()


def batch(train: ClassSet, weights: torch.Tensor, step: int, batch_size: int, seed: int, img_size: int,
          device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Step ``step``'s inputs and class ids: class-balanced draws, random horizontal flips."""
    rows = torch.multinomial(weights, batch_size, replacement=True, generator=generator(seed, "classify-batch", step))
    flip = torch.rand(batch_size, generator=generator(seed, "classify-flip", step)) < 0.5
    x = to_input(train.images[rows.numpy()], img_size, device)
    x = torch.where(flip.to(device)[:, None, None, None], x.flip(-1), x)
    return x, torch.from_numpy(train.labels[rows.numpy()]).to(device)


def fit(train: ClassSet, num_classes: int, cls: Mapping, seed: int, img_size: int, device: torch.device,
        progress: bool = True) -> dict:
    """Train one seed (module docstring): ``{"seed", "state_dict", "history", "seconds"}``, history
    rows ``{"step", "loss"}`` (mean loss since the previous row)."""
    steps, size = int(cls["steps"]), int(cls["batch_size"])
    torch.manual_seed(derive_seed(int(seed), "classify-init"))
    model = build_classifier(cls["arch"], num_classes, img_size).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=float(cls["lr"]), weight_decay=float(cls["weight_decay"]),
                                  foreach=True)
    weights, loss_fn = balanced_weights(train.labels), torch.nn.CrossEntropyLoss()
    every = max(1, steps // HISTORY_ROWS)
    history, total, count, start = [], 0.0, 0, time.perf_counter()
    model.train()
    for step in tqdm(range(steps), desc=f"classifier seed {seed}", unit="step", disable=not progress):
        x, y = batch(train, weights, step, size, int(seed), img_size, device)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite classification loss at step {step + 1} (seed {seed})")
        loss.backward()
        optimizer.step()
        total, count = total + float(loss.detach()), count + 1
        if (step + 1) % every == 0 or step + 1 == steps:
            history.append({"step": step + 1, "loss": total / count})
            total, count = 0.0, 0
    recalibrate_batchnorm(model, train.images, img_size, device, 4 * size)
    seconds = time.perf_counter() - start
    log.info("seed %d: %d steps in %.1f s, last loss %.4f", seed, steps, seconds, history[-1]["loss"] if history else 0)
    return {"seed": int(seed), "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "history": history, "seconds": seconds}


@torch.no_grad()
def recalibrate_batchnorm(model: torch.nn.Module, images: np.ndarray, img_size: int, device: torch.device,
                          batch_size: int) -> None:
    """Replace every BatchNorm layer's running mean and variance by their average over the
    training images (in order, unflipped, batches of ``batch_size``): the statistics of the final
    weights rather than a moving average over the weights of the last steps."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None   # cumulative average over the batches below
    model.train()
    for i in range(0, len(images), batch_size):
        model(to_input(images[i:i + batch_size], img_size, device))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.eval()


@torch.no_grad()
def predict_proba(model: torch.nn.Module, images: np.ndarray, img_size: int, device: torch.device,
                  batch_size: int) -> np.ndarray:
    """Softmax probabilities (N, K) float64 of uint8 images (N, H, W), in eval mode."""
    model.eval()
    out = [torch.softmax(model(to_input(images[i:i + batch_size], img_size, device)).double(), dim=1).cpu().numpy()
           for i in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, 0))


def score_seeds(fits: Sequence[Mapping], sets: Mapping[str, ClassSet], cls: Mapping, num_classes: int,
                img_size: int, device: torch.device) -> dict[str, np.ndarray]:
    """Per test set the probabilities of every seed, (S, N, K)."""
    out: dict[str, list[np.ndarray]] = {name: [] for name in sets}
    for f in fits:
        model = build_classifier(cls["arch"], num_classes, img_size).to(device)
        model.load_state_dict(f["state_dict"])
        for name, test in sets.items():
            out[name].append(predict_proba(model, test.images, img_size, device, 4 * int(cls["batch_size"])))
    return {name: np.stack(v) for name, v in out.items()}


def classification_record(dataset: PreparedDataset, source: str, classes: Sequence[str], train: ClassSet,
                          sets: Mapping[str, ClassSet], names: Mapping[str, str], by_seed: Mapping[str, np.ndarray],
                          fits: Sequence[Mapping], cfg: Mapping, fraction: float | None,
                          device: torch.device) -> dict:
    """The record of :mod:`sonodiff.contracts.classification` (``names``: test set -> dataset name)."""
    cls, src = cfg["classify"], parse_source(source)
    resamples, seed = int(cfg.get("metrics", {}).get("bootstrap", 1000)), int(cfg.get("seed", 0))
    n_real = sum(o == "real" for o in train.origin)
    tests = {}
    for j, (name, test) in enumerate(sets.items()):
        present = sorted({classes[y] for y in test.labels})
        tests[name] = {"dataset": names[name], "n_images": len(test), "n_patients": len(set(test.patient_id)),
                       "classes_present": present,
                       "per_class": {c: n for c, n in test.class_counts(classes).items() if n},
                       **auc_figures(by_seed[name], test.labels, test.patient_id, resamples, seed + 2 * j)}
    return {
        "dataset": cfg.get("dataset") or dataset.info.get("name"), "format": dataset.info.get("format"),
        "source": source, "kind": src.kind, "variant": src.variant,
        "generator_fraction": None if fraction is None or not src.synthetic else float(fraction),
        "classes": list(classes), "arch": cls["arch"], "seeds": [f["seed"] for f in fits],
        "train": {"n_images": len(train), "n_real": n_real, "n_synthetic": len(train) - n_real,
                  "per_class": train.class_counts(classes), "img_size": dataset.img_size,
                  **{k: cls[k] for k in ("steps", "batch_size", "lr", "weight_decay")},
                  "per_seed": [{k: f[k] for k in ("seed", "seconds", "history")} for f in fits]},
        "bootstrap": {"resamples": resamples, "seed": seed, "level": 0.95, "unit": "patient_id"},
        "test_sets": tests, "classify": dict(cls), "device": str(device),
    }


def run_classification(dataset: PreparedDataset, source: str, samples: Sequence[str | Path], cfg: Mapping,
                       record: str | Path, scores: str | Path, external: PreparedDataset | None = None,
                       fraction: float | None = None, threads: int | None = None, progress: bool = True) -> dict:
    """One ``train_classifier`` job: build the training set of ``source`` from the prepared
    ``dataset`` and the sample manifests ``samples``, train every seed of ``classify.seeds``,
    score the real test split and ``external`` (every row), write the ``scores`` file and the
    ``record``. ``cfg`` is the resolved job config (``classify``, ``metrics.bootstrap``, ``seed``,
    ``device``, ``dataset``); ``fraction`` is the fraction of the train split the synthetic
    source's generator was trained on (recorded; None: all of it)."""
    if threads:
        torch.set_num_threads(int(threads))
    for path in {Path(record).parent, Path(scores).parent}:
        path.mkdir(parents=True, exist_ok=True)
        sweep_stale_temporaries(path)
    cls, device = cfg["classify"], resolve_device(cfg.get("device", "cpu"))
    classes = class_order(dataset)
    train = training_set(dataset, source, list(samples), classes)
    missing = [c for c, n in train.class_counts(classes).items() if n == 0]
    if missing:
        log.warning("source %s has no training image of classes %s", source, missing)
    sets = test_sets(dataset, classes, external)
    names = {"test": cfg.get("dataset") or dataset.info.get("name"),
             **({"external": external.info.get("name", external.folder.name)} if external is not None else {})}
    img_size = dataset.img_size
    log.info("source %s: %d training images (%s), classes %s, test sets %s", source, len(train),
             train.class_counts(classes), classes, {k: len(v) for k, v in sets.items()})
    fits = [fit(train, len(classes), cls, int(s), img_size, device, progress) for s in cls["seeds"]]
    by_seed = score_seeds(fits, sets, cls, len(classes), img_size, device)
    write_scores(scores, list(classes), {
        name: {"scores": by_seed[name].mean(axis=0), "scores_by_seed": by_seed[name], "labels": test.labels,
               "sample_id": test.sample_id, "patient_id": test.patient_id} for name, test in sets.items()})
    out = classification_record(dataset, source, classes, train, sets, names, by_seed, fits, cfg, fraction, device)
    write_classification_record(record, out)
    return out
