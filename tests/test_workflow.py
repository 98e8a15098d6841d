"""The Snakemake workflow: lint, dry runs of both configs, and the whole DAG on the default config."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import ROOT, run_snakemake


def test_lint_is_clean(tmp_path):
    proc = run_snakemake(tmp_path, "--lint")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Lints for" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr


@pytest.mark.parametrize("config", ["config.yaml", "paper.yaml"])
def test_dry_run(tmp_path, config):
    proc = run_snakemake(tmp_path, "-n", "--quiet", "rules", configfile=ROOT / "config" / config)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    for rule in ("prepare_dataset", "train_model", "sample_shard", "compute_metrics", "train_segmenter"):
        assert rule in out, f"{rule} missing from the {config} DAG"


def test_bad_config_stops_before_any_job(tmp_path):
    bad = tmp_path / "bad.yaml"
    text = (ROOT / "config" / "config.yaml").read_text()
    assert "\ntrain:\n  steps:" in text
    bad.write_text(text.replace("\ntrain:\n  steps:", "\ntrain:\n  stpes:"))
    proc = run_snakemake(tmp_path, "-n", configfile=bad)
    assert proc.returncode != 0
    assert "config key train.stpes: unknown key" in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_whole_dag_on_default_config(dag_run):
    for dataset in ("phantom_camus", "phantom_segthy"):
        manifest = pd.read_csv(dag_run / "results" / "data" / dataset / "manifest.csv", dtype=str)
        splits_per_patient = manifest.groupby("patient_id")["split"].nunique()
        assert (splits_per_patient == 1).all(), "a patient appears in two splits"
        assert set(manifest["split"]) == {"train", "val", "test"}
        augmented = pd.read_csv(dag_run / "results" / "augment" / dataset / "manifest.csv", dtype=str)
        assert "test" not in set(augmented["split"])
        for variant in ("baseline", "bmaps"):
            assert (dag_run / "results" / "models" / dataset / variant / "model.pt").is_file()
            samples = pd.read_csv(dag_run / "results" / "samples" / dataset / variant / "manifest.csv", dtype=str)
            assert len(samples) > 0
            assert (dag_run / "results" / "metrics" / dataset / f"{variant}.json").is_file()
    for table in ("fid", "paired", "physics", "segmentation"):
        assert (dag_run / "results" / "tables" / f"{table}.md").is_file()
