"""Sampling: sharded == unsharded, guidance 0 == the conditional model, seeds, jobs, gather."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from sonodiff.diffusion.guidance import classifier_free
from sonodiff.diffusion.sampling import sample_loop
from sonodiff.errors import InputError
from sonodiff.manifest import read_manifest
from sonodiff.sample import (
    gather, generate, guided_fn, load_model, parse_steps, read_label_maps, sample_all, sample_shard, sampling_jobs, shard_jobs,
)
from sonodiff.train import train
from sonodiff.train.seeds import derive_seed
from tiny_data import make_augmented, make_dataset, tiny_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny semantic model (a few steps) and 20 augmented label maps."""
    root = tmp_path_factory.mktemp("sample")
    data = make_dataset(root / "data")
    labels = make_augmented(data, root / "augment", copies=2)
    model = train(tiny_config(train={"steps": 4}), data, root / "model", progress=False)
    return model, labels


def pixels(manifest) -> dict:
    df = read_manifest(manifest)
    return {sid: np.asarray(Image.open(p)) for sid, p in zip(df["sample_id"], df["image"])}


def test_sharded_equals_unsharded(tmp_path, trained):
    model, labels = trained
    one = sample_all(tiny_config(sample={"shards": 1}), model, labels, tmp_path / "one", progress=False)
    three = sample_all(tiny_config(sample={"shards": 3}), model, labels, tmp_path / "three", progress=False)
    a, b = pixels(one), pixels(three)
    assert len(a) == 20 and a.keys() == b.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a), "a sharded image differs from the unsharded one"
    assert len({v.tobytes() for v in a.values()}) == len(a)  # every image has its own noise
    ma, mb = pd.read_csv(one), pd.read_csv(three)
    assert ma.drop(columns="image").equals(mb.drop(columns="image"))
    assert list(ma.columns) == ["sample_id", "image", "label", "real_image", "source_sample_id", "patient_id",
                                "split", "seed"]
    assert (tmp_path / "three" / "config.yaml").is_file()
    assert len(list((tmp_path / "three" / "shards").iterdir())) == 3


def test_guidance_scale_zero_is_the_conditional_model_alone(trained):
    model, labels = trained
    cfg = tiny_config(sample={"guidance_scale": 0.0, "steps": "ddim4"})
    loaded = load_model(model)
    batch = sampling_jobs(cfg, labels).iloc[:3]
    labels = read_label_maps(list(batch["label"]), loaded)
    got = generate(loaded, labels, list(batch["seed"]), cfg)

    cond = loaded.model.condition(labels)
    gens = [torch.Generator().manual_seed(int(s)) for s in batch["seed"]]
    x0 = sample_loop(loaded.diffusion.respace("ddim4"), lambda x, t: loaded.model(x, t, cond), (3, 1, 16, 16),
                     gens, ddim=True, eta=0.0, clip_x0=True, progress=False)
    want = ((x0.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    assert torch.equal(got, want)
    guided = generate(loaded, labels, list(batch["seed"]), tiny_config(sample={"guidance_scale": 3.0, "steps": "ddim4"}))
    assert not torch.equal(got, guided)


def test_guided_prediction_is_cfg_of_conditional_and_null(trained):
    model, _ = trained
    loaded = load_model(model)
    with torch.no_grad():  # make the label path matter
        for p in loaded.model.parameters():
            p.add_(0.05 * torch.randn_like(p, generator=torch.Generator().manual_seed(p.numel())))
    x, t = torch.randn(2, 1, 16, 16), torch.tensor([3, 7])
    cond = loaded.model.condition(torch.randint(0, 3, (2, 16, 16)))
    with torch.no_grad():
        out_c, out_u = loaded.model(x, t, cond), loaded.model(x, t, loaded.model.null(cond))
        got = guided_fn(loaded, cond, 2.5, None)(x, t)
    assert not torch.allclose(out_c, out_u)
    torch.testing.assert_close(got, classifier_free(out_c, out_u, 2.5, learn_sigma=True), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got[:, 1:], out_c[:, 1:], rtol=1e-5, atol=1e-5)  # variance from y


def test_jobs_seeds_and_shards(trained):
    _, labels = trained
    cfg = tiny_config()
    jobs = sampling_jobs(cfg, labels)
    assert jobs["sample_id"].is_monotonic_increasing and len(jobs) == 20
    assert jobs["seed"].tolist() == [derive_seed(cfg["seed"], "sample", s) for s in jobs["sample_id"]]
    assert jobs["seed"].nunique() == len(jobs)
    parts = [pd.concat(shard_jobs(jobs, i, 3, batch_size=3)) for i in range(3)]
    assert sorted(pd.concat(parts)["sample_id"]) == sorted(jobs["sample_id"])   # a partition
    capped = sampling_jobs(tiny_config(sample={"max_label_maps": 7}), labels)
    assert len(capped) == 7 and set(capped["sample_id"]) <= set(jobs["sample_id"])
    assert capped.equals(sampling_jobs(tiny_config(sample={"max_label_maps": 7}), labels))
    uncond = sampling_jobs(tiny_config(sample={"count": 5}), None)
    assert len(uncond) == 5 and set(uncond["split"]) == {"val"}
    assert parse_steps("ddim10") == ("ddim10", True) and parse_steps(25) == (25, False)
    assert parse_steps("full") == ("full", False)


def test_unconditional_sampling(tmp_path):
    data = make_dataset(tmp_path / "data", labelled=False)
    model = train(tiny_config(train={"steps": 2}), data, tmp_path / "model", progress=False)
    cfg = tiny_config(sample={"count": 4, "steps": "full"})  # ancestral over all 10 steps
    manifest = sample_all(cfg, model, None, tmp_path / "samples", progress=False)
    df = read_manifest(manifest)
    assert len(df) == 4 and (df["label"] == "").all()
    assert all(np.asarray(Image.open(p)).shape == (16, 16) for p in df["image"])


def test_gather_refuses_missing_or_duplicated_shards(tmp_path, trained):
    model, labels = trained
    cfg = tiny_config(sample={"shards": 2})
    jobs = sampling_jobs(cfg, labels)
    first = sample_shard(cfg, model, jobs, tmp_path / "shards" / "0", 0, 2, progress=False)
    with pytest.raises(InputError, match="missing from the shards"):
        gather(cfg, [first], tmp_path, expected=jobs["sample_id"])
    with pytest.raises(InputError, match="two shards"):
        gather(cfg, [first, first], tmp_path)
    assert not (tmp_path / "manifest.csv").exists()
