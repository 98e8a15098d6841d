"""The latent family's whole DAG (Freiche et al. 2025) on the twenty real BUSI cases in
tests/data/busi: the BUSI converter, the autoencoder, the prompt models (baseline and B-maps), the
ControlNets, the fraction generator, the prompt-only and mask-conditioned sample sets, the
classification check and its table, mask fidelity and figures 3-4.

One test, run with the demo's (``make test-demo``, which CI runs after ``make test``): its ~30
jobs, each importing torch, diffusers and transformers, would take ``make test`` past its 10
minutes; the unit tests of the latent family (tests/test_latent.py) stay there."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from conftest import ROOT, TEST_CONFIG, run_snakemake
from sonodiff.contracts.layout import Layout
from sonodiff.contracts.manifest import read_manifest
from sonodiff.contracts.model_file import load_model, read_model_file

BUSI = ROOT / "tests" / "data" / "busi"
CLASSES = ["benign", "malignant", "normal"]
#: The latent family at the test config's size: 16 px images, 8 px latents.
TINY_BUSI = {
    "format": "busi", "family": "latent", "source": {"path": str(BUSI), "subdir": "Dataset_BUSI_with_GT"},
    "img_size": 16, "labels": {"background": 0, "lesion": 1}, "probe": "linear",
    "sample": {"shards": 1, "count": 2}, "segment": {"sources": ["real"]},
    "latent": {"autoencoder": {"channels": [8, 16], "latent_channels": 4, "norm_num_groups": 4, "steps": 10,
                               "batch_size": 4},
               "unet": {"channels": [16, 32], "attention_head_dim": 8, "norm_num_groups": 8},
               "text_encoder": {"hidden_size": 16, "intermediate_size": 32, "layers": 1, "heads": 2, "max_length": 8},
               "controlnet": {"conditioning_channels": [8, 16], "steps": 4, "lr": 1.0e-3}},
    "classify": {"arch": "resnet18", "steps": 4, "batch_size": 8, "seeds": [0], "fraction": 0.5},
}


@pytest.mark.slow
@pytest.mark.demo
@pytest.mark.timeout(1800)
def test_the_latent_dag_runs_on_real_busi_cases(tmp_path):
    config = yaml.safe_load(TEST_CONFIG.read_text())
    config["datasets"] = {"tiny_busi": TINY_BUSI}
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config, sort_keys=False))
    work = tmp_path / "run"
    d, rel = "tiny_busi", Layout("results")
    # the latent family's own outputs (the metrics, report and export rules are the pixel models'
    # and run in the tiny DAG; the export of a ControlNet is tested in test_latent.py)
    targets = [rel("table", name="classification", fmt="csv"), rel("figure", kind="latent_classes", name=d),
               rel("figure", kind="latent_masks", name=d)]
    targets += [rel("fidelity_record", dataset=d, variant=v) for v in ("baseline", "bmaps")]
    proc = run_snakemake(work, "--cores", "2", *targets, configfile=configfile, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-8000:]
    L = Layout(str(work / "results"))

    # the BUSI converter kept the class; every model is of its kind, and the B-maps act on latents
    prepared = read_manifest(L("dataset_manifest", dataset=d))
    assert sorted(set(prepared["class"])) == CLASSES and len(prepared) == 20
    assert read_model_file(L("autoencoder", dataset=d))["spec"]["kind"] == "autoencoder"
    for v, b_min in (("baseline", 1.0), ("bmaps", 0.97)):
        prompt = load_model(L("model", dataset=d, variant=v))
        assert prompt.spec["kind"] == "latent" and prompt.classes == CLASSES and prompt.image_shape == (4, 8, 8)
        assert prompt.config["diffusion"]["b_min"] == b_min
        controlnet = read_model_file(L("controlnet_model", dataset=d, variant=v))
        assert controlnet["spec"]["kind"] == "controlnet"
        base = read_model_file(L("model", dataset=d, variant=v))["state_dict"]
        assert all(np.array_equal(controlnet["state_dict"][f"base.{k}"], t) for k, t in base.items())

        # prompt-only: sample.count images per class; ControlNet: one per label map, its source's class
        rows = read_manifest(L("prompt_samples_manifest", dataset=d, variant=v, generator="prompt"))
        assert rows["class"].value_counts().to_dict() == {c: 2 for c in CLASSES}
        assert all(np.asarray(Image.open(p)).shape == (16, 16) for p in rows["image"])
        sets = read_manifest(L("samples_manifest", dataset=d, variant=v))
        by_id = dict(zip(prepared["sample_id"], prepared["class"]))
        assert (sets["label"] != "").all() and list(sets["class"]) == [by_id[s] for s in sets["source_sample_id"]]
        assert not set(sets["split"]) & {"test"}

        fidelity = json.loads((work / "results" / "segment" / d / f"fidelity_{v}.json").read_text())
        assert fidelity["counts"]["images"] == len(sets)
        assert fidelity["counts"]["patients"] == sets["patient_id"].nunique()
        assert (work / "results" / "figures" / "mask_fidelity" / d / f"{v}.png").is_file()

    fraction = read_manifest(L("prompt_samples_manifest", dataset=d, variant="baseline", generator="fraction"))
    assert set(fraction["class"]) == set(CLASSES)

    # the classification table: every source, the paired difference against real, the published values
    table = pd.read_csv(L("table", name="classification", fmt="csv"))
    text = table.to_csv()
    for source in ("real", "synthetic baseline", "synthetic bmaps", "50%"):
        assert source in text, source
    assert "0.87" in text and "0.81" in text
    for source in ("real", "real+synthetic_baseline", "real+synthetic_bmaps", "synthetic_baseline"):
        record = json.loads(open(L("classify_record", dataset=d, source=source)).read())
        test = record["test_sets"]["test"]
        assert test["n_patients"] == prepared[prepared["split"] == "test"]["patient_id"].nunique()
    for kind in ("latent_classes", "latent_masks"):
        assert Image.open(L("figure", kind=kind, name=d)).size[0] > 100
