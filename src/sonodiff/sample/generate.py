"""One batch of images from a loaded model: guided prediction, the configured sampler, uint8.

The guided prediction is ``eps_hat = (1 + w) eps(x|y) - w eps(x|null)`` (Ho & Salimans 2022;
w = :func:`sonodiff.config.guidance_weight` of the ``sample`` section: ``sample.guidance_scale``,
or SDM's ``sample.guidance_scale_sdm`` s = w + 1; w = 0 evaluates the conditional model alone); the chain is
the sampler ``sample.sampler`` over ``sample.steps`` respaced steps
(:mod:`sonodiff.diffusion.sampling`); with ``sample.mask_sector`` the pixels outside the
dataset's sector mask M (``sector.png``) are set to the data's black, ``x_0 <- -1`` where M = 0
(the real images are masked, so their outside is a constant the network need not learn); a latent
model's chain clips its x_0 to ``sample.latent_clip`` instead of [-1, 1] (:func:`clip_setting`); images
are ``u = round((x_0 + 1) 127.5)`` (:func:`sonodiff.io.to_uint8`), 0 outside the sector.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from sonodiff.config import guidance_weight
from sonodiff.contracts import layout
from sonodiff.contracts.dataset import read_sector
from sonodiff.contracts.model_file import LoadedModel
from sonodiff.device import autocast_dtype
from sonodiff.diffusion.guidance import classifier_free
from sonodiff.diffusion.process import BMapDiffusion
from sonodiff.diffusion.sampling import Sampler, get_sampler, sample_loop
from sonodiff.errors import InputError
from sonodiff.io import read_pngs, to_uint8
from sonodiff.models import cat_conditions
from sonodiff.models.latent import class_indices

#: x_0 outside the sector: the data range's black (uint8 0).
OUTSIDE = -1.0


def configured_process(diffusion: BMapDiffusion, scfg: Mapping[str, Any]) -> tuple[Sampler, BMapDiffusion]:
    """The sampler of a ``sample`` config section and ``diffusion`` respaced to its steps."""
    sampler = get_sampler(scfg["sampler"])
    return sampler, sampler.respace(diffusion, scfg["steps"])


def guided_fn(loaded: LoadedModel, cond: torch.Tensor | None, scale: float, amp: torch.dtype | None):
    """``model_fn(x_t, t)`` of the guided prediction ``(1 + w) eps(x|y) - w eps(x|null)``, w = ``scale``
    (Ho & Salimans' weight, :func:`sonodiff.config.guidance_weight`).

    For w = 0 (or an unconditional model) only ``eps(x|y)`` is evaluated. Otherwise the
    conditional and null halves run as one batch of 2B.
    """
    model = loaded.model
    use_guidance = scale != 0 and cond is not None
    autocast = (lambda: torch.autocast(loaded.diffusion.device.type, dtype=amp)) if amp else contextlib.nullcontext

    def model_fn(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with autocast():
            if not use_guidance:
                return model(x_t, t, cond).float()
            out = model(torch.cat([x_t, x_t]), torch.cat([t, t]), cat_conditions(cond, model.null(cond))).float()
        out_cond, out_null = out.chunk(2)
        return classifier_free(out_cond, out_null, scale, learn_sigma=loaded.spec["out_channels"] > loaded.spec["in_channels"])

    return model_fn


def read_label_maps(paths: Sequence[str], loaded: LoadedModel) -> torch.Tensor:
    """Label-map PNGs as a (B, H, W) long tensor, checked against the model's size and labels."""
    labels = torch.from_numpy(read_pngs(list(paths), paths[0])).long()
    if tuple(labels.shape[1:]) != loaded.output_shape[1:]:
        raise InputError(paths[0], f"label map is {tuple(labels.shape[1:])}, the model makes {loaded.output_shape[1:]}")
    if int(labels.max()) >= loaded.spec["num_classes"]:
        raise InputError(paths[0], f"label id {int(labels.max())} unknown to the model")
    return labels


def clip_setting(loaded: LoadedModel, scfg: Mapping[str, Any]) -> bool | float:
    """How the sampler clips the predicted x_0 (``sample.clip_x0``): to the data range [-1, 1], or,
    for a latent model, to ±``sample.latent_clip`` standard deviations of its standardised latents
    (null: not at all, as diffusers' Stable Diffusion pipelines)."""
    if not scfg["clip_x0"]:
        return False
    if not loaded.latent:
        return True
    bound = scfg.get("latent_clip")
    return False if bound is None else float(bound)


def prompt_classes(loaded: LoadedModel, jobs, where: str | Path) -> torch.Tensor | None:
    """The class ids of plan rows ``jobs`` (their ``class`` column) for a latent model, else None."""
    if loaded.classes is None:
        return None
    if "class" not in jobs.columns:
        raise InputError(where, "a latent model needs the class of every image (a plan with a class column)")
    return class_indices(loaded.classes, jobs["class"], where)


def read_sector_mask(path: str | Path, loaded: LoadedModel) -> torch.Tensor:
    """The sector mask (:func:`sonodiff.contracts.dataset.read_sector`) as a (H, W) bool tensor,
    checked against the model's image size."""
    mask = torch.from_numpy(read_sector(path))
    if tuple(mask.shape) != loaded.output_shape[1:]:
        raise InputError(path, f"sector mask is {tuple(mask.shape)}, the model makes {loaded.output_shape[1:]}")
    return mask


def configured_mask(scfg: Mapping[str, Any], sector: str | Path | None, loaded: LoadedModel) -> torch.Tensor | None:
    """The mask :func:`generate` applies: ``sector``'s with ``sample.mask_sector`` (then required), else None."""
    if not scfg.get("mask_sector", True):
        return None
    if sector is None:
        raise InputError("config key sample.mask_sector", f"is true but no sector mask ({layout.SECTOR}) was given; "
                         "pass the prepared dataset's sector file or set sample.mask_sector: false")
    return read_sector_mask(sector, loaded)


def apply_sector(x0: torch.Tensor, sector: torch.Tensor | None) -> torch.Tensor:
    """``x_0`` with every pixel outside ``sector`` (H, W) set to -1; ``x0`` itself for None."""
    if sector is None:
        return x0
    return torch.where(sector.to(x0.device), x0, torch.full_like(x0, OUTSIDE))


def generate(loaded: LoadedModel, labels: torch.Tensor | None, seeds: Sequence[int], cfg: Mapping[str, Any],
             progress: bool = False, sector: torch.Tensor | None = None,
             classes: torch.Tensor | None = None) -> torch.Tensor:
    """Sample one batch: image i from ``labels[i]`` (None: unconditional), ``classes[i]`` (a latent
    model's prompt; None for the pixel-space models) and ``seeds[i]``.

    ``sector``: a (H, W) bool mask (:func:`configured_mask`); pixels outside it become 0. A latent
    model's chain runs on its latent grid and its ``decode`` gives the images.
    Returns uint8 images (B, C, H, W) on the CPU.
    """
    scfg = cfg["sample"]
    device = loaded.diffusion.device
    sampler, process = configured_process(loaded.diffusion, scfg)
    cond = loaded.model.condition(labels.to(device) if labels is not None else None,
                                  classes.to(device) if classes is not None else None)
    amp = autocast_dtype(loaded.config["train"]["precision"], device)
    model_fn = guided_fn(loaded, cond, guidance_weight(scfg), amp)
    generators = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
    x0 = sample_loop(process, model_fn, (len(seeds), *loaded.image_shape), generators, sampler=sampler,
                     eta=float(scfg["eta"]), clip_x0=clip_setting(loaded, scfg), progress=progress)
    if loaded.latent:
        x0 = loaded.model.decode(x0)
    return to_uint8(apply_sector(x0, sector)).cpu()
