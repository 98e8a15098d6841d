"""The latent family (Freiche et al. 2025): its networks, B-maps on the latent grid, training the
autoencoder, prompt model and ControlNet, sampling from a prompt and from a prompt and a mask,
and the exported folder. diffusers' schedulers are the oracle with B-maps off."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from sonodiff.config import check_pretrained_folders, validate_config
from sonodiff.contracts.layout import TRAIN_LOG
from sonodiff.contracts.manifest import read_manifest, write_manifest
from sonodiff.contracts.model_file import load_model, read_model_file
from sonodiff.diffusion.depth import convex_depth, latent_depth, linear_depth
from sonodiff.diffusion.sampling import sample_loop
from sonodiff.errors import InputError
from sonodiff.export.model import export_model
from sonodiff.models import build_model
from sonodiff.models.latent import controlnet_spec, latent_spec, word_tokenizer
from sonodiff.sample import sample_all, sampling_jobs
from sonodiff.sample.generate import generate
from sonodiff.train.latent import (
    dataset_classes, fraction_rows, read_autoencoder, reconstruction_error, train_autoencoder, train_controlnet,
    train_latent,
)
from tiny_data import ROOT, make_augmented, make_dataset, prepared, tiny_latent_config

diffusers = pytest.importorskip("diffusers")

CLASSES = ("benign", "malignant", "normal")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny classed dataset, its autoencoder, baseline and B-map prompt models and a ControlNet."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("latent")
    data = make_dataset(root / "data", n=12, classes=CLASSES)
    ds = prepared(data)
    ae = train_autoencoder(tiny_latent_config(), ds, root / "ae" / "model.pt", progress=False)
    models = {v: train_latent(tiny_latent_config(v), ds, root / v / "model.pt", autoencoder=ae, progress=False)
              for v in ("baseline", "bmaps")}
    controlnet = train_controlnet(tiny_latent_config("bmaps"), ds, models["bmaps"],
                                  root / "bmaps" / "controlnet" / "model.pt", progress=False)
    return {"data": data, "ae": ae, "controlnet": controlnet, "labels": make_augmented(data, root / "aug", 1),
            **models}


# ---------------------------------------------------------------------------- networks
def _spec(learn_sigma=True):
    cfg = tiny_latent_config(diffusion={"learn_sigma": learn_sigma})
    return cfg, latent_spec(cfg, CLASSES, 1, 16)


def test_every_prompt_word_is_in_the_tiny_vocabulary_and_the_prompts_differ():
    prompts = [f"Ultrasound image of a {c} breast" for c in CLASSES]
    tok = word_tokenizer(prompts)
    for p in prompts:
        ids = tok(p)["input_ids"]
        assert tok.unk_token_id not in ids[1:-1], p  # the end token doubles as unknown in CLIP
        assert tok.decode(ids, skip_special_tokens=True).replace(" ", "") == p.lower().replace(" ", "")
    _, spec = _spec()
    assert len({tuple(ids) for ids in spec["prompt_ids"]}) == len(CLASSES) + 1  # and the empty prompt


def test_the_controlnet_at_initialisation_leaves_the_base_models_output_unchanged():
    _, spec = _spec()
    torch.manual_seed(0)
    base = build_model(spec).eval()
    for p in base.unet.parameters():  # a base model that is not at its own initialisation
        p.data.add_(0.05 * torch.randn_like(p))
    net = build_model(controlnet_spec(spec, 3, [8, 16])).eval()
    net.base.load_state_dict(base.state_dict())
    net.init_from_base()
    zero = [m for name, m in net.controlnet.named_modules() if "zero" in name or "controlnet_down_blocks" in name
            or "controlnet_mid_block" in name]
    assert zero and all(float(p.detach().abs().max()) == 0 for m in zero for p in m.parameters())
    g = torch.Generator().manual_seed(1)
    z = torch.randn(4, 4, 8, 8, generator=g)
    t = torch.tensor([0, 3, 6, 9])
    labels = torch.randint(0, 3, (4, 16, 16), generator=g)
    classes = torch.tensor([0, 1, 2, 0])
    with torch.no_grad():
        want = base(z, t, base.condition(None, classes))
        got = net(z, t, net.condition(labels, classes))
        other = net(z, t, net.condition(torch.zeros_like(labels), classes))
    assert torch.equal(got, want) and torch.equal(other, want)
    # and the residuals are live: one step of gradient on the zero convolutions changes the output
    for p in net.controlnet.controlnet_mid_block.parameters():
        p.data.fill_(0.01)
    with torch.no_grad():
        assert not torch.allclose(net(z, t, net.condition(labels, classes)), want)


def test_caption_dropout_and_null_use_the_empty_prompt():
    _, spec = _spec()
    net = build_model(spec).eval()
    cond = net.condition(None, torch.tensor([0, 1, 2]))
    dropped = net.drop(cond, torch.tensor([True, False, True]))
    null = net.prompt_embeddings()[-1]
    assert torch.equal(dropped["text"][0], null) and torch.equal(dropped["text"][2], null)
    assert torch.equal(dropped["text"][1], cond["text"][1]) and not torch.equal(cond["text"][1], null)
    assert torch.equal(net.null(cond)["text"], null.expand_as(cond["text"]))


# ---------------------------------------------------------------------------- latent depth
def test_the_latent_depth_map_is_the_pixel_one_resampled():
    f, size = 4, 32
    d = latent_depth(linear_depth(size, size), f)
    rows = (f * np.arange(size // f) + (f - 1) / 2) / (size - 1)  # closed form of a linear probe
    assert d.shape == (8, 8)
    assert np.allclose(d.numpy(), np.repeat(rows[:, None], 8, axis=1), atol=1e-6)
    fan = convex_depth(size, size, (-4.0, 16.0), 36.0, 70.0, 4.0)
    cells = fan.numpy().reshape(8, f, 8, f).mean(axis=(1, 3))
    assert np.allclose(latent_depth(fan, f).numpy(), cells, atol=1e-6)
    with pytest.raises(InputError, match="does not divide"):
        latent_depth(linear_depth(30, 30), 4)


def test_a_trained_latent_model_noises_its_latents_over_the_resampled_depth(trained):
    loaded = load_model(trained["bmaps"])
    dataset = prepared(trained["data"])
    assert loaded.latent and loaded.image_shape == (4, 8, 8) and loaded.output_shape == (1, 16, 16)
    assert torch.allclose(loaded.diffusion.depth.float(), latent_depth(dataset.depth_map(), 2))
    bmap = loaded.diffusion.bmap(loaded.diffusion.num_steps - 1)
    deep, shallow = bmap[-1].mean(), bmap[0].mean()
    assert deep < shallow  # deep latent pixels noised faster, as the pixel B-maps do


# ---------------------------------------------------------------------------- diffusers as oracle
def _ddim(loaded):
    """diffusers' DDIM over the process's own betas in float64 (diffusers rounds them to float32,
    which the last steps' 1 / sqrt(alphabar_t) magnifies; the schedules are compared in
    test_diffusion_oracle)."""
    sched = diffusers.DDIMScheduler(num_train_timesteps=loaded.diffusion.num_steps,
                                    beta_schedule="squaredcos_cap_v2", clip_sample=False, set_alpha_to_one=True,
                                    prediction_type="epsilon")
    sched.betas = torch.from_numpy(loaded.diffusion.betas).double()
    sched.alphas = 1.0 - sched.betas
    sched.alphas_cumprod = torch.cumprod(sched.alphas, dim=0)
    sched.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64)
    return sched


def test_with_bmaps_off_the_latent_process_is_diffusers_ddpm_and_ddim(trained):
    loaded = load_model(trained["baseline"])
    process = loaded.diffusion
    sched = diffusers.DDPMScheduler(num_train_timesteps=process.num_steps, beta_schedule="squaredcos_cap_v2")
    sched.alphas_cumprod = torch.cumprod(1.0 - sched.betas.double(), dim=0)
    dataset = prepared(trained["data"])
    images = torch.from_numpy(dataset.images(dataset.rows("train")))[:, None]
    z0 = loaded.model.encode(images.float() / 127.5 - 1).double()
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(z0.shape, generator=g, dtype=torch.float64)
    t = torch.arange(len(z0)) % process.num_steps
    assert (process.q_sample(z0, t, noise) - sched.add_noise(z0, noise, t)).abs().max() < 1e-6

    # a whole deterministic chain (DDIM, eta 0, every step) with the latent UNet itself (in float64:
    # near t = T the chain divides by sqrt(alphabar_T) and would magnify float32 rounding)
    net = loaded.model.double()
    cond = net.condition(None, torch.tensor([0, 1, 2]))

    def output(x, steps):  # (eps, v): the learned variance is unused by DDIM at eta 0
        with torch.no_grad():
            return net(x, steps, cond)

    x_t = torch.randn(3, 4, 8, 8, generator=g, dtype=torch.float64)
    ours = sample_loop(process.respace("full"), output, x_t.clone(), sampler="ddim", clip_x0=False, progress=False)
    ddim = _ddim(loaded)
    ddim.set_timesteps(process.num_steps)
    x = x_t.clone()
    for step in ddim.timesteps:
        eps = output(x, torch.full((3,), int(step)))[:, :4]
        x = ddim.step(eps, int(step), x, eta=0.0).prev_sample
    assert torch.allclose(ours, x, rtol=1e-9, atol=1e-9)

    bmaps = load_model(trained["bmaps"]).diffusion
    assert (bmaps.q_sample(z0, t, noise) - sched.add_noise(z0, noise, t)).abs().max() > 1e-3


# ---------------------------------------------------------------------------- training
def test_the_autoencoder_reconstructs_and_standardises_its_latents_per_channel(trained):
    config, _ = read_autoencoder(trained["ae"])
    dataset = prepared(trained["data"])
    images = torch.from_numpy(dataset.images(dataset.rows("train")))[:, None]
    err = reconstruction_error(trained["ae"], images)
    assert err < 0.5  # [-1, 1] units; an untrained decoder is off by about 1
    loaded = load_model(trained["baseline"])
    assert loaded.model.vae.config.latents_mean == config["latents_mean"]
    z = loaded.model.encode(images.float() / 127.5 - 1)
    assert torch.allclose(z.mean(dim=(0, 2, 3)), torch.zeros(4), atol=1e-4)
    assert torch.allclose(z.std(dim=(0, 2, 3)), torch.ones(4), atol=1e-3)
    x = images.float() / 127.5 - 1  # decode inverts the standardisation: D(z s + m) = D(mean E(x))
    vae = loaded.model.vae
    assert torch.allclose(loaded.model.decode(z), vae.decode(vae.encode(x).latent_dist.mean).sample.clamp(-1, 1),
                          atol=1e-5)


def test_the_unet_and_autoencoder_stay_frozen_while_the_controlnet_trains(trained):
    base = read_model_file(trained["bmaps"])["state_dict"]
    cn = read_model_file(trained["controlnet"])
    state = cn["state_dict"]
    for key, value in base.items():
        assert torch.equal(state[f"base.{key}"], value), key
    changed = [k for k, v in state.items() if k.startswith("controlnet.") and "zero" in k or
               k.startswith("controlnet.controlnet_")]
    assert changed and any(float(state[k].abs().max()) > 0 for k in changed), "the zero convolutions did not learn"
    assert cn["config"]["train"]["steps"] == tiny_latent_config()["latent"]["controlnet"]["steps"]
    assert (trained["controlnet"].parent / TRAIN_LOG).is_file()


def test_a_dataset_without_classes_is_refused_naming_its_manifest(tmp_path):
    data = make_dataset(tmp_path / "data", n=6)
    with pytest.raises(InputError, match="manifest.csv"):
        dataset_classes(prepared(data))


def test_the_fraction_generator_takes_whole_patients_of_every_class():
    rows = pd.DataFrame({"patient_id": [f"p{i // 2}" for i in range(40)],
                         "class": [CLASSES[(i // 2) % 3] for i in range(40)], "sample_id": range(40)})
    part = fraction_rows(rows, 0.2, seed=0)
    assert set(part["class"]) == set(CLASSES)
    for _, group in part.groupby("patient_id"):
        assert len(group) == 2  # both images of a chosen patient
    assert part["patient_id"].nunique() == sum(int(np.ceil(0.2 * n)) for n in (7, 7, 6))
    assert not fraction_rows(rows, 0.2, seed=0).equals(fraction_rows(rows, 0.2, seed=5))


# ---------------------------------------------------------------------------- sampling and export
def test_prompt_plans_hold_count_images_per_class_and_controlnet_plans_their_sources_class(trained):
    data = trained["data"]
    classes = dict(zip(*(read_manifest(data / "manifest.csv")[c] for c in ("sample_id", "class"))))
    cfg = tiny_latent_config()
    prompt = sampling_jobs(cfg, None, classes)
    assert list(prompt["class"].value_counts().sort_index()) == [cfg["sample"]["count"]] * 3
    maps = sampling_jobs(cfg, trained["labels"], classes)
    assert (maps["class"] == [classes[s] for s in maps["source_sample_id"]]).all()


def test_sampling_from_prompts_and_masks_makes_images_of_the_real_size(trained, tmp_path):
    cfg = tiny_latent_config("bmaps", sample={"shards": 2, "count": 2})
    data = trained["data"]
    sector = prepared(data).sector_path
    prompt = sample_all(cfg, trained["bmaps"], None, tmp_path / "prompt" / "manifest.csv", progress=False,
                        sector=sector, classes_from=data / "manifest.csv")
    rows = read_manifest(prompt)
    assert sorted(rows["class"]) == sorted(CLASSES * 2)
    images = [np.asarray(Image.open(p)) for p in rows["image"]]
    assert all(im.shape == (16, 16) for im in images)
    outside = ~(np.asarray(Image.open(sector)) > 0)
    assert all((im[outside] == 0).all() for im in images)
    masks = sample_all(cfg, trained["controlnet"], trained["labels"], tmp_path / "cn" / "manifest.csv",
                       progress=False, sector=sector, classes_from=data / "manifest.csv")
    rows = read_manifest(masks)
    assert (rows["label"] != "").all() and set(rows["class"]) <= set(CLASSES)
    broken = read_manifest(tmp_path / "prompt" / "plan.csv").drop(columns=["class"])
    write_manifest(broken, tmp_path / "broken_plan.csv")
    from sonodiff.sample import sample_shard

    with pytest.raises(InputError, match="class"):
        sample_shard(cfg, trained["bmaps"], tmp_path / "broken_plan.csv", tmp_path / "b" / "manifest.csv",
                     progress=False, sector=sector)


def test_an_exported_controlnet_reloads_and_samples_the_same_images(trained, tmp_path, monkeypatch):
    data = trained["data"]
    folder = export_model(trained["controlnet"], tmp_path / "export", dataset_info_path=prepared(data).info_path,
                          train_log_path=trained["controlnet"].parent / TRAIN_LOG)
    original, exported = load_model(trained["controlnet"]), None
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load on an exported folder"))
    exported = load_model(folder)
    assert exported.spec == original.spec and exported.latent
    labels = torch.from_numpy(prepared(data).label_maps(prepared(data).rows("val"))).long()
    classes = torch.arange(len(labels)) % 3
    cfg = tiny_latent_config("bmaps")
    want = generate(original, labels, list(range(len(labels))), cfg, classes=classes)
    got = generate(exported, labels, list(range(len(labels))), cfg, classes=classes)
    assert torch.equal(want, got)


# ---------------------------------------------------------------------------- a pretrained folder
def _stable_diffusion_folder(folder):
    """A Stable Diffusion folder in diffusers' layout, with tiny components (the real one's layout
    and loading path; its weights are random)."""
    cfg, spec = _spec(learn_sigma=False)
    net = build_model(spec)
    net.unet.save_pretrained(folder / "unet")
    net.vae.save_pretrained(folder / "vae")
    net.text_encoder.save_pretrained(folder / "text_encoder")
    word_tokenizer(spec["prompts"]).save_pretrained(folder / "tokenizer")
    diffusers.DDPMScheduler(beta_schedule="scaled_linear").save_pretrained(folder / "scheduler")
    (folder / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    return net


def test_a_pretrained_folder_is_fine_tuned_from_its_own_weights(tmp_path):
    data = make_dataset(tmp_path / "data", n=9, classes=CLASSES)
    pretrained = _stable_diffusion_folder(tmp_path / "sd")
    cfg = tiny_latent_config("baseline", dataset={"latent": {"pretrained": str(tmp_path / "sd")}},
                             diffusion={"alpha_schedule": "scaled_linear", "learn_sigma": False})
    model = train_latent(cfg, prepared(data), tmp_path / "m" / "model.pt", progress=False)
    loaded = read_model_file(model)
    assert loaded["spec"]["prompt_ids"] == _spec(learn_sigma=False)[1]["prompt_ids"]  # the folder's tokenizer
    state = loaded["state_dict"]
    for name, value in pretrained.vae.state_dict().items():  # frozen: the folder's autoencoder as it was
        assert torch.equal(state[f"vae.{name}"], value), name
    for name, value in pretrained.text_encoder.state_dict().items():
        assert torch.equal(state[f"text_encoder.{name}"], value), name
    assert any(not torch.equal(state[f"unet.{name}"], value) for name, value in pretrained.unet.state_dict().items())


def test_stable_diffusion_settings_are_checked_before_any_job(tmp_path):
    with pytest.raises(InputError, match="scaled_linear"):
        tiny_latent_config(dataset={"latent": {"pretrained": str(tmp_path / "sd")}})
    with pytest.raises(InputError, match="learn_sigma"):
        tiny_latent_config(dataset={"latent": {"pretrained": str(tmp_path / "sd")}},
                           diffusion={"alpha_schedule": "scaled_linear"})
    with pytest.raises(InputError, match=r"latent.prompt: the only field"):
        tiny_latent_config(latent={"prompt": "an image of {organ}"})
    raw = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    raw["datasets"] = {"tiny": {"format": "busi", "family": "latent", "source": {"path": "x"},
                                "labels": {"background": 0, "lesion": 1},
                                "latent": {"pretrained": str(tmp_path / "sd")}}}
    raw["diffusion"].update(alpha_schedule="scaled_linear", learn_sigma=False)
    config = validate_config(raw)
    with pytest.raises(InputError, match=r"datasets.tiny.latent.pretrained .*sd\): no Stable Diffusion folder"):
        check_pretrained_folders(config)
    _stable_diffusion_folder(tmp_path / "sd")
    check_pretrained_folders(config)


def test_fetching_stable_diffusion_writes_a_whole_folder_or_none(tmp_path, monkeypatch):
    import huggingface_hub

    from sonodiff.train.latent import fetch_stable_diffusion

    def download(repo, local_dir, allow_patterns):
        assert "unet/diffusion_pytorch_model.safetensors" in allow_patterns
        _stable_diffusion_folder(Path(local_dir))

    monkeypatch.setattr(huggingface_hub, "snapshot_download", download)
    folder = fetch_stable_diffusion("someone/sd", tmp_path / "weights" / "sd")
    assert (folder / "unet" / "config.json").is_file()

    def offline(repo, local_dir, allow_patterns):
        (Path(local_dir) / "unet").mkdir()
        raise OSError("no connection")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(InputError, match=r"latent.pretrained_url \(someone/other\): download failed"):
        fetch_stable_diffusion("someone/other", tmp_path / "weights" / "other")
    assert sorted(p.name for p in (tmp_path / "weights").iterdir()) == ["sd"]  # nothing half-written


def test_a_latent_chain_clips_x0_to_latent_clip_standard_deviations(trained):
    from sonodiff.sample.generate import clip_setting

    latent = load_model(trained["bmaps"])
    scfg = tiny_latent_config()["sample"]
    assert scfg["latent_clip"] == 3.0 and clip_setting(latent, scfg) == 3.0
    assert clip_setting(latent, {**scfg, "latent_clip": None}) is False
    assert clip_setting(latent, {**scfg, "clip_x0": False}) is False
    process = latent.diffusion
    g = torch.Generator().manual_seed(0)
    x_t = 5 * torch.randn(2, 4, 8, 8, generator=g)
    out = torch.randn(2, 8, 8, 8, generator=g) * 20
    t = process.num_steps - 1
    free = process.p_mean_variance(out, x_t, t, clip_x0=False).pred_x0
    three = process.p_mean_variance(out, x_t, t, clip_x0=3.0).pred_x0
    one = process.p_mean_variance(out, x_t, t, clip_x0=True).pred_x0
    assert free.abs().max() > 3 and three.abs().max() == 3.0 and one.abs().max() == 1.0
    assert torch.equal(three, free.clamp(-3, 3))
