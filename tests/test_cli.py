"""The sonodiff command line: help, train -> sample shards -> gather, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from conftest import ROOT
from sonodiff.cli import main
from tiny_data import make_augmented, make_dataset, tiny_config


@pytest.mark.parametrize("command", [[], ["train"], ["sample"], ["gather"]])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: sonodiff" in capsys.readouterr().out


def test_console_script_help():
    proc = subprocess.run([sys.executable, "-m", "sonodiff.cli", "sample", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "--shard" in proc.stdout


def test_train_sample_shards_gather_in_the_workflow_layout(tmp_path, capsys):
    results = tmp_path / "results"
    make_dataset(results / "data" / "tiny")
    make_augmented(results / "data" / "tiny", results / "augment" / "tiny", copies=1)
    tiny_config(tmp_path)
    common = ["--config", str(tmp_path / "config.yaml"), "--dataset", "tiny", "--variant", "baseline",
              "--results", str(results), "--no-progress"]
    assert main(["train", *common, "--set", "train.steps=2"]) == 0
    assert (results / "models" / "tiny" / "baseline" / "model.pt").is_file()
    for shard in ("0/2", "1/2"):
        assert main(["sample", *common, "--shard", shard]) == 0
    assert main(["gather", *common]) == 0
    samples = pd.read_csv(results / "samples" / "tiny" / "baseline" / "manifest.csv")
    assert len(samples) == 10 and samples["image"].str.startswith("images/").all()
    assert (results / "samples" / "tiny" / "baseline" / "config.yaml").is_file()
    plan = pd.read_csv(results / "samples" / "tiny" / "baseline" / "plan.csv")  # written by the shards, read by gather
    assert plan["sample_id"].tolist() == sorted(samples["sample_id"])


def test_bad_override_is_one_line(tmp_path, capsys):
    tiny_config(tmp_path)
    code = main(["train", "--config", str(tmp_path / "config.yaml"), "--dataset", "tiny", "--variant", "bmaps",
                 "--set", "train.stpes=3"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1] == "error: config key train.stpes: unknown key"
    assert main(["sample", "--config", str(tmp_path / "config.yaml"), "--dataset", "tiny"]) == 1
    assert "give --config, --dataset and --variant" in capsys.readouterr().err
    assert main(["sample", "--config", str(tmp_path / "config.yaml"), "--dataset", "tiny", "--variant", "bmaps",
                 "--shard", "2/2"]) == 1
    assert "--shard: need 0 <= I < N" in capsys.readouterr().err


def test_old_sampler_string_is_one_line_naming_the_new_keys(tmp_path, capsys):
    tiny_config(tmp_path)
    code = main(["sample", "--config", str(tmp_path / "config.yaml"), "--dataset", "tiny", "--variant", "bmaps",
                 "--set", "sample.steps=ddim10"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1] == ("error: config key sample.steps: 'ddim10' is the old form; "
                                     "set sample.sampler: ddim and sample.steps: 10")


def test_version_is_the_package_version_everywhere(capsys):
    """`sonodiff --version`, the installed metadata, pyproject.toml and CITATION.cff agree."""
    import importlib.metadata
    import tomllib

    import yaml

    from sonodiff import __version__

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"sonodiff {__version__}"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert project["version"] == importlib.metadata.version("sonodiff") == citation["version"] == __version__
    assert project["license"] == citation["license"] == "MIT" and "MIT License" in (ROOT / "LICENSE").read_text()


def test_every_stage_by_hand_in_the_workflow_layout(tmp_path, capsys):
    """prepare -> train -> sample -> metrics -> segment -> export, then sampling the exported
    folder alone (its own config) gives the images the model file gave, pixel for pixel."""
    import numpy as np
    import yaml

    from sonodiff.io import read_png
    from tiny_data import TINY, deep_update

    raw = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    raw = deep_update(raw, TINY)
    camus = raw["datasets"]["phantom_camus"]
    camus["source"]["simulate"].update(patients=3, size=32)
    camus["img_size"] = 16
    raw["datasets"] = {"phantom_camus": camus}
    raw = deep_update(raw, {"device": "cpu", "augment": {"copies": 1}, "sample": {"shards": 1},
                            "metrics": {"missing_weights": "na", "bootstrap": 10},
                            "segment": {"steps": 2, "val_every": 2, "seeds": [0], "channels": [4, 8],
                                        "strides": [2], "batch_size": 4, "sources": ["real"]}})
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    results = tmp_path / "results"
    base = ["--config", str(config), "--dataset", "phantom_camus", "--results", str(results), "--no-progress"]
    with_variant = [*base, "--variant", "bmaps"]
    assert main(["prepare", *base]) == 0
    assert main(["train", *with_variant]) == 0
    assert main(["sample", *with_variant]) == 0
    assert main(["metrics", *with_variant]) == 0
    assert main(["segment", *base, "--source", "real"]) == 0
    assert main(["export", *with_variant]) == 0
    capsys.readouterr()
    exported = results / "export" / "models" / "phantom_camus" / "bmaps"
    assert {"model.safetensors", "config.json", "README.md"} <= {p.name for p in exported.iterdir()}
    again = tmp_path / "from_folder"
    assert main(["sample", "--model", str(exported), "--out", str(again), "--no-progress",
                 "--labels", str(results / "augment" / "phantom_camus" / "manifest.csv")]) == 0
    first = pd.read_csv(results / "samples" / "phantom_camus" / "bmaps" / "manifest.csv")
    second = pd.read_csv(again / "manifest.csv")
    assert first["sample_id"].tolist() == second["sample_id"].tolist() and len(first) > 0
    for a, b in zip(first["image"], second["image"]):
        assert np.array_equal(read_png(results / "samples" / "phantom_camus" / "bmaps" / a), read_png(again / b))
    for path in (results / "metrics" / "phantom_camus" / "bmaps.json", results / "segment" / "phantom_camus" /
                 "real" / "metrics.json"):
        assert path.is_file()


def test_a_missing_data_folder_and_weights_that_do_not_fit_are_one_line(tmp_path, capsys):
    """No traceback for a --data folder that is not there, nor for a model file whose weights do
    not fit the network its spec describes; --debug shows the traceback."""
    import torch

    tiny_config(tmp_path)
    common = ["--config", str(tmp_path / "config.yaml"), "--dataset", "tiny", "--variant", "baseline",
              "--results", str(tmp_path / "results"), "--no-progress"]
    assert main(["train", *common, "--data", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "nowhere" in err[0] and "Traceback" not in err[0]

    results = tmp_path / "results"
    make_dataset(results / "data" / "tiny")
    assert main(["train", *common, "--set", "train.steps=2"]) == 0
    model = results / "models" / "tiny" / "baseline" / "model.pt"
    payload = torch.load(model, weights_only=True)
    name = next(iter(payload["state_dict"]))
    payload["state_dict"][name] = torch.zeros(3)  # a tensor of the wrong shape
    torch.save(payload, model)
    capsys.readouterr()
    assert main(["sample", *common, "--labels", "none", "--set", "sample.mask_sector=false"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and err[0].startswith(f"error: {model}: weights do not fit the network"), err
    with pytest.raises(Exception):
        main(["sample", *common, "--labels", "none", "--debug"])
