"""Classifier-free guidance (Ho & Salimans 2022):

    eps_hat = eps(x | y) + s (eps(x | y) - eps(x | null))

s = 0 is the conditional model alone (the semantic diffusion model's convention, where s is the
extra weight; s + 1 in Ho & Salimans' w). With a learned variance the variance channels are taken
from the conditional output.

    classifier_free(out_cond, out_uncond, scale, learn_sigma=True) -> guided model output
    guided_model_fn(cond_fn, uncond_fn, scale, learn_sigma=True) -> model_fn(x_t, t, **kw)
"""

from __future__ import annotations

import torch

from sonodiff.diffusion.process import ModelFn


def classifier_free(
    out_cond: torch.Tensor, out_uncond: torch.Tensor, scale: float, learn_sigma: bool = True
) -> torch.Tensor:
    """Guided output: eps channels eps_c + s (eps_c - eps_u); variance channels from out_cond.

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
