"""One batch of images from a loaded model: guided prediction, the configured sampler, uint8.

The guided prediction is ``eps_hat = eps(x|y) + s (eps(x|y) - eps(x|null))`` (Ho & Salimans
2022; s = ``sample.guidance_scale``, s = 0 evaluates the conditional model alone); the chain is
the sampler ``sample.sampler`` over ``sample.steps`` respaced steps
(:mod:`sonodiff.diffusion.sampling`); images are ``u = round((x_0 + 1) 127.5)``
(:func:`sonodiff.io.to_uint8`).
"""

from __future__ import annotations

import contextlib
from typing import Any, Mapping, Sequence

import torch

from sonodiff.contracts.model_file import LoadedModel
from sonodiff.device import autocast_dtype
from sonodiff.diffusion.guidance import classifier_free
from sonodiff.diffusion.process import BMapDiffusion
from sonodiff.diffusion.sampling import Sampler, get_sampler, sample_loop
from sonodiff.errors import InputError
from sonodiff.io import read_pngs, to_uint8


def configured_process(diffusion: BMapDiffusion, scfg: Mapping[str, Any]) -> tuple[Sampler, BMapDiffusion]:
    """The sampler of a ``sample`` config section and ``diffusion`` respaced to its steps."""
    sampler = get_sampler(scfg["sampler"])
    return sampler, sampler.respace(diffusion, scfg["steps"])


def guided_fn(loaded: LoadedModel, cond: torch.Tensor | None, scale: float, amp: torch.dtype | None):
    """``model_fn(x_t, t)`` of the guided prediction ``eps(x|y) + s (eps(x|y) - eps(x|null))``.

    For s = 0 (or an unconditional model) only ``eps(x|y)`` is evaluated. Otherwise the
    conditional and null halves run as one batch of 2B.
    """
    model = loaded.model
    use_guidance = scale != 0 and cond is not None
    autocast = (lambda: torch.autocast(loaded.diffusion.device.type, dtype=amp)) if amp else contextlib.nullcontext

    def model_fn(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with autocast():
            if not use_guidance:
                return model(x_t, t, cond).float()
            out = model(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([cond, model.null(cond)])).float()
        out_cond, out_null = out.chunk(2)
        return classifier_free(out_cond, out_null, scale, learn_sigma=loaded.spec["out_channels"] > loaded.spec["in_channels"])

    return model_fn


def read_label_maps(paths: Sequence[str], loaded: LoadedModel) -> torch.Tensor:
    """Label-map PNGs as a (B, H, W) long tensor, checked against the model's size and labels."""
    labels = torch.from_numpy(read_pngs(list(paths), paths[0])).long()
    if tuple(labels.shape[1:]) != loaded.image_shape[1:]:
        raise InputError(paths[0], f"label map is {tuple(labels.shape[1:])}, the model makes {loaded.image_shape[1:]}")
    if int(labels.max()) >= loaded.spec["num_classes"]:
        raise InputError(paths[0], f"label id {int(labels.max())} unknown to the model")
    return labels


def generate(loaded: LoadedModel, labels: torch.Tensor | None, seeds: Sequence[int], cfg: Mapping[str, Any],
             progress: bool = False) -> torch.Tensor:
    """Sample one batch: image i from ``labels[i]`` (None: unconditional) and ``seeds[i]``.

    Returns uint8 images (B, C, H, W) on the CPU.
    """
    scfg = cfg["sample"]
    device = loaded.diffusion.device
    sampler, process = configured_process(loaded.diffusion, scfg)
    cond = loaded.model.condition(labels.to(device) if labels is not None else None)
    amp = autocast_dtype(loaded.config["train"]["precision"], device)
    model_fn = guided_fn(loaded, cond, float(scfg["guidance_scale"]), amp)
    generators = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
    x0 = sample_loop(process, model_fn, (len(seeds), *loaded.image_shape), generators, sampler=sampler,
                     eta=float(scfg["eta"]), clip_x0=bool(scfg["clip_x0"]), progress=progress)
    return to_uint8(x0).cpu()
