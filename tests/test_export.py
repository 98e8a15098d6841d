"""Exported model folders: loaded with safetensors alone they sample the model file's images pixel
for pixel; config.json and the weights; the model card; a garbled file; replacing an old folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

from sonodiff.contracts.layout import EXPORTED_CONFIG, EXPORTED_DEPTH, EXPORTED_WEIGHTS, MODEL_CARD, TRAIN_LOG
from sonodiff.contracts.manifest import read_manifest
from sonodiff.contracts.metrics_record import write_metrics_record
from sonodiff.contracts.model_file import load_model, read_model_file
from sonodiff.contracts.model_folder import CONFIG_KEYS, FOLDER_FORMAT, load_model_folder
from sonodiff.errors import InputError
from sonodiff.export.model import export_model
from sonodiff.models import build_model
from sonodiff.sample import sample_all
from sonodiff.train import train
from tiny_data import make_augmented, make_dataset, prepared, tiny_config

OK = {"status": "ok", "n": [20, 3]}
NA = {"value": None, "ci": None, "status": "n/a", "reason": "no Inception weights"}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A tiny semantic and a tiny unconditional model (2 steps each), their datasets and label maps."""
    root = tmp_path_factory.mktemp("export")
    out = {}
    for kind, labelled in (("semantic", True), ("unconditional", False)):
        data = make_dataset(root / kind / "data", labelled=labelled)
        labels = make_augmented(data, root / kind / "augment", copies=1) if labelled else None
        model = train(tiny_config(train={"steps": 2}), prepared(data), root / kind / "model" / "model.pt",
                      progress=False)
        out[kind] = model, labels, data
    return out


def record_file(path):
    write_metrics_record(path, {
        "dataset": "tiny", "variant": "bmaps", "counts": {"synthetic_images": 20, "real_images": 3, "pairs": 3},
        "bootstrap": {"method": "percentile, patients resampled"},
        "fid": {"64": {"value": 12.5, "ci": [10.25, 15.75], "layer": "first max pooling", **OK},
                "2048": {**NA, "layer": "pool3"}},
        "kid": {"64": {"value": 0.0123, "ci": [0.0101, 0.0155], **OK}},
        "paired": {"ssim": {"mean": {"value": 0.61, "ci": [0.55, 0.67], **OK}}, "lpips": {"mean": NA}},
        "physics": {"rows": [
            {"metric": "depth profile", "region": "sector", "quantity": "L1 synthetic vs real",
             "value": 0.042, "ci": [0.031, 0.054], **OK},
            {"metric": "gCNR", "region": "a vs b", "quantity": "real, identical-distribution baseline",
             "value": 0.1, "ci": None, **OK}]}})
    return path


def export(model, data, folder, **kw):
    return export_model(model, folder, dataset_info_path=prepared(data).info_path,
                        train_log_path=model.parent / TRAIN_LOG, **kw)


def pixels(manifest) -> dict:
    df = read_manifest(manifest)
    return {sid: np.asarray(Image.open(p)) for sid, p in zip(df["sample_id"], df["image"])}


@pytest.mark.parametrize("kind", ["semantic", "unconditional"])
def test_the_folder_samples_the_model_files_images_without_torch_load(tmp_path, models, kind, monkeypatch):
    model, labels, data = models[kind]
    folder = export(model, data, tmp_path / "export")
    cfg = tiny_config(sample={"shards": 1, "max_label_maps": 6, "count": 4})
    sector = prepared(data).sector_path
    want = pixels(sample_all(cfg, model, labels, tmp_path / "pt" / "manifest.csv", progress=False, sector=sector))
    original = load_model(model)

    def no_pickles(*args, **kwargs):
        raise AssertionError("torch.load called on an exported folder")

    monkeypatch.setattr(torch, "load", no_pickles)
    got = pixels(sample_all(cfg, folder, labels, tmp_path / "folder" / "manifest.csv", progress=False, sector=sector))
    assert len(want) == (6 if kind == "semantic" else 4) and want.keys() == got.keys()
    assert all(np.array_equal(want[k], got[k]) for k in want), "an image of the folder differs from model.pt's"
    loaded = load_model_folder(folder)
    assert loaded.config == original.config and loaded.spec == original.spec and loaded.step == original.step
    assert loaded.conditional == (kind == "semantic")
    assert torch.equal(loaded.diffusion.depth, original.diffusion.depth)


def test_config_json_and_the_weights_load_on_their_own(tmp_path, models):
    model, _, data = models["semantic"]
    folder = export(model, data, tmp_path / "export")
    payload = read_model_file(model)
    text = (folder / EXPORTED_CONFIG).read_text()
    with open(folder / EXPORTED_CONFIG) as handle:
        doc = json.load(handle)
    assert text == json.dumps(doc, indent=2, sort_keys=True) + "\n"
    assert set(CONFIG_KEYS) <= set(doc) and {"structures", "sector_id", "dataset_counts"} <= set(doc)
    assert doc["format"] == FOLDER_FORMAT and doc["dataset"] == "tiny" and doc["variant"] == "bmaps"
    assert doc["spec"] == payload["spec"] and doc["step"] == payload["step"] == 2
    assert doc["image_shape"] == [1, 16, 16] and doc["img_size"] == 16 and doc["b_min"] == 0.97
    assert doc["labels"] == {"background": 0, "blob": 1, "sector": 2} and doc["sector_id"] == 2
    assert doc["probe"]["type"] == "convex" and "sector_threshold" in doc["probe"]
    assert doc["diffusion"]["vlb_convention"] == "sum" and doc["sample"]["sampler"] == "ddim"
    assert doc["sonodiff_version"] and "train" in doc["config"] and "diffusion" not in doc["config"]

    net = build_model(doc["spec"])
    weights = load_file(folder / EXPORTED_WEIGHTS)
    net.load_state_dict(weights, strict=True)
    assert weights.keys() == payload["state_dict"].keys()
    assert all(torch.equal(weights[k], payload["state_dict"][k]) for k in weights)
    with safe_open(folder / EXPORTED_WEIGHTS, "pt") as handle:
        assert handle.metadata() == {"format": FOLDER_FORMAT}
    assert torch.equal(load_file(folder / EXPORTED_DEPTH)["depth"], payload["depth"])


def card_parts(folder):
    text = (folder / MODEL_CARD).read_text()
    assert text.startswith("---\n")
    head, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(head), body


def test_the_model_card(tmp_path, models):
    model, _, data = models["semantic"]
    cfg = tiny_config()
    folder = export(model, data, tmp_path / "a", metrics_record_path=record_file(tmp_path / "m.json"), cfg=cfg)
    head, body = card_parts(folder)
    assert head["license"] == "unknown" and head["library_name"] == "sonodiff"
    assert {"ultrasound", "diffusion", "sonodiff"} <= set(head["tags"])
    assert "licence of the training data is unknown" in body and "check the data's terms" in body
    assert "| FID (first max pooling) | 12.5 | [10.25, 15.75] |" in body
    assert "| KID (64 features) | 0.0123 | [0.0101, 0.0155] |" in body
    assert "| SSIM (mean over pairs) | 0.61 | [0.55, 0.67] |" in body
    assert "| FID (pool3) | not computed (no Inception weights) | |" in body
    assert "depth profile, sector: L1 synthetic vs real | 0.042 | [0.031, 0.054]" in body
    assert "identical-distribution baseline" not in body
    assert "b_min = 0.97" in body and "final training loss:" in body and "not for clinical use" in body.lower()
    assert "load_model_folder" in body and "sonodiff sample --model" in body

    licensed = {**cfg, "data": {**cfg["data"], "licence": "CC BY-NC-SA 4.0"}}
    head, body = card_parts(export(model, data, tmp_path / "b", cfg=licensed))
    assert head["license"] == "other" and head["license_name"] == "CC BY-NC-SA 4.0"
    assert "Metrics: not computed" in body and "CC BY-NC-SA 4.0" in body
    simulated = {**cfg, "data": {**cfg["data"], "source": {"simulate": {"phantom": "camus"}}}}
    head, body = card_parts(export(model, data, tmp_path / "c", cfg=simulated))
    assert head["license"] == "mit" and "simulated by sonodiff's phantoms (MIT)" in body


def test_a_truncated_or_missing_file_is_an_input_error(tmp_path, models):
    model, _, data = models["unconditional"]
    folder = export(model, data, tmp_path / "export")
    weights = folder / EXPORTED_WEIGHTS
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    for load in (load_model_folder, load_model):
        with pytest.raises(InputError, match="model.safetensors") as err:
            load(folder)
        assert "\n" not in str(err.value) and err.value.where == str(weights)
    (folder / EXPORTED_CONFIG).write_text("{not json")
    with pytest.raises(InputError, match="config.json: unreadable"):
        load_model_folder(folder)
    (folder / EXPORTED_CONFIG).unlink()
    with pytest.raises(InputError, match="config.json: model folder config not found"):
        load_model_folder(folder)


def test_export_replaces_an_old_folder_and_leaves_no_temporary(tmp_path, models, monkeypatch):
    model, _, data = models["unconditional"]
    folder = tmp_path / "export" / "tiny"
    export(model, data, folder)
    (folder / "stale.txt").write_text("from an older export")
    export(model, data, folder, metrics_record_path=record_file(tmp_path / "m.json"))
    assert sorted(p.name for p in folder.iterdir()) == sorted([EXPORTED_CONFIG, EXPORTED_DEPTH, EXPORTED_WEIGHTS,
                                                               MODEL_CARD])
    assert [p.name for p in folder.parent.iterdir()] == ["tiny"]
    assert "12.5" in (folder / MODEL_CARD).read_text()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("safetensors.torch.save_file", fail)
    with pytest.raises(OSError, match="disk full"):
        export(model, data, folder)
    assert [p.name for p in folder.parent.iterdir()] == ["tiny"] and "12.5" in (folder / MODEL_CARD).read_text()
