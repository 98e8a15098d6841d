"""Sampling: the plan drives the shards, sharded == unsharded, guidance 0 == the conditional model,
seeds, gather's checks, the sector mask, reverse-process snapshots."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from sonodiff.contracts.manifest import read_manifest
from sonodiff.contracts.model_file import load_model, read_model_file, write_model_file
from sonodiff.contracts.samples import FINAL_STEP, PLAN_COLUMNS, read_plan, read_snapshots
from sonodiff.diffusion.guidance import classifier_free
from sonodiff.diffusion.sampling import sample_loop
from sonodiff.errors import InputError
from sonodiff.sample import (
    gather, generate, guided_fn, read_label_maps, read_sector_mask, reverse_chain, sample_all, sample_shard,
    sampling_jobs, shard_batches, shard_manifest_path, write_reverse_snapshots, write_sampling_plan,
)
from sonodiff.seeds import derive_seed
from sonodiff.train import train
from tiny_data import make_augmented, make_dataset, prepared, sector_mask, tiny_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny semantic model (a few steps), 20 augmented label maps and the prepared dataset."""
    root = tmp_path_factory.mktemp("sample")
    data = make_dataset(root / "data")
    labels = make_augmented(data, root / "augment", copies=2)
    model = train(tiny_config(train={"steps": 4}), prepared(data), root / "model" / "model.pt", progress=False)
    return model, labels, data


def sector_of(data):
    return prepared(data).sector_path


def pixels(manifest) -> dict:
    df = read_manifest(manifest)
    return {sid: np.asarray(Image.open(p)) for sid, p in zip(df["sample_id"], df["image"])}


def test_sharded_equals_unsharded(tmp_path, trained):
    model, labels, data = trained
    one = sample_all(tiny_config(sample={"shards": 1}), model, labels, tmp_path / "one" / "manifest.csv", progress=False,
                     sector=sector_of(data))
    three = sample_all(tiny_config(sample={"shards": 3}), model, labels, tmp_path / "three" / "manifest.csv",
                       progress=False, sector=sector_of(data))
    a, b = pixels(one), pixels(three)
    assert len(a) == 20 and a.keys() == b.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a), "a sharded image differs from the unsharded one"
    assert len({v.tobytes() for v in a.values()}) == len(a)  # every image has its own noise
    ma, mb = pd.read_csv(one), pd.read_csv(three)
    assert ma.drop(columns="image").equals(mb.drop(columns="image"))
    assert list(ma.columns) == ["sample_id", "image", "label", "real_image", "source_sample_id", "patient_id",
                                "split", "seed"]
    assert (tmp_path / "three" / "config.yaml").is_file() and (tmp_path / "three" / "plan.csv").is_file()
    assert len(list((tmp_path / "three" / "shards").iterdir())) == 3


def test_the_plan_drives_the_shards(tmp_path, trained):
    """Shards read their batches from the written plan; together they are the unsharded set."""
    model, labels, data = trained
    cfg = tiny_config(sample={"shards": 3})
    plan = write_sampling_plan(cfg, labels, tmp_path / "plan.csv")
    df = read_plan(plan)
    assert tuple(pd.read_csv(plan).columns) == PLAN_COLUMNS
    assert df["sample_id"].is_monotonic_increasing and df["batch"].tolist() == [i // 3 for i in range(20)]
    assert df.drop(columns=["label", "real_image"]).equals(
        sampling_jobs(cfg, labels).drop(columns=["label", "real_image"]))
    set_manifest = tmp_path / "set" / "manifest.csv"
    shards = [sample_shard(cfg, model, plan, shard_manifest_path(set_manifest, i), i, 3, progress=False,
                           sector=sector_of(data)) for i in range(3)]
    for i, shard in enumerate(shards):  # shard i holds the batches b = i mod 3 of the plan
        want = df[df["batch"] % 3 == i]["sample_id"].tolist()
        assert read_manifest(shard)["sample_id"].tolist() == want
    gathered = gather(cfg, shards, plan, set_manifest)
    whole = sample_all(tiny_config(sample={"shards": 1}), model, labels, tmp_path / "one" / "manifest.csv",
                       progress=False, sector=sector_of(data))
    a, b = pixels(gathered), pixels(whole)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert (set_manifest.parent / "images").is_dir() and (set_manifest.parent / "config.yaml").is_file()


def test_guidance_scale_zero_is_the_conditional_model_alone(trained):
    model, labels, _ = trained
    cfg = tiny_config(sample={"guidance_scale": 0.0, "sampler": "ddim", "steps": 4})
    loaded = load_model(model)
    batch = sampling_jobs(cfg, labels).iloc[:3]
    labels = read_label_maps(list(batch["label"]), loaded)
    got = generate(loaded, labels, list(batch["seed"]), cfg)

    cond = loaded.model.condition(labels)
    gens = [torch.Generator().manual_seed(int(s)) for s in batch["seed"]]
    x0 = sample_loop(loaded.diffusion.respace("ddim4"), lambda x, t: loaded.model(x, t, cond), (3, 1, 16, 16),
                     gens, sampler="ddim", eta=0.0, clip_x0=True, progress=False)
    want = ((x0.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    assert torch.equal(got, want)
    guided = generate(loaded, labels, list(batch["seed"]), tiny_config(sample={"guidance_scale": 3.0}))
    assert not torch.equal(got, guided)


def test_sdm_scale_s_is_w_plus_one(trained):
    """SDM's s = w + 1 (guidance_scale_sdm) samples the very images of Ho & Salimans' w, and the
    guided prediction is SDM's eps_u + s (eps_c - eps_u)."""
    model, labels, _ = trained
    loaded = load_model(model)
    batch = sampling_jobs(tiny_config(), labels).iloc[:3]
    maps, seeds = read_label_maps(list(batch["label"]), loaded), list(batch["seed"])
    w = generate(loaded, maps, seeds, tiny_config(sample={"guidance_scale": 2.0}))
    s = generate(loaded, maps, seeds, tiny_config(sample={"guidance_scale_sdm": 3.0}))
    assert torch.equal(w, s) and not torch.equal(w, generate(loaded, maps, seeds, tiny_config()))
    eps_c, eps_u = torch.randn(2, 2, 2, 4, 4, generator=torch.Generator().manual_seed(0))  # (B, 2C, H, W) each
    sdm = eps_u[:, :1] + 3.0 * (eps_c[:, :1] - eps_u[:, :1])
    torch.testing.assert_close(classifier_free(eps_c, eps_u, 2.0)[:, :1], sdm, rtol=1e-6, atol=1e-6)


def test_old_model_file_loads_with_the_summed_vlb(tmp_path, trained):
    """A model.pt from before diffusion.vlb_convention keeps its meaning (sum); a new one its own key."""
    model, _, _ = trained
    payload = read_model_file(model)
    assert payload["config"]["diffusion"]["vlb_convention"] == "sum"
    for stored, want in ((None, "sum"), ("per_step", "per_step")):
        config = copy.deepcopy(payload["config"])
        config["diffusion"].pop("vlb_convention")
        if stored is not None:
            config["diffusion"]["vlb_convention"] = stored
        path = write_model_file(tmp_path / f"{want}.pt", payload["state_dict"], payload["spec"], config,
                                payload["step"], payload["depth"])
        assert load_model(path).diffusion.config["vlb_convention"] == want


def test_guided_prediction_is_cfg_of_conditional_and_null(trained):
    model, _, _ = trained
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
    _, labels, _ = trained
    cfg = tiny_config()
    jobs = sampling_jobs(cfg, labels)
    assert jobs["sample_id"].is_monotonic_increasing and len(jobs) == 20
    assert jobs["seed"].tolist() == [derive_seed(cfg["seed"], "sample", s) for s in jobs["sample_id"]]
    assert jobs["seed"].nunique() == len(jobs)
    parts = [pd.concat(shard_batches(jobs, i, 3)) for i in range(3)]
    assert sorted(pd.concat(parts)["sample_id"]) == sorted(jobs["sample_id"])   # a partition
    assert [len(b) for b in shard_batches(jobs, 0, 3)] == [3, 3, 2]             # batches 0, 3, 6 of 0..6
    with pytest.raises(InputError, match="shard 3 of 3 does not exist"):
        shard_batches(jobs, 3, 3)
    capped = sampling_jobs(tiny_config(sample={"max_label_maps": 7}), labels)
    assert len(capped) == 7 and set(capped["sample_id"]) <= set(jobs["sample_id"])
    assert capped.equals(sampling_jobs(tiny_config(sample={"max_label_maps": 7}), labels))
    uncond = sampling_jobs(tiny_config(sample={"count": 5}), None)
    assert len(uncond) == 5 and set(uncond["split"]) == {"val"}


def test_unconditional_sampling(tmp_path):
    data = make_dataset(tmp_path / "data", labelled=False)
    model = train(tiny_config(train={"steps": 2}), prepared(data), tmp_path / "model" / "model.pt", progress=False)
    cfg = tiny_config(sample={"count": 4, "sampler": "ancestral", "steps": "full"})  # all 10 steps
    manifest = sample_all(cfg, model, None, tmp_path / "samples" / "manifest.csv", progress=False,
                          sector=sector_of(data))
    df = read_manifest(manifest)
    assert len(df) == 4 and (df["label"] == "").all()
    assert all(np.asarray(Image.open(p)).shape == (16, 16) for p in df["image"])


def test_gather_refuses_missing_duplicated_or_unplanned_shards(tmp_path, trained):
    model, labels, data = trained
    cfg = tiny_config(sample={"shards": 2})
    plan = write_sampling_plan(cfg, labels, tmp_path / "plan.csv")
    out = tmp_path / "manifest.csv"
    first = sample_shard(cfg, model, plan, shard_manifest_path(out, 0), 0, 2, progress=False, sector=sector_of(data))
    with pytest.raises(InputError, match="missing from the shards"):
        gather(cfg, [first], plan, out)
    with pytest.raises(InputError, match="two shards"):
        gather(cfg, [first, first], plan, out)
    capped = write_sampling_plan(tiny_config(sample={"max_label_maps": 2}), labels, tmp_path / "capped.csv")
    with pytest.raises(InputError, match="not in the plan"):
        gather(cfg, [first], capped, out)
    assert not out.exists()


def test_a_semantic_model_needs_label_maps(tmp_path, trained):
    model, _, _ = trained
    plan = write_sampling_plan(tiny_config(), None, tmp_path / "plan.csv")
    with pytest.raises(InputError, match="needs label maps"):
        sample_shard(tiny_config(), model, plan, tmp_path / "shard" / "manifest.csv", progress=False)


def test_samples_are_black_outside_the_sector_and_unchanged_inside(tmp_path, trained):
    """sample.mask_sector: every pixel outside sector.png is exactly 0, every pixel inside is the
    unmasked sample's, and the masked set is still the same sharded or not."""
    model, labels, data = trained
    inside = sector_mask(16) > 0
    assert 0 < inside.sum() < inside.size
    plain = pixels(sample_all(tiny_config(sample={"shards": 1, "mask_sector": False}), model, labels,
                              tmp_path / "plain" / "manifest.csv", progress=False))
    masked = pixels(sample_all(tiny_config(sample={"shards": 2}), model, labels, tmp_path / "masked" / "manifest.csv",
                               progress=False, sector=sector_of(data)))
    assert plain.keys() == masked.keys() and len(plain) == 20
    assert np.mean([(v[~inside] > 0).mean() for v in plain.values()]) > 0.2  # unmasked, the outside is not black
    for key in plain:
        assert (masked[key][~inside] == 0).all()
        assert np.array_equal(masked[key][inside], plain[key][inside])
    whole = pixels(sample_all(tiny_config(sample={"shards": 1}), model, labels, tmp_path / "whole" / "manifest.csv",
                              progress=False, sector=sector_of(data)))
    assert all(np.array_equal(whole[k], masked[k]) for k in masked)


def test_the_sector_mask_is_required_and_checked(tmp_path, trained):
    model, labels, _ = trained
    cfg = tiny_config()
    plan = write_sampling_plan(cfg, labels, tmp_path / "plan.csv")
    with pytest.raises(InputError, match="sample.mask_sector: is true but no sector mask"):
        sample_shard(cfg, model, plan, tmp_path / "a" / "manifest.csv", progress=False)
    wrong = tmp_path / "sector24.png"
    Image.fromarray(sector_mask(24)).save(wrong)
    with pytest.raises(InputError, match=r"sector24.png: sector mask is \(24, 24\), the model makes \(16, 16\)"):
        sample_shard(cfg, model, plan, tmp_path / "b" / "manifest.csv", progress=False, sector=wrong)
    assert not (tmp_path / "a" / "manifest.csv").exists() and not (tmp_path / "b" / "manifest.csv").exists()
    assert torch.equal(read_sector_mask(prepared(trained[2]).sector_path, load_model(model)),
                       torch.from_numpy(sector_mask(16) > 0))


def test_reverse_snapshots_file(tmp_path, trained):
    """The snapshots file holds the chain of the model's own sample config on the first val map."""
    model, _, data = trained
    out = write_reverse_snapshots(model, prepared(data), tmp_path / "snapshots.npz", num_snapshots=5,
                                  device="cpu", progress=False)
    steps, frames, label = read_snapshots(out)
    loaded = load_model(model)
    first_val = read_manifest(data / "manifest.csv").query("split == 'val'").sort_values("sample_id").iloc[0]
    want_label = np.array(Image.open(first_val["label"]))
    assert np.array_equal(label, want_label)
    sector = torch.from_numpy(sector_mask(16) > 0)
    want_steps, want_frames = reverse_chain(loaded, want_label, 5, seed=int(loaded.config["seed"]), progress=False,
                                            sector=sector)
    assert steps == want_steps and steps[-1] == FINAL_STEP
    assert steps[:-1] == [9, 6, 3, 0]  # ddim, 4 of the 10 steps (the model's sample config)
    assert frames.shape == (5, 16, 16) and np.array_equal(frames, want_frames)
    assert np.abs(frames[-1]).max() <= 1.0 + 1e-6
    assert (frames[-1][~sector.numpy()] == -1).all()  # x_0 black outside the sector (sample.mask_sector)
    _, unmasked = reverse_chain(loaded, want_label, 5, seed=int(loaded.config["seed"]), progress=False)
    inside = sector.numpy()
    assert np.array_equal(unmasked[:-1], frames[:-1]) and np.array_equal(unmasked[-1][inside], frames[-1][inside])
