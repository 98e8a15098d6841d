"""Mask fidelity of a mask-conditioned (ControlNet) sample set: does the image show the mask?

A latent ControlNet model (Freiche et al. 2025) generates image x_i from a prompt and a
conditioning label map T_i (``label`` column of the sample set, :mod:`sonodiff.contracts.samples`).
The paper shows pictures only; here the segmenter of the segment stage trained on *real* images
only (``segment/{d}/real/model.pt``, every seed k of it, :func:`sonodiff.segment.train.load_segmenter`)
segments each x_i (:func:`~sonodiff.segment.train.predict`), and its prediction P_ki is scored
against T_i per structure j (:func:`~sonodiff.segment.evaluate.dice_per_structure`):

    d_kij = 2 |P_kij ∩ T_ij| / (|P_kij| + |T_ij|),      d_ij = (1/K) sum_k d_kij,

the seed average as in the segmentation record. A high Dice says the generated image holds a
structure where the mask puts it, as far as a real-data segmenter can tell; it is bounded by that
segmenter's own Dice on real images, the ``reference`` (its record's test Dice, patients resampled
the same way).

Images whose map lacks structure j (BUSI's normal class: no lesion) have no Dice for j; they are
counted apart: e_ij = (1/K) sum_k [P_kij empty], and the summary is the mean of e_ij over those
images (the fraction where the segmenter, too, finds no lesion).

Summaries: mean_i d_ij over the images whose map holds j (and mean_i e_ij over the others), each
with the 95% bootstrap interval resampling patients (``patient_id``, every image of a drawn
patient; :func:`sonodiff.stats.figure`, ``metrics.bootstrap`` resamples, seed ``seed + j`` as the
segmentation table), overall and per ``class`` when the set has that column. Structures are the
segmenter's (its ``model.pt``); no mean over structures (BUSI has one).

Outputs: the record (:mod:`sonodiff.contracts.fidelity`) and one figure: rows of examples spread
over the Dice ranks (worst to best, then one image with an empty map when there is one):
conditioning map | generated image with the map's outline (solid) and the first seed's predicted
outline (dashed), Dice in the title; beside them the histogram of d_ij per structure with its mean
and the reference.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.contracts.fidelity import write_fidelity_record
from sonodiff.contracts.samples import read_samples
from sonodiff.contracts.segmentation import read_segment_record
from sonodiff.device import resolve_device
from sonodiff.errors import InputError
from sonodiff.io import sweep_stale_temporaries
from sonodiff.plotting import colorize_labels, save_figure, structure_color
from sonodiff.segment.data import SET_COLUMNS, PngSegmentationSet
from sonodiff.segment.evaluate import dice_per_structure, seed_mean_dice
from sonodiff.segment.figures import pick_images
from sonodiff.segment.train import load_segmenter, predict
from sonodiff.stats import LEVEL, figure, finite_mean, not_available

log = logging.getLogger(__name__)

#: Columns of a sample set that mask fidelity reads (``class`` and ``split`` are optional).
FIDELITY_COLUMNS = ("sample_id", "image", "label", "patient_id")
#: Source of the segmenter that judges fidelity (trained on real images only).
REAL_SOURCE = "real"


@dataclass(frozen=True)
class Segmented:
    """A sample set segmented by every seed of one segmenter.

    ``table``: the scored rows (``sample_id``, ``patient_id``, ``class``, ``label``...);
    ``images``, ``masks``, ``pred``: uint8 (N, H, W), the generated images, their conditioning
    maps and the first seed's predicted id maps; ``dice`` (K, N, S) d_kij (NaN where the map lacks
    the structure); ``empty`` (K, N, S) bool, seed k predicts none of structure j; ``present``
    (N, S) bool, the map holds structure j.
    """

    table: pd.DataFrame
    structures: dict
    seeds: list[int]
    source: str | None
    images: np.ndarray
    masks: np.ndarray
    pred: np.ndarray
    dice: np.ndarray
    empty: np.ndarray
    present: np.ndarray

    @property
    def mean_dice(self) -> np.ndarray:
        """d_ij (N, S), averaged over seeds."""
        return seed_mean_dice(self.dice)

    @property
    def empty_fraction(self) -> np.ndarray:
        """e_ij (N, S): fraction of seeds that predict none of structure j."""
        return self.empty.mean(axis=0)


def conditioned_rows(manifest: str | Path) -> tuple[pd.DataFrame, int]:
    """The rows of a sample set with a conditioning map (a set of :data:`SET_COLUMNS` plus
    ``class``, empty without the column) and how many rows had none (skipped)."""
    df = read_samples(manifest, required=FIDELITY_COLUMNS)
    has_map = df["label"].astype(str) != ""
    if not has_map.any():
        raise InputError(manifest, "no row has a conditioning label map (column label): not a mask-conditioned "
                                   "(ControlNet) sample set")
    rows = df[has_map].reset_index(drop=True)
    out = pd.DataFrame({"sample_id": rows["sample_id"], "patient_id": rows["patient_id"],
                        "split": rows["split"] if "split" in rows.columns else "",
                        "image": rows["image"], "label": rows["label"], "origin": "synthetic",
                        "class": rows["class"].astype(str) if "class" in rows.columns else ""})
    return out, int((~has_map).sum())


def _seed_ids(model: str | Path) -> list[int]:
    """The seeds whose best weights ``model.pt`` holds (in file order)."""
    try:
        ckpt = torch.load(model, map_location="cpu", weights_only=True)
        seeds = [int(e["seed"]) for e in ckpt["seeds"]]
    except (OSError, RuntimeError, KeyError, TypeError) as err:
        raise InputError(model, f"not a segmenter file ({' '.join(str(err).split())[:200]})") from err
    if not seeds:
        raise InputError(model, "the segmenter file holds no seed's weights")
    return seeds


def segment_samples(table: pd.DataFrame, model: str | Path, num_classes: int, img_size: int,
                    device: torch.device, batch_size: int) -> Segmented:
    """Segment every row of ``table`` (:func:`conditioned_rows`) with each seed of the segmenter
    ``model`` and score the predictions against the conditioning maps (module docstring)."""
    data = PngSegmentationSet(table.loc[:, list(SET_COLUMNS)], num_classes, img_size)
    images, masks = data.pixels
    seeds = _seed_ids(model)
    dice, empty, first, structures, source = [], [], None, {}, None
    for seed in seeds:
        net, ckpt = load_segmenter(model, seed, device)
        structures, source = dict(ckpt["structures"]), ckpt.get("meta", {}).get("source")
        pred, true = predict(net, data, device, batch_size, np.asarray(ckpt["to_id"]))
        dice.append(dice_per_structure(pred, true, structures))
        empty.append(np.stack([~np.isin(pred, spec["ids"]).any(axis=(1, 2)) for spec in structures.values()], axis=1))
        first = pred if first is None else first
    present = np.stack([np.isin(masks, spec["ids"]).any(axis=(1, 2)) for spec in structures.values()], axis=1)
    return Segmented(table.reset_index(drop=True), structures, seeds, source, images, masks, first,
                     np.stack(dice), np.stack(empty), present)


def _with_counts(fig: dict, patients: np.ndarray) -> dict:
    return {**fig, "n_images": int(len(patients)), "n_patients": int(len(set(patients)))}


def mean_figure(values: np.ndarray, patients: Sequence, resamples: int, seed: int, empty_reason: str) -> dict:
    """Figure record of mean(values) with its patient-resampling interval, ``n_images`` and
    ``n_patients``; n/a with ``empty_reason`` when there are no values."""
    values, patients = np.asarray(values, dtype=np.float64), np.asarray(list(patients), dtype=object)
    if values.size == 0:
        return _with_counts(not_available(empty_reason), patients)
    fig = figure(finite_mean, [values], resamples, seed, clusters=[list(patients)])
    return _with_counts(fig, patients)


def _summaries(seg: Segmented, rows: np.ndarray, resamples: int, seed: int) -> tuple[dict, dict]:
    """``dice`` and ``empty_masks`` (contract) over the images ``rows`` (bool (N,))."""
    patients = seg.table["patient_id"].to_numpy(dtype=object)
    d, e, s = seg.mean_dice, seg.empty_fraction, len(seg.structures)
    dice, empties = {}, {}
    for j, key in enumerate(seg.structures):
        scored = rows & seg.present[:, j]
        dice[key] = mean_figure(d[scored, j], patients[scored], resamples, seed + j,
                                "no conditioning map of these images holds this structure")
        blank = rows & ~seg.present[:, j]
        empties[key] = {"n_images": int(blank.sum()), "n_patients": int(len(set(patients[blank]))),
                        "empty_prediction": mean_figure(e[blank, j], patients[blank], resamples, seed + s + j,
                                                        "every conditioning map holds this structure")}
    return dice, empties


def reference_dice(record: str | Path, structures: Mapping, resamples: int, seed: int) -> dict:
    """The real segmenter's Dice on the real test split, from its segmentation record: per
    structure the record's mean over seeds (``record_mean``) and the figure record of the mean of
    its per-image Dice averaged over seeds, test patients resampled."""
    rec = read_segment_record(record)
    patients = list(rec["per_image"]["patient_id"])
    out = {}
    for j, key in enumerate(structures):
        if key not in rec["per_image"]:
            out[key] = not_available(f"the segmentation record {record} has no structure {key}")
            continue
        values = np.array([np.nan if v is None else v for v in rec["per_image"][key]], dtype=np.float64)
        ok = np.isfinite(values)
        fig = mean_figure(values[ok], np.asarray(patients, dtype=object)[ok], resamples, seed + j,
                          "the structure is in no test image")
        out[key] = {**fig, "record_mean": rec["dice"].get(key, {}).get("mean")}
    return {"source": rec["source"], "split": "test", "dice": out}


def _nullable(values: np.ndarray) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in values]


def fidelity_record(seg: Segmented, *, dataset: str | None, variant: str | None, resamples: int, seed: int,
                    skipped: int = 0, reference: Mapping | None = None) -> dict:
    """The mask-fidelity record (:mod:`sonodiff.contracts.fidelity`) of a segmented sample set."""
    table, keys = seg.table, list(seg.structures)
    everything = np.ones(len(table), dtype=bool)
    dice, empties = _summaries(seg, everything, resamples, seed)
    by_class = {}
    for name in sorted(c for c in set(table["class"]) if c):
        rows = (table["class"] == name).to_numpy()
        cd, ce = _summaries(seg, rows, resamples, seed)
        by_class[name] = {"n_images": int(rows.sum()), "dice": cd, "empty_masks": ce}
    d, e = seg.mean_dice, seg.empty_fraction
    per_image = {"sample_id": list(table["sample_id"]), "patient_id": list(table["patient_id"]),
                 "class": list(table["class"]), "label": list(table["label"])}
    for j, key in enumerate(keys):
        per_image[key] = _nullable(d[:, j])
        per_image[f"{key}_empty_prediction"] = [float(v) for v in e[:, j]]
    per_image["by_seed"] = [{"seed": s, **{k: _nullable(seg.dice[i, :, j]) for j, k in enumerate(keys)}}
                            for i, s in enumerate(seg.seeds)]
    return {
        "dataset": dataset,
        "variant": variant,
        "segmenter": {"source": seg.source, "seeds": list(seg.seeds)},
        "structures": seg.structures,
        "bootstrap": {"resamples": int(resamples), "seed": int(seed), "level": LEVEL, "unit": "patient_id"},
        "counts": {"images": len(table), "patients": int(table["patient_id"].nunique()),
                   "seeds": len(seg.seeds), "skipped": int(skipped)},
        "dice": dice,
        "empty_masks": empties,
        "by_class": by_class,
        "reference": None if reference is None else dict(reference),
        "per_image": per_image,
    }


# ----------------------------------------------------------------------------- figure

def example_rows(seg: Segmented, n: int) -> list[int]:
    """Up to ``n`` images to show: spread over the ranks of the mean Dice over structures (worst
    first), then one whose map holds no structure, when there is one (only such images: ``n``)."""
    scored = np.flatnonzero(seg.present.any(axis=1))
    blank = np.flatnonzero(~seg.present.any(axis=1))
    n_blank = min(len(blank), 1 if scored.size else n)
    ranks = np.argsort(finite_mean(seg.mean_dice[scored].T), kind="stable") if scored.size else []
    order = [int(scored[r]) for r in ranks]
    return [order[i] for i in pick_images(order, max(n - n_blank, 0))] + [int(i) for i in blank[:n_blank]]


def _outline(ax, mask: np.ndarray, color: str, style: str) -> None:
    if mask.any() and not mask.all():
        ax.contour(mask.astype(float), levels=[0.5], colors=[color], linestyles=style, linewidths=1.0)


def _caption(seg: Segmented, i: int) -> str:
    """Dice per structure of image ``i``, or what the first seed predicts where the map is empty."""
    parts = []
    for j, (key, spec) in enumerate(seg.structures.items()):
        if seg.present[i, j]:
            parts.append(f"{spec['label']} Dice {seg.mean_dice[i, j]:.2f}")
        else:
            pixels = int(np.isin(seg.pred[i], spec["ids"]).sum())
            parts.append(f"no {spec['label']}: " + ("none predicted" if pixels == 0 else f"{pixels} px predicted"))
    return "\n".join(parts)


def render_fidelity_figure(seg: Segmented, out: str | Path, sector_id: int | None = None, n_examples: int = 6,
                           title: str = "", reference: Mapping | None = None) -> Path:
    """Write the figure of the module docstring (``reference``: :func:`reference_dice`)."""
    rows = example_rows(seg, n_examples)
    nr = max(len(rows), 2)
    fig = Figure(figsize=(8.0, 2.0 * nr + 0.8), layout="constrained")
    grid = fig.add_gridspec(nr, 3, width_ratios=[1, 1, 2])
    for r, i in enumerate(rows):
        mask_ax, image_ax = fig.add_subplot(grid[r, 0]), fig.add_subplot(grid[r, 1])
        mask_ax.imshow(colorize_labels(seg.masks[i], sector_id), interpolation="nearest")
        image_ax.imshow(seg.images[i], cmap="gray", vmin=0, vmax=255)
        for k, spec in enumerate(seg.structures.values()):
            color = structure_color(k + 1)
            _outline(image_ax, np.isin(seg.masks[i], spec["ids"]), color, "solid")
            _outline(image_ax, np.isin(seg.pred[i], spec["ids"]), color, "dashed")
        cls = seg.table["class"].iat[i]
        mask_ax.set_title(f"{seg.table['sample_id'].iat[i]}" + (f" ({cls})" if cls else ""), fontsize=7)
        image_ax.set_title(_caption(seg, i), fontsize=7)
        for ax in (mask_ax, image_ax):
            ax.set_xticks([])
            ax.set_yticks([])
    hist = fig.add_subplot(grid[:, 2])
    bins = np.linspace(0.0, 1.0, 21)
    lines = []
    for j, (key, spec) in enumerate(seg.structures.items()):
        color = structure_color(j + 1)
        values = seg.mean_dice[seg.present[:, j], j]
        line = f"{spec['label']}: mean Dice " + (f"{values.mean():.2f}" if values.size else "n/a")
        if values.size:
            hist.hist(values, bins=bins, color=color, alpha=0.6, label=f"{spec['label']} (n = {values.size})")
            hist.axvline(float(values.mean()), color=color, linewidth=1.5)
        ref = ((reference or {}).get("dice") or {}).get(key) or {}
        if ref.get("value") is not None:
            hist.axvline(ref["value"], color=color, linestyle="dashed", linewidth=1.5)
            line += f" (real test images {ref['value']:.2f})"
        blank = ~seg.present[:, j]
        if blank.any():
            line += (f"\n{int(blank.sum())} maps without it, none predicted in "
                     f"{seg.empty_fraction[blank, j].mean():.0%}")
        lines.append(line)
    hist.set_title("\n".join(lines), fontsize=8)
    handles = [Line2D([], [], color="k", label="mean"),
               Line2D([], [], color="k", linestyle="dashed", label="real segmenter on real test images")]
    hist.legend(handles=hist.get_legend_handles_labels()[0] + handles, fontsize=7, frameon=False)
    hist.set_xlim(0.0, 1.0)
    hist.set_xlabel("Dice of the real-data segmenter vs the conditioning map", fontsize=8)
    hist.set_ylabel("images", fontsize=8)
    hist.tick_params(labelsize=7)
    fig.legend(handles=[Line2D([], [], color="k", label="conditioning map"),
                        Line2D([], [], color="k", linestyle="dashed", label=f"predicted (seed {seg.seeds[0]})")],
               loc="outside lower left", ncol=2, fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, out)


# ----------------------------------------------------------------------------- the job

def run_mask_fidelity(dataset: PreparedDataset, samples: str | Path, segmenter: str | Path, cfg: Mapping,
                      record: str | Path, figure_png: str | Path, reference: str | Path | None = None,
                      threads: int | None = None, n_examples: int = 6) -> dict:
    """One ``mask_fidelity`` job: segment the ControlNet set ``samples`` with the real-data
    ``segmenter`` (refused when its file says it was trained on another source), score it against
    the conditioning maps, write the ``record`` and the figure (module docstring).

    ``cfg`` is the resolved job config (``dataset``, ``variant``, ``seed``, ``device``,
    ``metrics.bootstrap``, ``segment.batch_size``); ``reference`` the real segmenter's segmentation
    record (its test Dice is the reference), or None.
    """
    if threads:
        torch.set_num_threads(int(threads))
    for folder in sorted({Path(record).parent, Path(figure_png).parent}):
        sweep_stale_temporaries(folder)
    table, skipped = conditioned_rows(samples)
    device = resolve_device(cfg.get("device", "auto"))
    seg = segment_samples(table, segmenter, int(dataset.num_classes), dataset.img_size, device,
                          int(cfg["segment"]["batch_size"]))
    if seg.source not in (None, REAL_SOURCE):
        raise InputError(segmenter, f"a segmenter trained on {seg.source!r}; mask fidelity needs the one "
                                    f"trained on {REAL_SOURCE!r} images only")
    resamples, seed = int(cfg["metrics"]["bootstrap"]), int(cfg.get("seed", 0))
    ref = reference_dice(reference, seg.structures, resamples, seed) if reference else None
    out = fidelity_record(seg, dataset=cfg.get("dataset"), variant=cfg.get("variant"), resamples=resamples,
                          seed=seed, skipped=skipped, reference=ref)
    out["device"] = str(device)
    log.info("mask fidelity of %s: %d images of %d patients, %d skipped; Dice %s", samples, len(table),
             out["counts"]["patients"], skipped, {k: v.get("value") for k, v in out["dice"].items()})
    write_fidelity_record(record, out)
    name = " ".join(str(x) for x in (cfg.get("dataset"), cfg.get("variant")) if x)
    render_fidelity_figure(seg, figure_png, dataset.sector_id, n_examples, reference=ref,
                           title=f"{name}: generated images vs their conditioning maps, segmented by the "
                                 f"real-data segmenter")
    return out
