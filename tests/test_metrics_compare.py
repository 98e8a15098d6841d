"""Patient-level figures and paired variant differences from per-image values: a planted B-map
effect (images darkened with depth) is found by the paired depth-profile row, not by chance on
variants of one distribution; identical variants differ by exactly 0."""

from __future__ import annotations

import numpy as np
import pytest

from sonodiff.contracts.metrics_record import read_differences, write_metric_values
from sonodiff.errors import InputError
from sonodiff.metrics import physics, quantities
from sonodiff.metrics.compare import compare_variants
from sonodiff.metrics.quantities import SetValues

SIZE, PATIENTS, PER_PATIENT = 32, 10, 4
L1 = ("physics", "depth profile", "sector", "L1 synthetic vs real")


def sector():
    mask = np.zeros((SIZE, SIZE), bool)
    mask[2:, 2:-2] = True
    return mask


def bmode(rng, n, gain=None):
    """Log-compressed Rayleigh speckle with a per-patient brightness (within-patient correlation)."""
    env = np.abs(rng.normal(size=(n, SIZE, SIZE)) + 1j * rng.normal(size=(n, SIZE, SIZE)))
    if gain is not None:
        env = env * gain
    p = np.clip(1 + 20 * np.log10(env / 6.0 + 1e-9) / 60, 0, 1)
    return (p * 255).round().astype(np.uint8) * sector()


def values(syn, real, patients):
    phys = [physics.physics_values(x, None, sector(), "linear", [], 60.0) for x in (syn, real)]
    ids = np.array([f"{p}_{k}" for k, p in enumerate(patients)])
    empty = np.array([], dtype=str)
    return SetValues(ids, np.asarray(patients), ids, np.asarray(patients), {}, {}, empty, empty, {},
                     phys[0], phys[1], [], {"fid": "not here", "pairs": "not here", "labels": "none"})


@pytest.fixture(scope="module")
def sets():
    rng = np.random.default_rng(0)
    patients = np.repeat([f"p{i}" for i in range(PATIENTS)], PER_PATIENT)
    gain = rng.uniform(0.6, 1.4, PATIENTS)[np.repeat(np.arange(PATIENTS), PER_PATIENT)][:, None, None]
    real = bmode(rng, len(patients), gain)
    base = bmode(rng, len(patients), gain)
    darker = (base * np.linspace(1.0, 0.75, SIZE)[None, :, None]).astype(np.uint8)   # the planted B-map effect
    other = bmode(rng, len(patients), gain)                                          # same distribution as base
    return {k: values(v, real, patients) for k, v in {"base": base, "darker": darker, "other": other}.items()}


def l1_quantity():
    return next(q for q in quantities.physics_quantities([]) if q.path == L1)


def test_planted_depth_effect_is_found_by_the_paired_row(sets):
    diff = quantities.difference(sets["base"], sets["darker"], l1_quantity(), 500, 0)
    assert diff["value"] > 0 and diff["ci"][0] > 0          # darker with depth: farther from the real profile
    assert diff["n_clusters"] == [PATIENTS, PATIENTS]


def test_same_distribution_is_not_a_difference(sets):
    diff = quantities.difference(sets["base"], sets["other"], l1_quantity(), 500, 0)
    assert diff["ci"][0] <= 0 <= diff["ci"][1]
    same = quantities.difference(sets["base"], sets["base"], l1_quantity(), 100, 0)
    assert same["value"] == 0 and same["ci"] == [0, 0]


def test_compare_variants_from_files(sets, tmp_path):
    paths = {}
    for name in ("base", "darker"):
        paths[name] = tmp_path / f"{name}_values.npz"
        write_metric_values(paths[name], sets[name].to_arrays())
    cfg = {"dataset": "tiny", "seed": 0, "metrics": {"bootstrap": 200, "fid_dims": [64]}}
    out = compare_variants(paths, "base", cfg, tmp_path / "differences.json")
    assert read_differences(tmp_path / "differences.json") == out
    assert out["counts"]["real_patients"] == PATIENTS and out["counts"]["synthetic_images"] == PATIENTS * PER_PATIENT
    row = out["variants"]["darker"]["physics"]["rows"][0]
    assert (row["metric"], row["quantity"]) == ("depth profile", "L1 synthetic vs real") and row["ci"][0] > 0
    shuffled = sets["darker"].to_arrays()
    shuffled["syn_ids"] = shuffled["syn_ids"][::-1]
    write_metric_values(paths["darker"], shuffled)
    with pytest.raises(InputError, match="darker_values.npz.*not sampled from one plan"):
        compare_variants(paths, "base", cfg, tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()
