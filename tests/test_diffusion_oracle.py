"""With B-maps off (b_min = 1) the process is exactly the ordinary DDPM/DDIM: diffusers as oracle.

diffusers keeps its cumulative alphas in float32, too coarse near t = 0, so its schedulers are
re-fed their own betas in float64 (DDPM's formulas in float64) before comparing, to 1e-6.
"""

from __future__ import annotations

import pytest
import torch

from sonodiff.diffusion import BMapDiffusion, convex_depth

diffusers = pytest.importorskip("diffusers")

T = 200
SCHEDULES = {"cosine": "squaredcos_cap_v2", "linear": "linear"}
TOL = 1e-6


def _float64(sched):
    """Make a diffusers scheduler compute with its own betas in float64."""
    sched.betas = sched.betas.double()
    sched.alphas = 1.0 - sched.betas
    sched.alphas_cumprod = torch.cumprod(sched.alphas, dim=0)
    sched.one = torch.tensor(1.0, dtype=torch.float64)
    if hasattr(sched, "final_alpha_cumprod"):
        sched.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64)
    return sched


def _ddpm(alpha_schedule, **kw):
    scale = 1000 / T  # improved DDPM's linear schedule, scaled to T
    return _float64(
        diffusers.DDPMScheduler(
            num_train_timesteps=T,
            beta_schedule=SCHEDULES[alpha_schedule],
            beta_start=scale * 1e-4,
            beta_end=scale * 0.02,
            prediction_type="epsilon",
            **kw,
        )
    )


def _ours(alpha_schedule, learn_sigma=True, fixed_variance="large"):
    depth = convex_depth(16, 16, (-2.0, 8.0), 18.0, 70.0, 2.0)  # a depth map, switched off by b_min = 1
    return BMapDiffusion(
        T, alpha_schedule, "sqrt", b_min=1.0, depth=depth,
        learn_sigma=learn_sigma, fixed_variance=fixed_variance,
    )


@pytest.fixture(params=sorted(SCHEDULES))
def alpha_schedule(request):
    return request.param


def test_betas_match_diffusers(alpha_schedule):
    ours = _ours(alpha_schedule)
    theirs = _ddpm(alpha_schedule).betas
    assert torch.allclose(torch.from_numpy(ours.betas), theirs, rtol=1e-6, atol=1e-9)


def test_forward_marginal_matches_ddpm(alpha_schedule):
    ours, sched = _ours(alpha_schedule), _ddpm(alpha_schedule)
    g = torch.Generator().manual_seed(0)
    t = torch.tensor([0, 1, 2, 10, 100, T - 2, T - 1])
    x0 = torch.rand(len(t), 2, 16, 16, generator=g, dtype=torch.float64) * 2 - 1
    noise = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    want = sched.add_noise(x0, noise, t)
    got = ours.q_sample(x0, t, noise)
    assert (got - want).abs().max() < TOL
    c = ours.coefficients(t, x0)
    assert torch.allclose(c.alphabar[:, 0, 0, 0], sched.alphas_cumprod[t], rtol=TOL, atol=1e-12)


def test_posterior_matches_ddpm(alpha_schedule):
    ours, sched = _ours(alpha_schedule), _ddpm(alpha_schedule)
    ab = sched.alphas_cumprod
    ab_prev = torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]])
    beta = sched.betas
    for t in [0, 1, 5, T // 2, T - 1]:
        x0 = torch.linspace(-1, 1, 256, dtype=torch.float64).view(1, 1, 16, 16)
        x_t = torch.cos(x0 * 3)
        mean, var, log_var = ours.q_posterior_mean_variance(x0, x_t, t)
        c1 = ab_prev[t].sqrt() * beta[t] / (1 - ab[t])
        c2 = (1 - beta[t]).sqrt() * (1 - ab_prev[t]) / (1 - ab[t])
        post_var = beta * (1 - ab_prev) / (1 - ab)
        assert (mean - (c1 * x0 + c2 * x_t)).abs().max() < TOL
        assert (var - post_var[t]).abs().max() < TOL
        # improved DDPM's clipping: log betatilde_1 at t = 0
        assert (log_var - torch.log(post_var[max(t, 1)])).abs().max() < TOL
        assert var.shape == log_var.shape == x0.shape


@pytest.mark.parametrize("variance", ["learned_range", "fixed_small", "fixed_large"])
def test_ancestral_step_matches_ddpm(alpha_schedule, variance):
    learn = variance == "learned_range"
    ours = _ours(alpha_schedule, learn_sigma=learn, fixed_variance="small" if learn else variance[6:])
    sched = _ddpm(alpha_schedule, variance_type=variance, clip_sample=True)
    g = torch.Generator().manual_seed(1)
    for t in [T - 1, T // 2, 3, 1, 0]:
        x_t = torch.randn(2, 3, 16, 16, generator=g, dtype=torch.float64)
        out = torch.randn(2, 6 if learn else 3, 16, 16, generator=g, dtype=torch.float64)
        if learn:
            out[:, 3:] = torch.tanh(out[:, 3:])  # v in [-1, 1]
        want = sched.step(out, t, x_t, generator=torch.Generator().manual_seed(t))
        noise = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(t), dtype=torch.float64)
        got = ours.step(out, t, x_t, noise=noise, clip_x0=True)
        assert (got.pred_x0 - want.pred_original_sample).abs().max() < TOL
        assert (got.prev_sample - want.prev_sample).abs().max() < TOL, (t, variance)


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ddim_step_matches_diffusers(alpha_schedule, eta):
    n = 20
    ours = _ours(alpha_schedule, learn_sigma=False).respace(f"ddim{n}")
    scale = 1000 / T
    sched = _float64(
        diffusers.DDIMScheduler(
            num_train_timesteps=T,
            beta_schedule=SCHEDULES[alpha_schedule],
            beta_start=scale * 1e-4,
            beta_end=scale * 0.02,
            clip_sample=True,
            set_alpha_to_one=True,
            timestep_spacing="leading",
        )
    )
    sched.set_timesteps(n)
    assert sched.timesteps.flip(0).tolist() == ours.timestep_map.tolist()
    g = torch.Generator().manual_seed(2)
    for k, t in zip(range(n - 1, -1, -1), sched.timesteps.tolist()):
        x_t = torch.randn(2, 1, 16, 16, generator=g, dtype=torch.float64) * 1.5
        eps = torch.randn(2, 1, 16, 16, generator=g, dtype=torch.float64)
        noise = torch.randn(2, 1, 16, 16, generator=g, dtype=torch.float64)
        want = sched.step(eps, t, x_t, eta=eta, use_clipped_model_output=True, variance_noise=noise)
        got = ours.ddim_step(eps, k, x_t, eta=eta, noise=noise, clip_x0=True)
        assert (got.pred_x0 - want.pred_original_sample).abs().max() < TOL
        assert (got.prev_sample - want.prev_sample).abs().max() < TOL, (k, t)


def test_respaced_ancestral_step_matches_ddpm_custom_timesteps(alpha_schedule):
    """A respaced chain uses beta'_k = 1 - alphabar_{s_k} / alphabar_{s_{k-1}}, as diffusers does
    for custom timesteps."""
    ours = _ours(alpha_schedule, learn_sigma=False, fixed_variance="small").respace(13)
    sched = _ddpm(alpha_schedule, variance_type="fixed_small", clip_sample=True)
    sched.set_timesteps(timesteps=ours.timestep_map.flip(0).tolist())
    g = torch.Generator().manual_seed(3)
    for k in range(ours.num_steps - 1, -1, -1):
        t = int(ours.timestep_map[k])
        x_t = torch.randn(1, 2, 16, 16, generator=g, dtype=torch.float64)
        eps = torch.randn(1, 2, 16, 16, generator=g, dtype=torch.float64)
        want = sched.step(eps, t, x_t, generator=torch.Generator().manual_seed(k))
        noise = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(k), dtype=torch.float64)
        got = ours.step(eps, k, x_t, noise=noise, clip_x0=True)
        assert (got.prev_sample - want.prev_sample).abs().max() < TOL, k


def test_full_ddpm_loop_matches_diffusers():
    """One full ancestral loop (b_min = 1, fixed small variance) against diffusers' loop."""
    steps = 30
    ours = BMapDiffusion(steps, "cosine", "sqrt", b_min=1.0, learn_sigma=False, fixed_variance="small")
    sched = _float64(
        diffusers.DDPMScheduler(
            num_train_timesteps=steps, beta_schedule="squaredcos_cap_v2", variance_type="fixed_small"
        )
    )

    def model(x, t):
        return torch.tanh(x) * (1 + t.view(-1, 1, 1, 1).double() / steps)

    x_T = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    g = torch.Generator().manual_seed(5)
    want, noises = x_T.clone(), {}
    for t in range(steps - 1, -1, -1):
        replay = torch.Generator()
        replay.set_state(g.get_state())  # diffusers' next draw, replayed for ours
        noises[t] = torch.randn(want.shape, generator=replay, dtype=torch.float64)
        want = sched.step(model(want, torch.tensor([t, t])), t, want, generator=g).prev_sample
    got = x_T.clone()
    for k in range(steps - 1, -1, -1):
        t = ours.timestep_map[torch.tensor([k, k])]
        got = ours.step(model(got, t), k, got, noise=noises[k]).prev_sample
    assert (got - want).abs().max() < TOL
    assert torch.isfinite(got).all()
