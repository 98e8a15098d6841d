"""The B-map diffusion core (Dominguez et al. 2024): schedules, depth maps, the forward process,
posterior, losses and samplers. A pure library: no files, no config reading.

    from sonodiff.diffusion import BMapDiffusion, linear_depth, convex_depth, depth_from_sector_mask
    diff = BMapDiffusion(num_steps=T, alpha_schedule="cosine", bmap_schedule="sqrt", b_min=0.97,
                         depth=depth_hw, learn_sigma=True, vlb_weight=0.001)
    losses = diff.training_losses(model_fn, x0, t)          # {"loss", "mse", "vb"}, each (B,)
    from sonodiff.diffusion.sampling import get_sampler, sample_loop
    ddim = get_sampler("ddim")
    x0 = sample_loop(ddim.respace(diff, 50), model_fn, (B, C, H, W), generators, sampler=ddim)

Signatures: ``process`` (BMapDiffusion), ``depth`` (depth maps), ``depth_lookup`` (the per-pixel
lookup of log Bbar_t over depth), ``sampling`` (the sampler registry and sample_loop),
``guidance`` (classifier_free), ``figures`` (render_bmaps_figure, render_forward_figure),
``schedules`` (registries, respacings). Each module's docstring is authoritative.
"""

from sonodiff.diffusion.depth import Probe, convex_depth, depth_from_sector_mask, linear_depth
from sonodiff.diffusion.process import (
    BMapDiffusion,
    Coefficients,
    FixedVariance,
    MeanVariance,
    StepOutput,
)
from sonodiff.diffusion.schedules import (
    ALPHA_SCHEDULES,
    BMAP_SCHEDULES,
    register_alpha_schedule,
    register_bmap_schedule,
)

__all__ = [
    "ALPHA_SCHEDULES",
    "BMAP_SCHEDULES",
    "BMapDiffusion",
    "Coefficients",
    "FixedVariance",
    "MeanVariance",
    "Probe",
    "StepOutput",
    "convex_depth",
    "depth_from_sector_mask",
    "linear_depth",
    "register_alpha_schedule",
    "register_bmap_schedule",
]
