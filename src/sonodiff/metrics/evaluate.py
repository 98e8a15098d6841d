"""The metrics stage: real-set FID statistics, and every figure of one dataset and variant.

Inputs are files only: the prepared dataset (:class:`~sonodiff.contracts.dataset.PreparedDataset`)
and a samples manifest (:mod:`sonodiff.contracts.samples`). The evaluated images are the samples
with ``split == val`` (the images generated from the validation patients' label maps, undeformed
and augmented; all samples of an unconditional model, whose manifest has no split); the real set
is the prepared dataset's ``val`` images, in manifest order. The pairs of the paired metrics are
the samples generated from an *undeformed* validation label map (``sample_id ==
source_sample_id``, :mod:`sonodiff.contracts.labelmaps`) with the real image of that map, so the
two images of a pair share their anatomy.

The real set's FID statistics (:func:`sonodiff.contracts.metrics_record.write_fid_stats`) hold,
for each FID dimension d: ``mu_<d>``, ``sigma_<d>`` (pytorch-fid's statistics) and
``features_<d>`` (for the intervals and KID), plus ``status`` ("ok" or "n/a"), ``reason``,
``split``, ``sample_ids``, ``dims`` and ``weights_sha256`` of the Inception file.

Two files per dataset and variant: the per-image values (:class:`~sonodiff.metrics.quantities.SetValues`,
``metrics/{d}/{v}_values.npz``), from which the variant comparison is computed
(:mod:`sonodiff.metrics.compare`), and the metrics record (``metrics/{d}/{v}.json``) with the
figures (:mod:`sonodiff.stats`) under ``fid.<dim>`` (bias-corrected; ``estimate`` is the plain
FID), ``kid.<dim>``, ``paired.<metric>.<mean|std|range>`` and ``physics.rows`` (see
:mod:`sonodiff.metrics.quantities`), the counts of images and patients, the weights' status and
the metrics config.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.contracts.labelmaps import is_undeformed
from sonodiff.contracts.manifest import read_manifest
from sonodiff.contracts.metrics_record import (read_fid_stats, write_fid_stats, write_metric_values,
                                               write_metrics_record)
from sonodiff.contracts.samples import read_samples
from sonodiff.device import resolve_device
from sonodiff.errors import InputError
from sonodiff.io import read_pngs
from sonodiff.metrics import fid as fidlib
from sonodiff.metrics import quantities
from sonodiff.metrics.quantities import SetValues
from sonodiff.metrics.weights import WEIGHTS, file_sha256, missing_reason, missing_reasons, weight_path, weight_status

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


def _clusters_note(values: SetValues) -> str:
    if values.conditional:
        return "patients resampled (a patient's synthetic and real images together)"
    return "synthetic images resampled one by one, real images by patient"


def counts(values: SetValues) -> dict:
    """How many images and patients the figures rest on."""
    return {"synthetic_images": int(len(values.syn_ids)),
            "synthetic_patients": int(len(set(values.syn_patients))) if values.conditional else None,
            "real_images": int(len(values.real_ids)), "real_patients": int(len(set(values.real_patients))),
            "pairs": int(len(values.pair_ids)), "pair_patients": int(len(set(values.pair_patients)))}


def place(record: dict, path: tuple[str, ...], fig: Mapping) -> None:
    """Put ``fig`` at ``path`` of a record; physics figures go to ``physics.rows`` as
    ``{"metric", "region", "quantity", **fig}``."""
    if path[0] == "physics":
        record.setdefault("physics", {}).setdefault("rows", []).append(
            {"metric": path[1], "region": path[2], "quantity": path[3], **fig})
        return
    node = record.setdefault(path[0], {})
    for key in path[1:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = dict(fig)


def _fid_notes(record: dict, values: SetValues, dims: Sequence[int]) -> None:
    for d in dims:
        fig = record["fid"].get(str(d), {})
        fig["layer"] = fidlib.LAYER_NAMES[d]
        if fig.get("status") == "ok" and len(values.real_ids) < d:
            fig["warning"] = (f"{len(values.real_ids)} real images < {d} feature dimensions: the covariance is "
                              "singular and FID is dominated by its small-sample bias (read KID)")


def figures(values: SetValues, dims: Sequence[int], resamples: int, seed: int) -> dict:
    """The record sections ``fid``, ``kid``, ``paired``, ``physics.rows`` of one variant."""
    record: dict = {"fid": {}, "kid": {}, "paired": {}, "physics": {"rows": []}}
    for q in quantities.quantities(values):
        place(record, q.path, quantities.evaluate(values, q, resamples, seed))
    for path, fig in quantities.unavailable(values, dims):
        place(record, path, fig)
    _fid_notes(record, values, dims)
    return record


def _pairs(samples: pd.DataFrame) -> pd.DataFrame:
    """The evaluated samples made from undeformed label maps (``sample_id == source_sample_id``)."""
    return samples[is_undeformed(samples) & (samples["real_image"] != "")]


def _pair_values(cfg: Mapping, pairs: pd.DataFrame, syn: np.ndarray, manifest: str | Path,
                 progress: bool) -> tuple[dict, dict]:
    """Per-pair LPIPS, SSIM, PSNR of the undeformed pairs (``syn``: their synthetic images), and the
    reasons for what is missing."""
    from sonodiff.metrics import paired  # torchmetrics: only the metrics job needs it

    if pairs.empty:
        return {}, {"pairs": "no sample was made from an undeformed label map with a real image (unconditional "
                             "model, or augment.splits without val)"}
    real = read_pngs(pairs["real_image"].tolist(), manifest)
    if real.shape[1:] != syn.shape[1:]:
        raise InputError(manifest, "real_image and image sizes differ")
    values = {"ssim": paired.ssim_per_image(syn, real), "psnr": paired.psnr_per_image(syn, real)}
    metrics = cfg["metrics"]
    reason = missing_reason(metrics, "lpips")
    if reason is not None:
        return values, {"lpips": reason}
    model = paired.build_lpips(weight_path(metrics, "alexnet"), weight_path(metrics, "lpips_linear"))
    values["lpips"] = paired.lpips_per_image(model, syn, real, metrics["batch_size"], _device(cfg), progress)
    return values, {}


def _features(cfg: Mapping, stats_path: str | Path, syn_images: np.ndarray, real: pd.DataFrame,
              progress: bool) -> tuple[dict, dict, dict]:
    """Synthetic and real Inception features per dimension, or the reason they are missing."""
    metrics = cfg["metrics"]
    dims = [int(d) for d in metrics["fid_dims"]]
    stats = read_fid_stats(stats_path)
    reason = str(stats["reason"]) if str(stats["status"]) != "ok" else missing_reason(metrics, "fid")
    if reason is None and len(syn_images) < 2:
        reason = "fewer than 2 synthetic images"
    if reason is not None:
        return {}, {}, {"fid": reason}
    missing = [d for d in dims if f"features_{d}" not in stats]
    if missing:
        raise InputError(stats_path, f"no statistics for dims {missing} (metrics.fid_dims changed): rerun real_fid_stats")
    if [str(x) for x in stats["sample_ids"]] != real["sample_id"].tolist():
        raise InputError(stats_path, "made from other real images than the prepared val split: rerun real_fid_stats")
    weights = weight_path(metrics, "inception")
    if file_sha256(weights) != str(stats["weights_sha256"]):
        raise InputError(stats_path, f"made with other Inception weights than {weights}: rerun real_fid_stats")
    model = fidlib.build_inception(weights, dims)
    feats = fidlib.inception_features(model, syn_images, dims, metrics["batch_size"], _device(cfg), progress)
    return feats, {d: stats[f"features_{d}"] for d in dims}, {}


def _evaluated_samples(samples_manifest: str | Path) -> pd.DataFrame:
    samples = read_samples(samples_manifest, required=SAMPLE_COLUMNS)
    if (samples["split"] != "").any():
        samples = samples[samples["split"] == REAL_SPLIT]
    if samples.empty:
        raise InputError(samples_manifest, f"no {REAL_SPLIT} samples to evaluate")
    return samples.sort_values("sample_id").reset_index(drop=True)


def set_values(samples_manifest: str | Path, dataset: PreparedDataset, real_stats: str | Path, cfg: Mapping,
               progress: bool = True) -> SetValues:
    """The per-image values of one sample set and the real ``val`` set (:class:`SetValues`)."""
    from sonodiff.metrics import physics

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
    ids = [i for i in sorted(label_names) if i != 0] if has_labels else []
    reasons: dict[str, str] = {} if ids else {"labels": "the dataset has no label maps"}
    args = (sector, dataset.probe.value, ids, metrics["dynamic_range_db"])
    syn_phys = physics.physics_values(syn_images, read_pngs(samples["label"].tolist(), samples_manifest)
                                      if ids else None, *args)
    real_phys = physics.physics_values(real_images, dataset.label_maps(real) if ids else None, *args)
    features, real_features, fid_reason = _features(cfg, real_stats, syn_images, real, progress)
    pairs = _pairs(samples)
    pair_metrics, pair_reasons = _pair_values(cfg, pairs, syn_images[pairs.index.to_numpy()], samples_manifest,
                                              progress)  # the samples' index is their row in syn_images
    return SetValues(
        syn_ids=samples["sample_id"].to_numpy(str), syn_patients=samples["patient_id"].to_numpy(str),
        real_ids=real["sample_id"].to_numpy(str), real_patients=real["patient_id"].to_numpy(str),
        features=features, real_features=real_features,
        pair_ids=pairs["sample_id"].to_numpy(str), pair_patients=pairs["patient_id"].to_numpy(str),
        pairs=pair_metrics, syn_physics=syn_phys, real_physics=real_phys,
        label_names=[label_names[i] for i in ids], reasons={**reasons, **fid_reason, **pair_reasons})


def evaluate(samples_manifest: str | Path, dataset: PreparedDataset, real_stats: str | Path, cfg: Mapping,
             progress: bool = True) -> tuple[dict, SetValues]:
    """Every figure of one dataset and variant (see the module docstring), and the values behind them."""
    from sonodiff.metrics import physics

    metrics = cfg["metrics"]
    values = set_values(samples_manifest, dataset, real_stats, cfg, progress)
    dims = [int(d) for d in metrics["fid_dims"]]
    result: dict = {
        "dataset": cfg["dataset"], "variant": cfg["variant"], "split": REAL_SPLIT,
        "counts": counts(values),
        "bootstrap": {"resamples": metrics["bootstrap"], "seed": cfg["seed"], "level": 0.95,
                      "method": f"percentile, {_clusters_note(values)}; FID bias-corrected (basic interval)"},
        "weights": {k: weight_status(metrics, k).to_dict() for k in WEIGHTS},
    }
    result.update(figures(values, dims, metrics["bootstrap"], cfg["seed"]))
    result["physics"].update({
        "depth_profile": {"probe": dataset.probe.value,
                          "depth": ((np.arange(values.syn_physics.profiles.shape[1]) + 0.5)
                                    / values.syn_physics.profiles.shape[1]).tolist(),
                          **physics.profile_curves(values.syn_physics.profiles, values.real_physics.profiles)},
        "rayleigh_snr": physics.RAYLEIGH_SNR, "dynamic_range_db": metrics["dynamic_range_db"],
        "patch_px": physics.patch_size(int(dataset.img_size)),
    })
    result["config"] = dict(metrics)
    return result, values


def compute_metrics(samples_manifest: str | Path, dataset: PreparedDataset, real_stats: str | Path,
                    cfg: Mapping, out: str | Path, out_values: str | Path, progress: bool = True) -> dict:
    """:func:`evaluate`, written to ``out`` (the metrics record) and ``out_values`` (the per-image values)."""
    result, values = evaluate(samples_manifest, dataset, real_stats, cfg, progress)
    write_metric_values(out_values, values.to_arrays())
    write_metrics_record(out, result)
    return result
