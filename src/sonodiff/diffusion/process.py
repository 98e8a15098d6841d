"""The B-map Gaussian diffusion process: forward kernels, marginals, posterior, model outputs,
losses and one reverse step (ancestral or DDIM). The sampling loop lives in ``sampling.py``.

With B-maps the forward noise is still independent per pixel, so all of DDPM's closed forms hold
pixel by pixel with alpha'_t(p) = alpha_t B_t(p) in place of alpha_t (Dominguez et al. 2024,
Sec. 2.3; steps t = 0..T-1):

    B_t(p)           = sqrt(1 - d(p) b_t (1 - b_min))
    q(x_t | x_{t-1}) = N(sqrt(alpha'_t) x_{t-1}, beta'_t I),       beta'_t = 1 - alpha'_t
    q(x_t | x_0)     = N(sqrt(alphabar'_t) x_0, (1 - alphabar'_t) I), alphabar'_t = alphabar_t Bbar_t
    q(x_{t-1} | x_t, x_0) = N(c1 x_0 + c2 x_t, betatilde'_t I),  with alphabar'_{-1} = 1 and
        c1 = sqrt(alphabar'_{t-1}) beta'_t / (1 - alphabar'_t)
        c2 = sqrt(alpha'_t) (1 - alphabar'_{t-1}) / (1 - alphabar'_t)
        betatilde'_t = beta'_t (1 - alphabar'_{t-1}) / (1 - alphabar'_t)

(Gaussian conditioning per pixel, as Ho et al. 2020 eqs. 6-7; the paper's typeset mean puts the
square root over the (1 - ...) factors too, which is a typo.) b_min = 1 gives B = 1: the ordinary
DDPM. The process is stored as log alphabar_t (T,) plus log Bbar_t tabulated over depth
(``depth_lookup.DepthTable``); every other coefficient is derived per call, per pixel, in float64 from
alphabar'_t and alphabar'_{t-1}, and cast to the data's dtype (``coefficients``). A respaced process
keeps alphabar' at the kept steps, so alpha'_k = alphabar'_{s_k} / alphabar'_{s_{k-1}} per pixel and
the marginals at kept steps are unchanged; ``timestep_map`` gives the original step indices, which
are what the model is fed.

Public surface::

    BMapDiffusion(num_steps=1000, alpha_schedule="cosine", bmap_schedule="sqrt", b_min=1.0,
                  depth=None, learn_sigma=True, vlb_weight=0.001, fixed_variance="large",
                  depth_nodes=513, vlb_convention="sum")
        depth: (H, W) tensor in [0, 1] (None: d = 0, the ordinary DDPM at any image size)
        vlb_convention: how vlb_weight w weights L_t (``VlbConvention``):
            "sum"      L = L_simple + w K L_t  (L_vlb = K L_t; improved DDPM's hybrid loss)
            "per_step" L = L_simple + w L_t    (the B-map paper's code: mse + 0.001 L_t)
    .num_steps, .timestep_map (K,) long, .device, .nbytes, .config, .vlb_factor (w K or w)
    .q_sample(x0, t, noise=None) -> x_t
    .q_mean_variance(x0, t) -> (mean, variance, log_variance)
    .q_posterior_mean_variance(x0, x_t, t) -> (mean, variance, log_variance_clipped)  # x0's shape
    .p_mean_variance(model_output, x_t, t, clip_x0=True) -> MeanVariance(mean, variance,
                                                              log_variance, pred_x0, eps)
    .training_losses(model_fn, x0, t, noise=None, model_kwargs=None)
        -> {"loss": (B,), "mse": (B,), "vb": (B,)}
        model_fn(x_t, timestep_map[t], **model_kwargs) -> (B, 2C, H, W) (eps, v) if learn_sigma
        else (B, C, H, W) (eps)
    .step(model_output, t_index, x_t, noise=None, clip_x0=True) -> StepOutput(prev_sample, pred_x0)
    .ddim_step(model_output, t_index, x_t, eta=0.0, noise=None, clip_x0=True) -> StepOutput
    .respace("full" | N | "ddimN" | [steps]) -> BMapDiffusion over the kept steps
    .coefficients(t, like) -> Coefficients (per-pixel maps, (B, 1, H, W), like's dtype)
    .predict_x0_from_eps(x_t, t, eps) / .predict_eps_from_x0(x_t, t, x0)
    .bmap(t) / .bbar(t) -> (H, W) float64 maps of B_t and Bbar_t
    .prior_bpd(x0) -> (B,)
    .to(device) -> self
``clip_x0``: True clips the predicted x_0 to [-1, 1], a number c to [-c, c], False not at all.
t is a (B,) long tensor of step indices of this process (0..num_steps-1) or an int; data are
(B, C, H, W) with (H, W) the depth map's size. Bad settings raise ``InputError`` naming the
config key (diffusion.b_min, ...), including a b_min so small that alphabar'_T(p) < e^-150.
"""

from __future__ import annotations

import math
from enum import Enum
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np
import torch

from sonodiff.diffusion.losses import discretized_gaussian_log_likelihood, mean_flat, normal_kl
from sonodiff.diffusion.schedules import (
    ALPHA_SCHEDULES,
    BMAP_SCHEDULES,
    get_schedule,
    space_timesteps,
)
from sonodiff.diffusion.depth_lookup import DepthTable
from sonodiff.errors import InputError

ModelFn = Callable[..., torch.Tensor]

#: Smallest accepted log alphabar'_t(p): 1 / sqrt(alphabar') = e^75 stays finite in float32.
MIN_LOG_ALPHABAR = -150.0


class FixedVariance(str, Enum):
    """Reverse variance when it is not learned (improved DDPM's FIXED_SMALL / FIXED_LARGE)."""

    SMALL = "small"  # betatilde'_t, the posterior variance (clipped at t = 0)
    LARGE = "large"  # beta'_t (betatilde'_1 at t = 0)


class VlbConvention(str, Enum):
    """How ``vlb_weight`` w weights the per-step VLB term L_t (bits per dimension) of the loss.

    SUM:      L = L_simple + w L_vlb, L_vlb = K L_t, the one-sample estimate of the whole VLB
              (Nichol & Dhariwal 2021, eq. 16; with w = 0.001 at K = 1000 their hybrid loss).
    PER_STEP: L = L_simple + w L_t (the B-map paper's code, ``mse + 0.001 * vb``): K times less
              than SUM at the same w (2000x at T = 2000).
    """

    SUM = "sum"
    PER_STEP = "per_step"


class Coefficients(NamedTuple):
    """Per-pixel coefficients at steps t, each (B, 1, H, W) (or (B, 1, 1, 1) without depth)."""

    alphabar: torch.Tensor  # alphabar'_t
    alphabar_prev: torch.Tensor  # alphabar'_{t-1} (1 at t = 0)
    beta: torch.Tensor  # beta'_t = 1 - alphabar'_t / alphabar'_{t-1}
    sqrt_alphabar: torch.Tensor
    sqrt_one_minus_alphabar: torch.Tensor
    sqrt_recip_alphabar: torch.Tensor  # 1 / sqrt(alphabar'_t)
    sqrt_recipm1_alphabar: torch.Tensor  # sqrt(1 / alphabar'_t - 1)
    posterior_variance: torch.Tensor  # betatilde'_t (0 at t = 0)
    posterior_log_variance_clipped: torch.Tensor  # log betatilde'_t, log betatilde'_1 at t = 0
    posterior_mean_coef1: torch.Tensor  # c1 (multiplies x_0)
    posterior_mean_coef2: torch.Tensor  # c2 (multiplies x_t)
    log_beta: torch.Tensor  # log beta'_t


class MeanVariance(NamedTuple):
    mean: torch.Tensor
    variance: torch.Tensor
    log_variance: torch.Tensor
    pred_x0: torch.Tensor
    eps: torch.Tensor


class StepOutput(NamedTuple):
    prev_sample: torch.Tensor  # x_{t-1}
    pred_x0: torch.Tensor  # the (clipped) x_0 predicted at step t


class BMapDiffusion:
    """Gaussian diffusion with per-pixel B-map noise levels (see the module docstring)."""

    def __init__(
        self,
        num_steps: int = 1000,
        alpha_schedule: str = "cosine",
        bmap_schedule: str = "sqrt",
        b_min: float = 1.0,
        depth: torch.Tensor | np.ndarray | None = None,
        learn_sigma: bool = True,
        vlb_weight: float = 0.001,
        fixed_variance: str | FixedVariance = FixedVariance.LARGE,
        depth_nodes: int = 513,
        vlb_convention: str | VlbConvention = VlbConvention.SUM,
    ):
        if not isinstance(num_steps, (int, np.integer)) or num_steps < 2:
            raise InputError("diffusion.num_steps", f"need an integer >= 2, got {num_steps!r}")
        if not 0.0 < float(b_min) <= 1.0:
            raise InputError("diffusion.b_min", f"need 0 < b_min <= 1, got {b_min!r}")
        if not float(vlb_weight) >= 0.0:
            raise InputError("diffusion.vlb_weight", f"need >= 0, got {vlb_weight!r}")
        try:
            fixed_variance = FixedVariance(fixed_variance)
        except ValueError:
            raise InputError(
                "diffusion.fixed_variance", f"{fixed_variance!r} is not 'small' or 'large'"
            ) from None
        try:
            vlb_convention = VlbConvention(vlb_convention)
        except ValueError:
            raise InputError(
                "diffusion.vlb_convention", f"{vlb_convention!r} is not 'sum' or 'per_step'"
            ) from None
        if depth_nodes < 2:
            raise InputError("diffusion.depth_nodes", f"need >= 2, got {depth_nodes!r}")
        betas = get_schedule(ALPHA_SCHEDULES, alpha_schedule, "diffusion.alpha_schedule")(num_steps)
        profile = get_schedule(BMAP_SCHEDULES, bmap_schedule, "diffusion.bmap_schedule")(num_steps)
        depth = _check_depth(depth)

        self.config = {
            "num_steps": int(num_steps),
            "alpha_schedule": alpha_schedule,
            "bmap_schedule": bmap_schedule,
            "b_min": float(b_min),
            "learn_sigma": bool(learn_sigma),
            "vlb_weight": float(vlb_weight),
            "vlb_convention": vlb_convention.value,
            "fixed_variance": fixed_variance.value,
            "depth_nodes": int(depth_nodes),
        }
        self.learn_sigma = bool(learn_sigma)
        self.vlb_weight = float(vlb_weight)
        self.vlb_convention = vlb_convention
        self.fixed_variance = fixed_variance
        # Of the base (unrespaced) process: beta_t and b_t (float64 numpy, (T,)), d(p) (H, W).
        self.betas = betas
        self.profile = profile
        self.depth = depth
        # log alphabar_t = sum_{s<=t} log(1 - beta_s), in float64.
        self.log_alphabar = torch.from_numpy(np.cumsum(np.log1p(-betas)))
        self.table = DepthTable.build(depth, profile, float(b_min), depth_nodes)
        self.timestep_map = torch.arange(num_steps, dtype=torch.long)
        self._check_invariants()

    # ---------------------------------------------------------------------------- structure

    @classmethod
    def from_config(cls, diffusion: Mapping[str, Any], depth: torch.Tensor | np.ndarray) -> "BMapDiffusion":
        """The process of a resolved config's ``diffusion`` section over the depth map ``depth``
        (every key required: an old model file's section is completed by its loader,
        :func:`sonodiff.contracts.model_file.load_model`)."""
        return cls(num_steps=diffusion["num_steps"], alpha_schedule=diffusion["alpha_schedule"],
                   bmap_schedule=diffusion["bmap_schedule"], b_min=diffusion["b_min"], depth=depth,
                   learn_sigma=diffusion["learn_sigma"], vlb_weight=diffusion["vlb_weight"],
                   vlb_convention=diffusion["vlb_convention"])

    @property
    def num_steps(self) -> int:
        """Number of steps K of this (possibly respaced) process."""
        return len(self.timestep_map)

    @property
    def device(self) -> torch.device:
        return self.log_alphabar.device

    @property
    def nbytes(self) -> int:
        """Bytes of schedule state held on the device (independent of batch and channels)."""
        own = [self.log_alphabar, self.timestep_map]
        return self.table.nbytes + sum(x.numel() * x.element_size() for x in own)

    def to(self, device: torch.device | str) -> "BMapDiffusion":
        """Move the schedule state to ``device`` (in place, like ``nn.Module.to``); returns self."""
        self.log_alphabar = self.log_alphabar.to(device)
        self.timestep_map = self.timestep_map.to(device)
        self.table = self.table.to(device)
        return self

    def respace(self, steps: int | str | Sequence[int]) -> "BMapDiffusion":
        """The process over the kept steps ("full", a count N, "ddimN" or a list of indices into
        this process). alphabar' at kept steps is unchanged, so alpha'_k = alphabar'_{s_k} /
        alphabar'_{s_{k-1}} per pixel; ``timestep_map`` keeps the original step indices."""
        kept = space_timesteps(self.num_steps, steps)
        if len(kept) < 2:
            raise InputError("respace steps", "a process needs at least 2 steps")
        idx = torch.tensor(kept, dtype=torch.long, device=self.device)
        new = object.__new__(BMapDiffusion)
        new.__dict__.update(self.__dict__)
        new.config = {**self.config, "steps": [int(s) for s in self.timestep_map[idx].tolist()]}
        new.log_alphabar = self.log_alphabar[idx]
        new.table = self.table.select(idx)
        new.timestep_map = self.timestep_map[idx]
        new._check_invariants()
        return new

    def _check_invariants(self) -> None:
        """0 < beta'_t < 1 at every step and depth node (so at every pixel), all finite, and
        log alphabar'_t >= MIN_LOG_ALPHABAR."""
        log_ab = self.log_alphabar[:, None].cpu() + self.table.log_bbar.cpu()  # (K, n)
        prev = torch.cat([torch.zeros_like(log_ab[:1]), log_ab[:-1]])
        beta = -torch.expm1(log_ab - prev)
        if not (torch.isfinite(beta).all() and (beta > 0).all() and (beta < 1).all()):
            raise AssertionError("beta'_t(p) must lie in (0, 1) at every step and pixel")
        if float(log_ab.min()) < MIN_LOG_ALPHABAR:
            raise InputError(
                "diffusion.b_min",
                f"alphabar'_T = exp({float(log_ab.min()):.0f}) at the deepest pixel: 1/sqrt(alphabar') "
                "overflows float32; raise b_min or lower num_steps",
            )

    # ------------------------------------------------------------------------- coefficients

    def _as_t(self, t: int | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        if like.dim() != 4:
            raise ValueError(f"expected (B, C, H, W) data, got shape {tuple(like.shape)}")
        hw = tuple(self.table.index.shape)
        if hw != (1, 1) and tuple(like.shape[-2:]) != hw:
            raise ValueError(f"data size {tuple(like.shape[-2:])} != depth map size {hw}")
        t = torch.as_tensor(t, device=self.device, dtype=torch.long)
        if t.dim() == 0:
            t = t.expand(like.shape[0])
        if t.shape != (like.shape[0],):
            raise ValueError(f"t must be an int or a ({like.shape[0]},) tensor, got {tuple(t.shape)}")
        if bool((t < 0).any()) or bool((t >= self.num_steps).any()):
            raise ValueError(f"t outside 0..{self.num_steps - 1}")
        return t

    def _log_alphabar_map(self, t: torch.Tensor) -> torch.Tensor:
        """log alphabar'_t(p) = log alphabar_t + log Bbar_t(p), (B, 1, H, W) float64; 0 at t = -1."""
        la = self.log_alphabar[t.clamp(min=0)]
        la = torch.where(t >= 0, la, torch.zeros_like(la))
        return (la[:, None, None] + self.table.lookup(t))[:, None]

    def coefficients(self, t: int | torch.Tensor, like: torch.Tensor) -> Coefficients:
        """All per-pixel coefficients at steps t, computed in float64, cast to like's dtype.

        This is the one broadcasting helper: every per-timestep, per-pixel quantity goes through
        it and comes back as (B, 1, H, W), broadcasting over channels. When all t are equal (a
        sampling step) the maps are computed once and expanded over the batch.
        """
        t = self._as_t(t, like)
        dtype = like.dtype if like.is_floating_point() else torch.float32
        if len(t) > 1 and bool((t == t[0]).all()):
            one = self._coefficients(t[:1], dtype)
            return Coefficients(*(c.expand(len(t), *c.shape[1:]) for c in one))
        return self._coefficients(t, dtype)

    def _coefficients(self, t: torch.Tensor, dtype: torch.dtype) -> Coefficients:
        log_ab = self._log_alphabar_map(t)
        log_ab_prev = self._log_alphabar_map(t - 1)
        one_minus_ab = -torch.expm1(log_ab)
        one_minus_ab_prev = -torch.expm1(log_ab_prev)
        beta = -torch.expm1(log_ab - log_ab_prev)  # 1 - alpha'_t
        post_var = beta * one_minus_ab_prev / one_minus_ab
        # improved DDPM: the posterior variance is 0 at t = 0; use betatilde'_1 there.
        post_var_clipped = post_var
        first = t == 0
        if bool(first.any()):
            ones = torch.ones_like(t)
            la1, la0 = self._log_alphabar_map(ones), self._log_alphabar_map(ones - 1)
            var1 = -torch.expm1(la1 - la0) * -torch.expm1(la0) / -torch.expm1(la1)
            post_var_clipped = torch.where(first[:, None, None, None], var1, post_var)
        ab, ab_prev = torch.exp(log_ab), torch.exp(log_ab_prev)
        coefs = Coefficients(
            alphabar=ab,
            alphabar_prev=ab_prev,
            beta=beta,
            sqrt_alphabar=torch.exp(0.5 * log_ab),
            sqrt_one_minus_alphabar=torch.sqrt(one_minus_ab),
            sqrt_recip_alphabar=torch.exp(-0.5 * log_ab),
            sqrt_recipm1_alphabar=torch.sqrt(torch.expm1(-log_ab)),
            posterior_variance=post_var,
            posterior_log_variance_clipped=torch.log(post_var_clipped),
            posterior_mean_coef1=torch.exp(0.5 * log_ab_prev) * beta / one_minus_ab,
            posterior_mean_coef2=(
                torch.exp(0.5 * (log_ab - log_ab_prev)) * one_minus_ab_prev / one_minus_ab
            ),
            log_beta=torch.log(beta),
        )
        return Coefficients(*(c.to(dtype) for c in coefs))

    def bbar(self, t: int) -> torch.Tensor:
        """Bbar_t(p) = prod_{s<=t} B_s(p), (H, W) float64."""
        return torch.exp(self.table.lookup(torch.tensor([t], device=self.device)))[0]

    def bmap(self, t: int) -> torch.Tensor:
        """B_t(p) = Bbar_t / Bbar_{t-1} (the per-step B-map; for a respaced process, the product of
        the B-maps of the skipped steps), (H, W) float64."""
        tt = torch.tensor([t, t - 1], device=self.device)
        lb = self.table.lookup(tt)
        return torch.exp(lb[0] - lb[1])

    # ------------------------------------------------------------------------ forward process

    def q_mean_variance(self, x0: torch.Tensor, t: int | torch.Tensor):
        """q(x_t | x_0) = N(sqrt(alphabar'_t) x_0, (1 - alphabar'_t) I).

        Returns (mean, variance, log_variance), each of x0's shape."""
        log_ab = self._log_alphabar_map(self._as_t(t, x0))
        var = -torch.expm1(log_ab)
        mean = torch.exp(0.5 * log_ab).to(x0.dtype) * x0
        return mean, var.to(x0.dtype).expand_as(x0), torch.log(var).to(x0.dtype).expand_as(x0)

    def q_sample(
        self, x0: torch.Tensor, t: int | torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x_t = sqrt(alphabar'_t) x_0 + sqrt(1 - alphabar'_t) eps (Ho et al. eq. 4, per pixel)."""
        if noise is None:
            noise = torch.randn_like(x0)
        log_ab = self._log_alphabar_map(self._as_t(t, x0))  # one lookup: no full coefficients
        sqrt_ab = torch.exp(0.5 * log_ab).to(x0.dtype)
        sqrt_one_minus_ab = torch.sqrt(-torch.expm1(log_ab)).to(x0.dtype)
        return sqrt_ab * x0 + sqrt_one_minus_ab * noise

    def q_posterior_mean_variance(
        self,
        x0: torch.Tensor,
        x_t: torch.Tensor,
        t: int | torch.Tensor,
        coefs: Coefficients | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q(x_{t-1} | x_t, x_0) = N(c1 x_0 + c2 x_t, betatilde'_t I) (Ho et al. eqs. 6-7, per pixel):
        (mean, variance, log_variance_clipped), each of x0's shape."""
        c = coefs if coefs is not None else self.coefficients(t, x0)
        mean = c.posterior_mean_coef1 * x0 + c.posterior_mean_coef2 * x_t
        return mean, c.posterior_variance.expand_as(x0), c.posterior_log_variance_clipped.expand_as(x0)

    # ------------------------------------------------------------------------ reverse process

    def _split(self, model_output: torch.Tensor, x_t: torch.Tensor):
        channels = x_t.shape[1]
        want = 2 * channels if self.learn_sigma else channels
        if model_output.shape[1] != want:
            raise ValueError(f"model output has {model_output.shape[1]} channels, expected {want}")
        if self.learn_sigma:
            return model_output[:, :channels], model_output[:, channels:]
        return model_output, None

    def predict_x0_from_eps(
        self, x_t: torch.Tensor, t, eps: torch.Tensor, coefs: Coefficients | None = None
    ) -> torch.Tensor:
        """x_0 = (x_t - sqrt(1 - alphabar'_t) eps) / sqrt(alphabar'_t) (Ho et al. eq. 4 inverted)."""
        c = coefs if coefs is not None else self.coefficients(t, x_t)
        return c.sqrt_recip_alphabar * x_t - c.sqrt_recipm1_alphabar * eps

    def predict_eps_from_x0(
        self, x_t: torch.Tensor, t, x0: torch.Tensor, coefs: Coefficients | None = None
    ) -> torch.Tensor:
        """eps = (x_t / sqrt(alphabar'_t) - x_0) / sqrt(1 / alphabar'_t - 1)."""
        c = coefs if coefs is not None else self.coefficients(t, x_t)
        return (c.sqrt_recip_alphabar * x_t - x0) / c.sqrt_recipm1_alphabar

    def p_mean_variance(
        self,
        model_output: torch.Tensor,
        x_t: torch.Tensor,
        t: int | torch.Tensor,
        clip_x0: bool | float = True,
        coefs: Coefficients | None = None,
    ) -> MeanVariance:
        """p(x_{t-1} | x_t) = N(mu, Sigma) from the model's output.

        Sigma: learned range (Nichol & Dhariwal eq. 15, per pixel)
        log Sigma = f log beta'_t + (1 - f) log betatilde'_t, f = (v + 1) / 2, or fixed.
        mu: the posterior mean at the predicted x_0, clipped to [-1, 1] if ``clip_x0`` is True
        (to [-c, c] if it is a number c: a latent model's standardised latents).
        """
        t = self._as_t(t, x_t)
        c = coefs if coefs is not None else self.coefficients(t, x_t)
        eps, v = self._split(model_output, x_t)
        if v is not None:
            frac = (v + 1) / 2
            log_var = frac * c.log_beta + (1 - frac) * c.posterior_log_variance_clipped
        elif self.fixed_variance is FixedVariance.SMALL:
            log_var = c.posterior_log_variance_clipped.expand_as(x_t)
        else:
            first = (t == 0)[:, None, None, None]
            log_var = torch.where(first, c.posterior_log_variance_clipped, c.log_beta).expand_as(x_t)
        pred_x0 = self.predict_x0_from_eps(x_t, t, eps, c)
        if clip_x0:
            pred_x0 = pred_x0.clamp(-clip_bound(clip_x0), clip_bound(clip_x0))
        mean, _, _ = self.q_posterior_mean_variance(pred_x0, x_t, t, c)
        return MeanVariance(mean, torch.exp(log_var), log_var, pred_x0, eps)

    def step(
        self,
        model_output: torch.Tensor,
        t_index: int,
        x_t: torch.Tensor,
        noise: torch.Tensor | None = None,
        clip_x0: bool | float = True,
    ) -> StepOutput:
        """One ancestral step x_t -> x_{t-1} ~ p(x_{t-1} | x_t) (Ho et al. Algorithm 2)."""
        # 1. eps, Sigma and x_0 from the model output (Ho et al. eq. 15; Nichol & Dhariwal eq. 15)
        # 2. mu = c1 x_0 + c2 x_t, the posterior mean at the predicted x_0 (Ho et al. eq. 7)
        out = self.p_mean_variance(model_output, x_t, t_index, clip_x0)
        if int(t_index) == 0:
            # 3a. the last step returns the mean (no noise, Algorithm 2 line 4)
            return StepOutput(out.mean, out.pred_x0)
        # 3b. x_{t-1} = mu + Sigma^(1/2) z, z ~ N(0, I)
        if noise is None:
            noise = torch.randn_like(x_t)
        return StepOutput(out.mean + torch.exp(0.5 * out.log_variance) * noise, out.pred_x0)

    def ddim_step(
        self,
        model_output: torch.Tensor,
        t_index: int,
        x_t: torch.Tensor,
        eta: float = 0.0,
        noise: torch.Tensor | None = None,
        clip_x0: bool | float = True,
    ) -> StepOutput:
        """One DDIM step (Song et al. 2021, eq. 12) with per-pixel alphabar'."""
        if not 0.0 <= eta <= 1.0:
            raise ValueError(f"eta must be in [0, 1], got {eta}")
        t = self._as_t(t_index, x_t)
        c = self.coefficients(t, x_t)
        eps, _ = self._split(model_output, x_t)
        # 1. predicted x_0 = (x_t - sqrt(1 - alphabar'_t) eps) / sqrt(alphabar'_t)   (eq. 12)
        pred_x0 = self.predict_x0_from_eps(x_t, t, eps, c)
        if clip_x0:
            # 2. clip x_0 and re-derive eps from it (as improved DDPM / GLIDE do)
            pred_x0 = pred_x0.clamp(-clip_bound(clip_x0), clip_bound(clip_x0))
            eps = self.predict_eps_from_x0(x_t, t, pred_x0, c)
        # 3. sigma_t(eta)^2 = eta^2 (1 - alphabar'_{t-1}) / (1 - alphabar'_t)
        #                   (1 - alphabar'_t / alphabar'_{t-1}) = eta^2 betatilde'_t   (eq. 16)
        sigma = eta * torch.sqrt(c.posterior_variance)
        # 4. direction pointing to x_t: sqrt(1 - alphabar'_{t-1} - sigma^2) eps   (eq. 12)
        direction = torch.sqrt((1 - c.alphabar_prev - sigma**2).clamp(min=0)) * eps
        # 5. x_{t-1} = sqrt(alphabar'_{t-1}) x_0 + direction + sigma z   (eq. 12)
        prev = torch.sqrt(c.alphabar_prev) * pred_x0 + direction
        if eta > 0 and int(t_index) > 0:
            if noise is None:
                noise = torch.randn_like(x_t)
            prev = prev + sigma * noise
        return StepOutput(prev, pred_x0)

    # -------------------------------------------------------------------------------- losses

    def training_losses(
        self,
        model_fn: ModelFn,
        x0: torch.Tensor,
        t: torch.Tensor,
        noise: torch.Tensor | None = None,
        model_kwargs: dict | None = None,
    ) -> dict[str, torch.Tensor]:
        """L = L_simple + w c_K L_t per sample, w = ``vlb_weight`` (Nichol & Dhariwal 2021, eq. 16).

        L_simple = mean ||eps - eps_theta(x_t, t)||^2; L_t in bits per dimension:
        KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t)) for t > 0, -log p(x_0|x_1) (discretized Gaussian)
        at t = 0, with the mean frozen (stop-gradient on eps) so that it trains only the variance.
        c_K = K (K the number of steps) with ``vlb_convention`` "sum": w L_vlb, L_vlb = K L_t the
        one-sample estimate of the VLB (for K = 1000, improved DDPM's hybrid loss with rescaled
        learned sigmas); c_K = 1 with "per_step" (the B-map code's mse + 0.001 L_t).
        Returns loss, mse and vb (= L_t).
        """
        if noise is None:
            noise = torch.randn_like(x0)
        t = self._as_t(t, x0)
        c = self.coefficients(t, x0)
        x_t = c.sqrt_alphabar * x0 + c.sqrt_one_minus_alphabar * noise
        model_output = model_fn(x_t, self.timestep_map[t], **(model_kwargs or {}))
        eps, v = self._split(model_output, x0)
        mse = mean_flat((noise - eps) ** 2)
        if v is None:
            vb = torch.zeros_like(mse)
        else:
            frozen = torch.cat([eps.detach(), v], dim=1)
            vb = self._vb_bits_per_dim(frozen, x0, x_t, t, c)
        return {"loss": mse + self.vlb_factor * vb, "mse": mse, "vb": vb}

    @property
    def vlb_factor(self) -> float:
        """The factor of L_t in the loss: w K ("sum") or w ("per_step"), w = ``vlb_weight``."""
        per_step = self.vlb_convention is VlbConvention.PER_STEP
        return self.vlb_weight * (1 if per_step else self.num_steps)

    def _vb_bits_per_dim(self, model_output, x0, x_t, t, c: Coefficients) -> torch.Tensor:
        """L_t in bits per dimension (Ho et al. eq. 5; decoder L_0 as a discretized Gaussian)."""
        true_mean, _, true_log_var = self.q_posterior_mean_variance(x0, x_t, t, c)
        out = self.p_mean_variance(model_output, x_t, t, clip_x0=False, coefs=c)
        kl = mean_flat(normal_kl(true_mean, true_log_var, out.mean, out.log_variance)) / math.log(2.0)
        nll = -discretized_gaussian_log_likelihood(x0, out.mean, 0.5 * out.log_variance)
        nll = mean_flat(nll) / math.log(2.0)
        return torch.where(t == 0, nll, kl)

    def prior_bpd(self, x0: torch.Tensor) -> torch.Tensor:
        """KL(q(x_{K-1} | x_0) || N(0, I)) in bits per dimension, (B,)."""
        mean, _, log_var = self.q_mean_variance(x0, self.num_steps - 1)
        kl = normal_kl(mean, log_var, torch.zeros_like(mean), torch.zeros_like(log_var))
        return mean_flat(kl) / math.log(2.0)


def clip_bound(clip_x0: bool | float) -> float:
    """The bound c of x_0's clipping to [-c, c]: 1 (the data range) for True, else the number."""
    return 1.0 if clip_x0 is True else float(clip_x0)


def _check_depth(depth: torch.Tensor | np.ndarray | None) -> torch.Tensor:
    """Depth map as a (H, W) float64 CPU tensor in [0, 1]; None means d = 0 ((1, 1), broadcasting)."""
    if depth is None:
        return torch.zeros(1, 1, dtype=torch.float64)
    depth = torch.as_tensor(depth).detach().cpu().double()
    if depth.dim() != 2:
        raise InputError("depth", f"expected an (H, W) map, got shape {tuple(depth.shape)}")
    if not torch.isfinite(depth).all() or depth.min() < 0 or depth.max() > 1:
        raise InputError("depth", "values must be finite and in [0, 1]")
    return depth
