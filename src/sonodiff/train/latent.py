"""Training the latent family (Freiche et al. 2025, with B-maps on the latent grid).

Three jobs, each a file the next reads:

1. :func:`train_autoencoder` (tiny configs only; a pretrained Stable Diffusion folder brings its
   own): an ``AutoencoderKL`` on the train images, minimising per step

       L = |x - D(z)|_1 + w_KL KL(q(z|x) || N(0, I)),   z ~ q(z|x) = N(mu(x), sigma(x)^2)

   (Rombach et al. 2022, sec. 3, with w_KL = ``latent.autoencoder.kl_weight``), then each latent
   channel's mean and std over the train images (``latents_mean``, ``latents_std``) so that the
   latents are standardised per channel (:mod:`sonodiff.models.latent`);
   written as a model file of kind ``autoencoder`` (not resumable: it takes seconds).
2. :func:`train_latent`: the prompt-conditioned UNet on the standardised latents z_0 with the B-map
   process over :func:`~sonodiff.diffusion.depth.latent_depth` of the dataset's depth map, by
   the pixel models' training loop (:func:`sonodiff.train.loop.train`: resumable, EMA, caption
   dropout at ``train.drop_rate``). ``fraction`` trains it on that fraction of the train
   patients (stratified by class; the paper's 20% generator).
3. :func:`train_controlnet`: the ControlNet on the frozen UNet of step 2 and the label maps, with
   ``latent.controlnet.steps`` and ``.lr`` in place of the train section's.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.contracts.model_file import load_model, read_model_file, write_model_file
from sonodiff.diffusion.depth import latent_depth
from sonodiff.errors import InputError
from sonodiff.io import to_model_range
from sonodiff.models import build_model
from sonodiff.models.latent import class_indices, controlnet_spec, latent_factor, latent_spec, load_pretrained_weights, plain, \
    tiny_vae_config
from sonodiff.seeds import derive_seed, generator
from sonodiff.train.data import TrainingSet, load_training_set
from sonodiff.train.loop import Problem, train

log = logging.getLogger(__name__)

#: The manifest column that names an image's class (its prompt).
CLASS_COLUMN = "class"
#: ``spec["kind"]`` of an autoencoder model file.
AUTOENCODER_KIND = "autoencoder"


# ---------------------------------------------------------------------------- classes and rows
def dataset_classes(dataset: PreparedDataset) -> list[str]:
    """The sorted class names of the prepared dataset's ``class`` column (the prompts' classes)."""
    rows = dataset.rows(required=("sample_id", "split", "image", CLASS_COLUMN))
    classes = sorted({str(c) for c in rows[CLASS_COLUMN] if str(c)})
    if not classes:
        raise InputError(dataset.manifest, "the class column is empty: the latent family's prompts need classes")
    return classes


def fraction_rows(rows: pd.DataFrame, fraction: float, seed: int) -> pd.DataFrame:
    """The rows of ``ceil(fraction n_c)`` patients of each class c (at least one), drawn with
    ``derive_seed(seed, "fraction", c)``; a patient counts for the class of its first row."""
    if not 0 < fraction <= 1:
        raise InputError("config key classify.fraction", f"needs 0 < fraction <= 1, got {fraction}")
    first = rows.drop_duplicates("patient_id").set_index("patient_id")[CLASS_COLUMN]
    keep: list[str] = []
    for cls in sorted(set(first)):
        patients = sorted(first.index[first == cls])
        order = np.random.default_rng(derive_seed(seed, "fraction", cls)).permutation(len(patients))
        keep += [patients[i] for i in order[: max(1, math.ceil(fraction * len(patients)))]]
    return rows[rows["patient_id"].isin(keep)].reset_index(drop=True)


def train_rows(dataset: PreparedDataset, fraction: float | None, seed: int) -> pd.DataFrame:
    """The train split's rows with their class (all, or :func:`fraction_rows` of them)."""
    rows = dataset.rows("train", required=("sample_id", "patient_id", "split", "image", CLASS_COLUMN))
    if rows.empty:
        raise InputError(dataset.manifest, "no rows with split 'train'")
    return fraction_rows(rows, fraction, seed) if fraction else rows


@torch.no_grad()
def encode_rows(model: torch.nn.Module, dataset: PreparedDataset, rows: pd.DataFrame, classes: Sequence[str],
                device: torch.device, with_labels: bool, batch_size: int = 32) -> TrainingSet:
    """The latents z_0 of ``rows``' images (encoded once, on ``device``), with their
    class ids and, ``with_labels``, their label maps: the training set of a latent model."""
    if with_labels:
        images, maps = dataset.pairs(rows)
        labels = torch.from_numpy(maps)
    else:
        images, labels = dataset.images(rows), None
    x = to_model_range(torch.from_numpy(images)[:, None])
    model.eval()
    latents = torch.cat([model.encode(x[i:i + batch_size].to(device)).float().cpu()
                         for i in range(0, len(x), batch_size)])
    return TrainingSet(images=latents, labels=labels, num_classes=dataset.num_classes if with_labels else None,
                       sample_ids=list(rows["sample_id"]), classes=class_indices(classes, rows[CLASS_COLUMN], dataset.manifest))


# ---------------------------------------------------------------------------- 0. pretrained folder
#: What :func:`fetch_stable_diffusion` downloads of a Stable Diffusion repository (safetensors weights only).
PRETRAINED_PATTERNS = ("model_index.json", "scheduler/*", "tokenizer/*", "text_encoder/config.json",
                       "text_encoder/model.safetensors", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
                       "vae/config.json", "vae/diffusion_pytorch_model.safetensors")


def fetch_stable_diffusion(repo: str, folder: str | Path) -> Path:
    """Download the parts a latent model reads of the Hugging Face repository ``repo`` (e.g.
    ``stable-diffusion-v1-5/stable-diffusion-v1-5``) into ``folder``, atomically (a folder that
    is there afterwards is whole); then check it as the config check does."""
    from huggingface_hub import snapshot_download

    from sonodiff.config import missing_stable_diffusion_parts
    from sonodiff.io import atomic_dir

    folder = Path(folder)
    with atomic_dir(folder) as tmp:
        try:
            snapshot_download(repo, local_dir=tmp, allow_patterns=list(PRETRAINED_PATTERNS))
        except Exception as err:  # offline, unknown repository, gated model: one line
            raise InputError(f"config key latent.pretrained_url ({repo})",
                             f"download failed ({' '.join(str(err).split())[:200]})") from err
        missing = missing_stable_diffusion_parts(tmp)
        if missing:
            raise InputError(f"config key latent.pretrained_url ({repo})", f"the repository lacks {missing}")
    return folder


# ---------------------------------------------------------------------------- 1. autoencoder
def read_autoencoder(path: str | Path) -> tuple[dict, dict]:
    """The ``vae`` config (with its latent statistics) and weights of an autoencoder model file."""
    payload = read_model_file(path)
    if payload["spec"].get("kind") != AUTOENCODER_KIND:
        raise InputError(path, f"not an autoencoder model file (kind {payload['spec'].get('kind')!r})")
    return dict(payload["spec"]["vae"]), payload["state_dict"]


def train_autoencoder(cfg: Mapping[str, Any], dataset: PreparedDataset, model_out: str | Path,
                      device: torch.device | str = "cpu", progress: bool = True) -> Path:
    """Train the tiny ``AutoencoderKL`` of ``latent.autoencoder`` (module docstring, step 1)."""
    from diffusers import AutoencoderKL

    ae = cfg["latent"]["autoencoder"]
    device = torch.device(device)
    data = load_training_set(dataset)
    config = tiny_vae_config(ae, data.images.shape[1], dataset.img_size)
    torch.manual_seed(cfg["seed"])
    vae = AutoencoderKL.from_config(config).to(device)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=float(ae["lr"]))
    bar = tqdm(range(int(ae["steps"])), desc=f"autoencoder {cfg.get('dataset')}", disable=not progress,
               dynamic_ncols=True)
    vae.train()
    for step in bar:
        x0, _, _ = data.batch(step, int(ae["batch_size"]), cfg["seed"])
        x0 = x0.to(device)
        posterior = vae.encode(x0).latent_dist
        noise = torch.randn(posterior.mean.shape, generator=generator(cfg["seed"], "autoencoder", step))
        z = posterior.mean + posterior.std * noise.to(device)
        recon = vae.decode(z).sample
        loss = (recon - x0).abs().mean() + float(ae["kl_weight"]) * posterior.kl().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
    vae.eval()
    with torch.no_grad():
        means = torch.cat([vae.encode(to_model_range(data.images[i:i + 32]).to(device)).latent_dist.mean.cpu()
                           for i in range(0, len(data), 32)])
    config = {**plain(vae.config), "latents_mean": means.mean(dim=(0, 2, 3)).tolist(),
              "latents_std": means.std(dim=(0, 2, 3)).clamp_min(1e-6).tolist()}
    spec = {"kind": AUTOENCODER_KIND, "vae": config}
    log.info("autoencoder: latent channel means %s, stds %s", config["latents_mean"], config["latents_std"])
    return write_model_file(model_out, vae.state_dict(), spec, cfg, int(ae["steps"]), dataset.depth_map())


def reconstruction_error(vae_path: str | Path, images: torch.Tensor) -> float:
    """Mean |x - D(E(x))| of uint8 images (N, 1, H, W) through an autoencoder model file (in [-1, 1] units)."""
    from diffusers import AutoencoderKL

    config, state = read_autoencoder(vae_path)
    vae = AutoencoderKL.from_config(config)
    vae.load_state_dict(state)
    vae.eval()
    with torch.no_grad():
        x = to_model_range(images)
        return float((vae.decode(vae.encode(x).latent_dist.mean).sample - x).abs().mean())


# ---------------------------------------------------------------------------- 2. latent UNet
def latent_problem(autoencoder: str | Path | None, fraction: float | None = None):
    """The :data:`~sonodiff.train.loop.ProblemFn` of the prompt-conditioned latent UNet: its seeded
    network with the autoencoder (``autoencoder``'s file, or the pretrained folder's) and text
    encoder in place, the train latents and the latent depth map."""

    def build(cfg: Mapping[str, Any], dataset: PreparedDataset, device: torch.device) -> Problem:
        pretrained = cfg["latent"]["pretrained"]
        if not pretrained and autoencoder is None:
            raise InputError("config key latent.pretrained", "is null, so a trained autoencoder file is needed")
        vae, vae_state = (None, None) if pretrained else read_autoencoder(autoencoder)
        classes = dataset_classes(dataset)
        spec = latent_spec(cfg, classes, 1, dataset.img_size, vae=vae)
        torch.manual_seed(cfg["seed"])  # the initial weights
        model = build_model(spec)
        if pretrained:
            load_pretrained_weights(model, pretrained)
        else:
            model.vae.load_state_dict(vae_state)
        model.to(device)
        rows = train_rows(dataset, fraction, cfg["seed"])
        data = encode_rows(model, dataset, rows, classes, device, with_labels=False)
        depth = latent_depth(dataset.depth_map(), latent_factor(spec))
        log.info("latent model: %d images of %d patients, latents %s", len(data), rows["patient_id"].nunique(),
                 tuple(data.images.shape[1:]))
        return Problem(data, depth, spec, model)

    return build


def train_latent(cfg: Mapping[str, Any], dataset: PreparedDataset, model_out: str | Path,
                 autoencoder: str | Path | None = None, fraction: float | None = None,
                 device: str | None = None, progress: bool = True) -> Path:
    """Train the prompt-conditioned latent UNet (module docstring, step 2); returns ``model_out``."""
    return train(cfg, dataset, model_out, device=device, progress=progress,
                 problem=latent_problem(autoencoder, fraction))


# ---------------------------------------------------------------------------- 3. ControlNet
def controlnet_config(cfg: Mapping[str, Any]) -> dict:
    """``cfg`` with ``latent.controlnet.steps`` and ``.lr`` as the train section's."""
    cn = cfg["latent"]["controlnet"]
    return {**cfg, "train": {**cfg["train"], "steps": int(cn["steps"]), "lr": float(cn["lr"])}}


def controlnet_problem(base_model: str | Path):
    """The ProblemFn of a ControlNet on the latent model file ``base_model`` (frozen)."""

    def build(cfg: Mapping[str, Any], dataset: PreparedDataset, device: torch.device) -> Problem:
        base = load_model(base_model)
        if base.spec.get("kind") != "latent":
            raise InputError(base_model, f"a ControlNet needs a latent model, this is {base.spec.get('kind')!r}")
        if dataset.num_classes is None:
            raise InputError(dataset.manifest, "a ControlNet needs label maps")
        spec = controlnet_spec(base.spec, dataset.num_classes, cfg["latent"]["controlnet"]["conditioning_channels"])
        torch.manual_seed(cfg["seed"])
        model = build_model(spec)
        model.base.load_state_dict(base.model.state_dict())
        model.init_from_base()
        model.to(device)
        data = encode_rows(model, dataset, train_rows(dataset, None, cfg["seed"]), base.classes, device,
                           with_labels=True)
        return Problem(data, base.diffusion.depth.float().cpu(), spec, model)

    return build


def train_controlnet(cfg: Mapping[str, Any], dataset: PreparedDataset, base_model: str | Path,
                     model_out: str | Path, device: str | None = None, progress: bool = True) -> Path:
    """Train the ControlNet of ``base_model`` (module docstring, step 3); returns ``model_out``."""
    return train(controlnet_config(cfg), dataset, model_out, device=device, progress=progress,
                 problem=controlnet_problem(base_model))


__all__ = ["fetch_stable_diffusion", "train_autoencoder", "train_latent", "train_controlnet", "dataset_classes", "fraction_rows",
           "read_autoencoder", "reconstruction_error"]
