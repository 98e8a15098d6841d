"""The metrics stage: real-set FID statistics, and every figure of one dataset and variant.

Inputs are files only: the prepared dataset (:class:`~sonodiff.contracts.dataset.PreparedDataset`)
and a samples manifest (:mod:`sonodiff.contracts.samples`). The evaluated images are the samples
with ``split == val`` (the validation patients' augmented label maps; all samples of an
unconditional model, whose manifest has no split); the real set is the prepared dataset's
``val`` images with their own label maps, in manifest order, and each sample is paired with
``real_image``, the real image of the label map it was generated from.

The real set's FID statistics (:func:`sonodiff.contracts.metrics_record.write_fid_stats`) hold,
for each FID dimension d: ``mu_<d>``, ``sigma_<d>`` (pytorch-fid's statistics) and
``features_<d>`` (kept for bootstrap intervals), plus ``status`` ("ok" or "n/a"), ``reason``,
``split``, ``sample_ids``, ``dims`` and ``weights_sha256`` of the Inception file.

The metrics record (:func:`sonodiff.contracts.metrics_record.write_metrics_record`) holds figures
(see :mod:`sonodiff.stats`) under ``fid.<dim>``, ``paired.<metric>.<mean|std|range>`` and
``physics...`` (see :mod:`sonodiff.metrics.physics`), with the counts, the weights' status and the
metrics config.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.contracts.manifest import read_manifest
from sonodiff.contracts.metrics_record import read_fid_stats, write_fid_stats, write_metrics_record
from sonodiff.contracts.samples import read_samples
from sonodiff.device import resolve_device
from sonodiff.errors import InputError
from sonodiff.io import read_pngs
from sonodiff.metrics import fid as fidlib
from sonodiff.metrics.weights import WEIGHTS, file_sha256, missing_reason, missing_reasons, weight_path, weight_status
from sonodiff.stats import bootstrap_ci, figure, not_available

log = logging.getLogger(__name__)

REAL_SPLIT = "val"
SAMPLE_COLUMNS = ("sample_id", "image", "label", "real_image", "split")


def _device(cfg: Mapping) -> str:
    return str(resolve_device(cfg["device"]))


def _real_rows(dataset: PreparedDataset) -> pd.DataFrame:
    """The real set: the prepared ``val`` rows in manifest order (the FID features' order)."""
    df = read_manifest(dataset.manifest, required=["sample_id", "split", "image", "label"])
    real = df[df["split"] == REAL_SPLIT]
    if real.empty:
        raise InputError(dataset.manifest, f"no {REAL_SPLIT} images for the real set")
    return real


def write_real_fid_stats(dataset: PreparedDataset, cfg: Mapping, out: str | Path, progress: bool = True) -> dict:
    """Inception statistics of the real ``val`` images to ``out`` (npz); returns them.

    Without the Inception weights: raises under ``missing_weights: fail``, else writes
    ``status = "n/a"`` with the reason and no statistics.
    """
    metrics = cfg["metrics"]
    dims = [int(d) for d in metrics["fid_dims"]]
    real = _real_rows(dataset)
    arrays: dict[str, np.ndarray] = {
        "split": np.array(REAL_SPLIT), "sample_ids": np.array(real["sample_id"].tolist()),
        "dims": np.array(dims), "status": np.array("ok"), "reason": np.array(""),
        "weights_sha256": np.array(""),
    }
    reason = missing_reason(metrics, "fid")
    if reason is not None:
        arrays["status"], arrays["reason"] = np.array("n/a"), np.array(reason)
        log.warning("FID n/a: %s", reason)
    else:
        weights = weight_path(metrics, "inception")
        model = fidlib.build_inception(weights, dims)
        feats = fidlib.inception_features(model, dataset.images(real), dims, metrics["batch_size"],
                                          _device(cfg), progress)
        for d in dims:
            mu, sigma = fidlib.statistics(feats[d])
            arrays[f"mu_{d}"], arrays[f"sigma_{d}"], arrays[f"features_{d}"] = mu, sigma, feats[d]
        arrays["weights_sha256"] = np.array(file_sha256(weights))
    write_fid_stats(out, arrays)
    return arrays


def _fid_figures(cfg: Mapping, stats_path: str | Path, syn_images: np.ndarray, progress: bool) -> dict:
    metrics = cfg["metrics"]
    dims = [int(d) for d in metrics["fid_dims"]]
    stats = read_fid_stats(stats_path)
    if str(stats["status"]) != "ok":
        return {str(d): not_available(str(stats["reason"])) for d in dims}
    reason = missing_reason(metrics, "fid")
    if reason is not None:
        return {str(d): not_available(reason) for d in dims}
    missing = [d for d in dims if f"mu_{d}" not in stats]
    if missing:
        raise InputError(stats_path, f"no statistics for dims {missing} (metrics.fid_dims changed): rerun real_fid_stats")
    weights = weight_path(metrics, "inception")
    if file_sha256(weights) != str(stats["weights_sha256"]):
        raise InputError(stats_path, f"made with other Inception weights than {weights}: rerun real_fid_stats")
    if len(syn_images) < 2:
        return {str(d): not_available("fewer than 2 synthetic images") for d in dims}
    model = fidlib.build_inception(weights, dims)
    feats = fidlib.inception_features(model, syn_images, dims, metrics["batch_size"], _device(cfg), progress)
    out = {}
    for d in dims:
        mu, sigma = fidlib.statistics(feats[d])
        value = fidlib.frechet_distance(mu, sigma, stats[f"mu_{d}"], stats[f"sigma_{d}"])
        real_feats = stats[f"features_{d}"]
        ci = bootstrap_ci(fidlib.ResampledFrechet(feats[d], real_feats),
                          [np.arange(len(feats[d])), np.arange(len(real_feats))], metrics["bootstrap"], cfg["seed"])
        out[str(d)] = {"value": value, "ci": ci, "status": "ok", "n": [len(feats[d]), len(stats[f"features_{d}"])],
                       "layer": fidlib.LAYER_NAMES[d]}
    return out


def _summary_stat(values: np.ndarray, name: str) -> float:
    from sonodiff.metrics import paired

    return paired.summary(values)[name]


def _paired_figures(cfg: Mapping, syn: np.ndarray, real: np.ndarray, progress: bool) -> dict:
    from sonodiff.metrics import paired  # torchmetrics: only the metrics job needs it, not the real FID statistics

    metrics = cfg["metrics"]
    per_pair: dict[str, np.ndarray | str] = {
        "ssim": paired.ssim_per_image(syn, real),
        "psnr": paired.psnr_per_image(syn, real),
    }
    reason = missing_reason(metrics, "lpips")
    if reason is None:
        model = paired.build_lpips(weight_path(metrics, "alexnet"), weight_path(metrics, "lpips_linear"))
        per_pair["lpips"] = paired.lpips_per_image(model, syn, real, metrics["batch_size"], _device(cfg), progress)
    else:
        per_pair["lpips"] = reason
    out = {}
    for name in ("lpips", "ssim", "psnr"):
        values = per_pair[name]
        if isinstance(values, str):
            out[name] = {stat: not_available(values) for stat in paired.STATS}
        else:
            out[name] = {stat: figure(functools.partial(_summary_stat, name=stat), [values],
                                      metrics["bootstrap"], cfg["seed"]) for stat in paired.STATS}
    return out


def _evaluated_samples(samples_manifest: str | Path) -> pd.DataFrame:
    samples = read_samples(samples_manifest, required=SAMPLE_COLUMNS)
    if (samples["split"] != "").any():
        samples = samples[samples["split"] == REAL_SPLIT]
    if samples.empty:
        raise InputError(samples_manifest, f"no {REAL_SPLIT} samples to evaluate")
    return samples


def evaluate(samples_manifest: str | Path, dataset: PreparedDataset, real_stats: str | Path, cfg: Mapping,
             progress: bool = True) -> dict:
    """Every figure of one dataset and variant (see the module docstring)."""
    from sonodiff.metrics import paired, physics

    metrics = cfg["metrics"]
    missing_reasons(metrics)  # under missing_weights: fail, stop at once naming every missing file
    samples = _evaluated_samples(samples_manifest)
    real = _real_rows(dataset)
    label_names = dataset.label_names
    sector = dataset.sector()

    syn_images = read_pngs(samples["image"].tolist(), samples_manifest)
    real_images = dataset.images(real)
    if syn_images.shape[1:] != real_images.shape[1:] or sector.shape != real_images.shape[1:]:
        raise InputError(samples_manifest, f"synthetic images {syn_images.shape[1:]}, real images "
                         f"{real_images.shape[1:]} and sector {sector.shape} differ in size")
    has_labels = bool(label_names) and (samples["label"] != "").all() and (real["label"] != "").all()
    syn_labels = read_pngs(samples["label"].tolist(), samples_manifest) if has_labels else None
    real_labels = dataset.label_maps(real) if has_labels else None

    result: dict = {
        "dataset": cfg["dataset"], "variant": cfg["variant"], "split": REAL_SPLIT,
        "n_synthetic": int(len(samples)), "n_real": int(len(real)),
        "bootstrap": {"resamples": metrics["bootstrap"], "seed": cfg["seed"], "level": 0.95,
                      "method": "percentile, images resampled with replacement (each set independently)"},
        "weights": {k: weight_status(metrics, k).to_dict() for k in WEIGHTS},
    }
    result["fid"] = _fid_figures(cfg, real_stats, syn_images, progress)
    if (samples["real_image"] != "").all():
        pairs_real = read_pngs(samples["real_image"].tolist(), samples_manifest)
        if pairs_real.shape[1:] != syn_images.shape[1:]:
            raise InputError(samples_manifest, "real_image and image sizes differ")
        result["n_pairs"] = int(len(samples))
        result["paired"] = _paired_figures(cfg, syn_images, pairs_real, progress)
    else:
        reason = "samples have no paired real image (unconditional model)"
        result["n_pairs"] = 0
        result["paired"] = {m: {s: not_available(reason) for s in paired.STATS} for m in ("lpips", "ssim", "psnr")}
    result["physics"] = physics.physics_metrics(
        syn_images, syn_labels, real_images, real_labels, sector, dataset.probe.value, label_names,
        metrics["dynamic_range_db"], metrics["bootstrap"], cfg["seed"], progress)
    result["config"] = dict(metrics)
    return result


def compute_metrics(samples_manifest: str | Path, dataset: PreparedDataset, real_stats: str | Path,
                    cfg: Mapping, out: str | Path, progress: bool = True) -> dict:
    """:func:`evaluate`, written to ``out`` as the metrics record."""
    result = evaluate(samples_manifest, dataset, real_stats, cfg, progress)
    write_metrics_record(out, result)
    return result
