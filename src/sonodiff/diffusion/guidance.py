"""Classifier-free guidance in Ho & Salimans' (2022) convention, with guidance weight w:

    eps_hat = (1 + w) eps(x | y) - w eps(x | null) = eps(x | y) + w (eps(x | y) - eps(x | null))

w = 0 is the conditional model alone. The semantic diffusion model (SDM, Wang et al. 2022) writes
the same prediction with s = w + 1:

    eps_hat = eps(x | null) + s (eps(x | y) - eps(x | null))

(s = 1 is the conditional model alone); the config takes either (``sample.guidance_scale`` = w or
``sample.guidance_scale_sdm`` = s), and :func:`sonodiff.config.guidance_weight` turns them into
the w used here. With a learned variance the variance channels are taken from the conditional
output.

    classifier_free(out_cond, out_uncond, scale, learn_sigma=True) -> guided model output
    guided_model_fn(cond_fn, uncond_fn, scale, learn_sigma=True) -> model_fn(x_t, t, **kw)
"""

from __future__ import annotations

import torch

from sonodiff.diffusion.process import ModelFn


def classifier_free(
    out_cond: torch.Tensor, out_uncond: torch.Tensor, scale: float, learn_sigma: bool = True
) -> torch.Tensor:
    """Guided output: eps channels eps_c + w (eps_c - eps_u), w = ``scale`` (Ho & Salimans);
    variance channels from out_cond.

    With ``learn_sigma`` the outputs are (B, 2C, H, W), eps in the first C channels.
    """
    if out_cond.shape != out_uncond.shape:
        raise ValueError(f"output shapes differ: {tuple(out_cond.shape)} vs {tuple(out_uncond.shape)}")
    if scale == 0:
        return out_cond
    channels = out_cond.shape[1] // 2 if learn_sigma else out_cond.shape[1]
    eps_c, eps_u = out_cond[:, :channels], out_uncond[:, :channels]
    guided = eps_c + scale * (eps_c - eps_u)
    return torch.cat([guided, out_cond[:, channels:]], dim=1)


def guided_model_fn(cond_fn: ModelFn, uncond_fn: ModelFn, scale: float, learn_sigma: bool = True) -> ModelFn:
    """A model_fn(x_t, t, **kw) that applies ``classifier_free`` to two model functions
    (the unconditional one is not evaluated when scale == 0)."""

    def model_fn(x_t: torch.Tensor, t: torch.Tensor, **kwargs) -> torch.Tensor:
        out_cond = cond_fn(x_t, t, **kwargs)
        if scale == 0:
            return out_cond
        return classifier_free(out_cond, uncond_fn(x_t, t, **kwargs), scale, learn_sigma)

    return model_fn
