"""Cluster and paired cluster bootstrap: properties that fail if the resampling unit is wrong."""

from __future__ import annotations

import numpy as np

from sonodiff.stats import (bootstrap_ci, cluster_bootstrap_ci, paired_cluster_bootstrap_ci,
                            paired_difference_figure)

B = 500


def clustered(rng, patients=20, images=10, patient_sd=1.0, noise_sd=0.1, mean=0.0):
    """value = mean + patient effect + noise; returns (values, patient id per image)."""
    effect = rng.normal(0.0, patient_sd, patients)
    ids = np.repeat(np.arange(patients), images)
    return mean + effect[ids] + rng.normal(0.0, noise_sd, ids.size), ids


def width(ci):
    return ci[1] - ci[0]


def image_ci(values, seed):
    return bootstrap_ci(np.mean, [values], B, seed)


def test_resamples_take_whole_clusters_with_repeats():
    clusters = np.repeat(["p0", "p1", "p2", "p3"], [1, 2, 3, 4])
    seen = []
    cluster_bootstrap_ci(lambda rows: seen.append(rows.copy()) or 0.0, np.arange(10), clusters, 50, 0)
    sizes = np.array([1, 2, 3, 4])
    label = np.repeat(np.arange(4), sizes)
    for rows in seen:
        counts = np.bincount(label[rows], minlength=4)
        assert np.all(counts % sizes == 0)            # every drawn cluster comes whole
        assert (counts // sizes).sum() == 4           # K clusters drawn
    assert any(np.any(np.bincount(label[r], minlength=4) // sizes > 1) for r in seen)  # repeats


def test_cluster_interval_wider_under_within_patient_correlation():
    values, ids = clustered(np.random.default_rng(1))
    ratio = width(cluster_bootstrap_ci(np.mean, values, ids, B, 2)) / width(image_ci(values, 2))
    assert ratio > 2.0  # design effect 1 + (m - 1) rho ~ 10, sqrt ~ 3.1


def test_cluster_interval_matches_image_interval_without_correlation():
    rng = np.random.default_rng(3)
    ids = np.repeat(np.arange(200), 5)
    values = rng.normal(0.0, 1.0, ids.size)
    ratio = (width(cluster_bootstrap_ci(np.mean, values, ids, 1000, 4))
             / width(bootstrap_ci(np.mean, [values], 1000, 4)))
    assert 0.8 < ratio < 1.25  # 0.86-1.15 over 20 seeds


def test_coverage_of_population_mean():
    rng = np.random.default_rng(5)
    covered_cluster = covered_image = 0
    reps = 200
    for rep in range(reps):
        values, ids = clustered(rng, mean=2.0)
        lo, hi = cluster_bootstrap_ci(np.mean, values, ids, B, rep)
        covered_cluster += lo <= 2.0 <= hi
        lo, hi = image_ci(values, rep)
        covered_image += lo <= 2.0 <= hi
    assert 0.88 * reps <= covered_cluster <= 0.99 * reps
    assert covered_image < 0.7 * reps


def test_paired_interval_resolves_a_planted_effect():
    rng = np.random.default_rng(6)
    a, ids = clustered(rng)
    b = a + 0.05 + rng.normal(0.0, 0.01, a.size)
    paired = paired_cluster_bootstrap_ci(np.mean, a, b, ids, B, 7)
    ci_a = cluster_bootstrap_ci(np.mean, a, ids, B, 7)
    ci_b = cluster_bootstrap_ci(np.mean, b, ids, B, 8)
    assert paired[0] > 0.0
    assert paired[0] <= 0.05 <= paired[1]
    assert width(paired) < 0.05 * min(width(ci_a), width(ci_b))
    assert ci_b[0] < ci_a[1]  # the independent intervals overlap and hide the difference


def test_identical_variants_give_exactly_zero():
    a, ids = clustered(np.random.default_rng(9))
    record = paired_difference_figure(np.mean, a, a.copy(), ids, B, 10)
    assert record["value"] == 0.0
    assert record["ci"] == [0.0, 0.0]
    assert record["n_patients"] == 20 and record["n_images"] == 200 and record["n"] == [200, 200]
    assert record["status"] == "ok"


def test_null_difference_covers_zero():
    rng = np.random.default_rng(11)
    covered = 0
    for rep in range(100):
        a, ids = clustered(rng, patients=30)
        b = a + rng.normal(0.0, 0.1, a.size)
        lo, hi = paired_cluster_bootstrap_ci(np.mean, a, b, ids, B, rep)
        covered += lo <= 0.0 <= hi
    assert covered >= 88


def test_reproducible_and_label_free():
    values, ids = clustered(np.random.default_rng(12))
    names = np.array([f"patient-{i:02d}" for i in ids], dtype=object)
    ci = cluster_bootstrap_ci(np.mean, values, ids, B, 13)
    assert cluster_bootstrap_ci(np.mean, values, ids, B, 13) == ci
    assert cluster_bootstrap_ci(np.mean, values, names, B, 13) == ci  # same grouping, same draws
    assert cluster_bootstrap_ci(np.mean, values, list(names), B, 14) != ci


def test_one_patient_gives_no_interval():
    values = np.arange(5.0)
    ids = ["only"] * 5
    assert cluster_bootstrap_ci(np.mean, values, ids, B, 0) is None
    assert paired_cluster_bootstrap_ci(np.mean, values, values + 1, ids, B, 0) is None
    record = paired_difference_figure(np.mean, values, values + 1, ids, B, 0)
    assert record["value"] == 1.0 and record["ci"] is None and record["n_patients"] == 1
