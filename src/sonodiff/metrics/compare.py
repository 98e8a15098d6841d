"""Variant differences: every figure of each variant minus the reference variant's, paired.

Both variants of a dataset sample the same plan (the same label maps and noise seeds), so their
images are compared on the same draws of patients (:func:`sonodiff.metrics.quantities.difference`):
Delta = stat(variant) - stat(reference), with the paired patient-level bootstrap interval
(:mod:`sonodiff.stats`). The reference is the baseline (``b_min = 1``). A difference whose
interval excludes 0 says that the two variants differ on this dataset; whether lower or higher is
better depends on the figure (FID, KID, LPIPS, L1, W1: lower is closer to the real images; SSIM,
PSNR: higher; signed synthetic - real rows: closer to 0).

Real-only figures (the real SNR, the gCNR baselines) have no difference. The record
(:func:`sonodiff.contracts.metrics_record.write_differences`): ``dataset``, ``reference``,
``sign``, ``counts`` (images and patients, as in the metrics record), ``variants.<v>`` with the
sections ``fid``, ``kid``, ``paired.<metric>.mean`` and ``physics.rows``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from sonodiff.contracts.metrics_record import read_metric_values, write_differences
from sonodiff.errors import InputError
from sonodiff.metrics import quantities
from sonodiff.metrics.evaluate import counts, place
from sonodiff.metrics.quantities import SetValues


def variant_differences(reference: SetValues, other: SetValues, resamples: int, seed: int,
                        dims: Sequence[int] = ()) -> dict:
    """The sections of ``other`` minus ``reference`` (module docstring); the parts that could not be
    computed are n/a with the reason (``dims``: the configured FID dimensions)."""
    out: dict = {"fid": {}, "kid": {}, "paired": {}, "physics": {"rows": []}}
    for q in quantities.quantities(reference):
        if q.compares:
            place(out, q.path, quantities.difference(reference, other, q, resamples, seed))
    for path, fig in quantities.unavailable(reference, dims):
        if path[0] != "paired" or path[-1] == "mean":
            place(out, path, fig)
    return out


def compare_variants(values_paths: Mapping[str, str | Path], reference: str, cfg: Mapping,
                     out: str | Path) -> dict:
    """Read each variant's per-image values, write every variant minus ``reference`` to ``out``."""
    if reference not in values_paths:
        raise InputError("config key variants", f"no reference variant {reference!r} among {sorted(values_paths)}")
    values = {v: SetValues.from_arrays(read_metric_values(p)) for v, p in values_paths.items()}
    resamples, seed = int(cfg["metrics"]["bootstrap"]), int(cfg["seed"])
    record = {"dataset": cfg["dataset"], "reference": reference,
              "sign": f"variant minus {reference}, same patients drawn for both",
              "counts": counts(values[reference]),
              "bootstrap": {"resamples": resamples, "seed": seed, "level": 0.95},
              "variants": {}}
    for name, vals in values.items():
        if name == reference:
            continue
        try:
            record["variants"][name] = variant_differences(values[reference], vals, resamples, seed,
                                                           [int(d) for d in cfg["metrics"]["fid_dims"]])
        except ValueError as err:
            raise InputError(values_paths[name], str(err)) from err
    write_differences(out, record)
    return record
