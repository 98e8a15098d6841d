"""The Snakemake workflow: lint, dry runs of both configs, and the whole DAG on the default config."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, TEST_CONFIG, run_snakemake


def test_lint_is_clean(tmp_path):
    proc = run_snakemake(tmp_path, "--lint")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Lints for" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr


#: What the workflow looks for in a Stable Diffusion folder (diffusers' layout).
SD_PARTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
LATENT_RULES = ("train_latent_model", "train_controlnet", "train_fraction_model", "sample_prompt_shard",
                "train_classifier", "classification_table", "mask_fidelity", "latent_figures")


def fake_stable_diffusion(folder):
    """The layout of a Stable Diffusion folder (the dry run reads no weights)."""
    for part in SD_PARTS:
        (folder / part).mkdir(parents=True)
    (folder / "model_index.json").write_text("{}")


@pytest.mark.parametrize("config", ["config.yaml", "test.yaml", "paper.yaml"])
def test_dry_run(tmp_path, config):
    if config == "paper.yaml":  # its BUSI experiment fine-tunes a local Stable Diffusion folder
        fake_stable_diffusion(tmp_path / "weights" / "stable-diffusion-v1-5")
    proc = run_snakemake(tmp_path, "-n", "--quiet", "rules", configfile=ROOT / "config" / config)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    for rule in ("prepare_dataset", "train_model", "sample_shard", "compute_metrics", "train_segmenter"):
        assert rule in out, f"{rule} missing from the {config} DAG"
    if config != "test.yaml":  # the latent family: the demo's phantom_busi, the paper's BUSI
        for rule in LATENT_RULES:
            assert rule in out, f"{rule} missing from the {config} DAG"
    if config == "config.yaml":
        assert "train_autoencoder" in out  # tiny parts trained from scratch
    if config == "paper.yaml":
        assert "train_autoencoder" not in out  # Stable Diffusion's own


def test_paper_config_without_its_stable_diffusion_folder_stops_in_one_line(tmp_path):
    proc = run_snakemake(tmp_path, "-n", configfile=ROOT / "config" / "paper.yaml")
    assert proc.returncode != 0
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: config key latent.pretrained (weights/stable-diffusion-v1-5): "
                               "no Stable Diffusion folder here (missing model_index.json, unet"), lines[0]
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("old, new, message", [
    ("\ntrain:\n  steps:", "\ntrain:\n  stpes:", "error: config key train.stpes: unknown key"),
    ("sources: [real, synthetic_baseline, synthetic_bmaps]", "sources: [real, synthetic_nope]",
     "error: config key segment.sources: 'synthetic_nope' names no configured variant 'nope'"),
])
def test_bad_config_stops_before_any_job(tmp_path, old, new, message):
    """A bad key, or a value only the workflow's own checks catch, is one line without a stack."""
    bad = tmp_path / "bad.yaml"
    text = (ROOT / "config" / "config.yaml").read_text()
    assert old in text
    bad.write_text(text.replace(old, new))
    proc = run_snakemake(tmp_path, "-n", configfile=bad)
    assert proc.returncode != 0
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert lines == [message]  # one line, no stack
    assert not (tmp_path / "results").exists()


#: Rules the test config's DAG must run (download needs a URL and has its own test).
EVERY_RULE = {"simulate_phantom", "prepare_dataset", "augment_labels", "train_model", "plan_samples",
              "sample_shard", "gather_samples", "reverse_snapshots", "fetch_weights", "real_fid_stats",
              "compute_metrics", "make_tables", "check_leakage", "train_segmenter", "segmentation_table",
              "paper_figures", "reverse_figure", "report_figures", "report_tables", "provenance",
              "compare_variants", "front_page", "export_model", "export_nnunet"}


def check_results(results, config_path):
    """What every whole DAG must leave: patient-level splits, no test map augmented, a model,
    samples and metrics per dataset and variant, every table."""
    from sonodiff.config import load_config
    from sonodiff.contracts.layout import Layout

    config = load_config(config_path)
    layout = Layout(str(results))
    labelled = [d for d, ds in config["datasets"].items() if any(v != 0 for v in ds["labels"].values())]
    for dataset in config["datasets"]:
        manifest = pd.read_csv(layout("dataset_manifest", dataset=dataset), dtype=str)
        assert (manifest.groupby("patient_id")["split"].nunique() == 1).all(), "a patient appears in two splits"
        assert set(manifest["split"]) == {"train", "val", "test"}
        if dataset in labelled:
            augmented = pd.read_csv(layout("labelmaps_manifest", dataset=dataset), dtype=str)
            assert "test" not in set(augmented["split"])
        for variant in config["variants"]:
            assert Path(layout("model", dataset=dataset, variant=variant)).is_file()
            samples = pd.read_csv(layout("samples_manifest", dataset=dataset, variant=variant), dtype=str)
            assert len(samples) > 0
            assert Path(layout("metrics_record", dataset=dataset, variant=variant)).is_file()
            assert Path(layout("snapshots", dataset=dataset, variant=variant)).is_file()
            for part in ("exported_weights", "exported_depth", "exported_config", "model_card"):
                assert Path(layout(part, dataset=dataset, variant=variant)).is_file(), part
    exported_sets = sorted(Path(layout("nnunet_raw")).glob("Dataset*/dataset.json"))
    assert len(exported_sets) == len(labelled) * (1 + len(config["variants"]))  # real and each synthetic set
    tables = ["fid", "paired", "physics", "verdict"] + (["segmentation"] if labelled else [])
    for table in tables:
        for fmt in ("csv", "md", "tex"):
            assert Path(layout("table", name=table, fmt=fmt)).is_file()
    check_paired_rows(layout, config, labelled)
    return config, labelled


def check_paired_rows(layout, config, labelled):
    """Every table has its paired-difference rows (B-maps minus baseline; synthetic minus real) and
    says on how many patients and images it rests; the front page holds the verdict table and the
    depth-profile figures."""
    for table in ("fid", "paired", "physics"):
        md = Path(layout("table", name=table, fmt="md")).read_text()
        assert "| Δ bmaps" in md.splitlines()[2] or "Δ bmaps |" in md, table          # a difference column
        assert "variant minus baseline" in md and " patient" in md, table             # sign and counts
    if labelled:
        seg = pd.read_csv(layout("table", name="segmentation", fmt="csv"))
        paired = seg[seg["kind"] == "paired difference"]
        assert {f"synthetic_{v} - real" for v in config["variants"]} <= {s.removesuffix(" (paired)") for s in paired["source"]}
        ours = seg[seg["kind"] != "published"]
        assert (ours["n_patients"] > 0).all() and (seg.loc[ours.index.difference(paired.index), "n_seeds"] >= 1).all()
    verdict = pd.read_csv(layout("table", name="verdict", fmt="csv"))
    assert set(verdict["Dataset"]) == set(config["datasets"])
    assert (verdict["Figure"] == "depth-profile L1").sum() == len(config["datasets"])
    page = Path(layout("front_page")).read_text()
    assert "<h2>Verdict</h2>" in page and page.count("data:image/png;base64,") == len(config["datasets"])


@pytest.mark.slow
@pytest.mark.timeout(1800)  # when the SLURM tests skip, the tiny DAG fixture runs inside this test
def test_tiny_dag_runs_every_rule_both_model_kinds_and_every_table(dag_run):
    config, labelled = check_results(dag_run / "results", ROOT / "config" / "test.yaml")
    assert labelled and len(labelled) < len(config["datasets"]), "the test config needs both model kinds"
    ran = {p.name for p in (dag_run / "results" / "logs").iterdir() if p.is_dir()}
    ran |= {p.stem for p in (dag_run / "results" / "logs").glob("*.log")}
    assert EVERY_RULE <= ran, f"rules that did not run: {sorted(EVERY_RULE - ran)}"


@pytest.mark.slow
@pytest.mark.demo
@pytest.mark.timeout(2700)  # the fixture's whole demo DAG runs inside this test's time
def test_whole_dag_on_default_config(demo_run):
    """The user's demo (`make run`): its outputs, not its timing (benchmarks/bench_demo.py times it)."""
    config, _ = check_results(demo_run / "results", ROOT / "config" / "config.yaml")
    check_latent_results(demo_run / "results", config)


def check_latent_results(results, config):
    """What the latent family leaves for each latent dataset: the classification table's rows, the
    mask-fidelity records and figures, Freiche et al.'s figures 3-4, the ControlNet exports."""
    from sonodiff.contracts.layout import Layout
    from sonodiff.contracts.model_folder import load_model_folder

    layout = Layout(str(results))
    latent = [d for d, ds in config["datasets"].items() if ds.get("family") == "latent"]
    assert latent, "the demo has a latent dataset"
    table = pd.read_csv(layout("table", name="classification", fmt="csv")).to_csv()
    for d in latent:
        assert d in table
        for v in config["variants"]:
            record = json.loads(Path(layout("fidelity_record", dataset=d, variant=v)).read_text())
            assert record["counts"]["images"] > 0 and record["dice"]["lesion"]["status"] == "ok"
            assert Path(layout("figure", kind="mask_fidelity", name=f"{d}/{v}")).is_file()
            assert load_model_folder(layout("export_dir", dataset=d, variant=v)).spec["kind"] == "controlnet"
        for kind in ("latent_classes", "latent_masks"):
            assert Path(layout("figure", kind=kind, name=d)).is_file()


#: Jobs upstream of the metrics: none may re-run for an edit of a metrics key.
UPSTREAM_OF_METRICS = {"simulate_phantom", "download", "prepare_dataset", "augment_labels", "train_model",
                       "plan_samples", "sample_shard", "gather_samples", "reverse_snapshots", "train_segmenter",
                       "export_nnunet"}


@pytest.mark.slow
def test_tiny_dag_runs_again_only_downstream_of_an_edited_metrics_key(dag_run, tmp_path):
    """Rules get only the config sections they read: a new metrics.bootstrap re-runs the metrics
    and the tables, no download, preparation, training or sampling (a dry run on the finished DAG)."""
    import yaml

    raw = yaml.safe_load(TEST_CONFIG.read_text())
    raw["metrics"]["bootstrap"] = int(raw["metrics"].get("bootstrap", 1000)) + 7
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(raw, sort_keys=False))   # as a user's edit: the keys keep their order
    proc = run_snakemake(dag_run, "-n", "--quiet", "rules", configfile=edited, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    scheduled = set(re.findall(r"^(\w+)\s+\d+$", proc.stdout + proc.stderr, flags=re.M)) - {"total"}
    assert {"compute_metrics", "make_tables", "segmentation_table"} <= scheduled, scheduled
    assert not scheduled & UPSTREAM_OF_METRICS, sorted(scheduled & UPSTREAM_OF_METRICS)


@pytest.mark.slow
def test_tiny_dag_runs_only_the_model_export_again_for_a_new_data_licence(dag_run, tmp_path):
    """A dataset's licence is read by the model card alone: setting it re-exports the models (and
    rewrites the provenance record), nothing else."""
    import yaml

    raw = yaml.safe_load(TEST_CONFIG.read_text())
    for dataset in raw["datasets"].values():
        dataset["licence"] = "CC BY-NC-SA 4.0"
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(raw, sort_keys=False))
    proc = run_snakemake(dag_run, "-n", "--quiet", "rules", configfile=edited, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    scheduled = set(re.findall(r"^(\w+)\s+\d+$", proc.stdout + proc.stderr, flags=re.M)) - {"total", "default", "all"}
    assert "export_model" in scheduled and scheduled <= {"export_model", "provenance"}, scheduled  # provenance
    # records the whole config it ran with
