"""Properties of the B-map process, checked against dense per-pixel float64 formulas written here
independently of the tabulated implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sonodiff.diffusion import BMapDiffusion, convex_depth, linear_depth
from sonodiff.diffusion.schedules import ALPHA_SCHEDULES, BMAP_SCHEDULES
from sonodiff.errors import InputError

H = W = 12


def _depth():
    return convex_depth(H, W, (-2.0, 6.0), 14.0, 80.0, 2.0)


def _dense_alpha_prime(diff: BMapDiffusion, depth: torch.Tensor) -> torch.Tensor:
    """alpha'_t(p) = alpha_t sqrt(1 - d(p) b_t (1 - b_min)), (T, H, W) float64, from the definition."""
    alpha = torch.from_numpy(1 - diff.betas)
    b = torch.from_numpy(diff.profile)
    d = depth.double()
    c = 1 - diff.config["b_min"]
    return alpha[:, None, None] * torch.sqrt(1 - d[None] * b[:, None, None] * c)


def _all_steps(diff: BMapDiffusion, like_shape=(1, H, W)):
    t = torch.arange(diff.num_steps)
    like = torch.zeros(len(t), *like_shape, dtype=torch.float64)
    return diff.coefficients(t, like)


@pytest.mark.parametrize("bmap_schedule", sorted(BMAP_SCHEDULES))
@pytest.mark.parametrize("alpha_schedule", sorted(ALPHA_SCHEDULES))
def test_one_step_kernels_compose_to_the_marginal(alpha_schedule, bmap_schedule):
    """x_t = sqrt(alpha'_t) x_{t-1} + sqrt(beta'_t) eps composed from t = 0: mean coefficient
    prod sqrt(alpha'_s) and variance v_t = alpha'_t v_{t-1} + beta'_t equal the closed form
    sqrt(alphabar'_t), 1 - alphabar'_t at every pixel."""
    depth = _depth()
    diff = BMapDiffusion(150, alpha_schedule, bmap_schedule, b_min=0.9, depth=depth)
    a = _dense_alpha_prime(diff, depth)
    c = _all_steps(diff)
    mean_coef = torch.ones(H, W, dtype=torch.float64)
    var = torch.zeros(H, W, dtype=torch.float64)
    for t in range(diff.num_steps):
        mean_coef = mean_coef * a[t].sqrt()
        var = a[t] * var + (1 - a[t])
        assert torch.allclose(c.beta[t, 0], 1 - a[t], rtol=1e-10, atol=1e-15)
        assert torch.allclose(c.sqrt_alphabar[t, 0], mean_coef, rtol=1e-10, atol=1e-15)
        assert torch.allclose(1 - c.alphabar[t, 0], var, rtol=1e-10, atol=1e-15)
    mean, variance, _ = diff.q_mean_variance(torch.ones(1, 1, H, W, dtype=torch.float64), diff.num_steps - 1)
    assert torch.allclose(mean[0, 0], mean_coef) and torch.allclose(variance[0, 0], var)


def test_posterior_is_bayes_rule_per_pixel():
    """log q(x_{t-1}|x_t,x_0) = log q(x_t|x_{t-1}) + log q(x_{t-1}|x_0) - log q(x_t|x_0), pointwise."""
    depth = _depth()
    diff = BMapDiffusion(100, "cosine", "sqrt", b_min=0.8, depth=depth)
    a = _dense_alpha_prime(diff, depth)
    ab = torch.cumprod(a, 0)
    g = torch.Generator().manual_seed(0)

    def log_normal(x, mean, var):
        return -0.5 * (math.log(2 * math.pi) + torch.log(var) + (x - mean) ** 2 / var)

    for t in [1, 2, 30, 99]:
        x0, x_t, x_prev = (torch.randn(4, 2, H, W, generator=g, dtype=torch.float64) for _ in range(3))
        mean, var, _ = diff.q_posterior_mean_variance(x0, x_t, t)
        lhs = log_normal(x_prev, mean, var)
        rhs = (
            log_normal(x_t, a[t].sqrt() * x_prev, 1 - a[t])
            + log_normal(x_prev, ab[t - 1].sqrt() * x0, 1 - ab[t - 1])
            - log_normal(x_t, ab[t].sqrt() * x0, 1 - ab[t])
        )
        assert torch.allclose(lhs, rhs, rtol=1e-9, atol=1e-9), t


def test_posterior_at_t0_and_clipping():
    diff = BMapDiffusion(50, b_min=0.9, depth=_depth())
    x0 = torch.rand(2, 1, H, W, dtype=torch.float64)
    x_t = torch.randn(2, 1, H, W, dtype=torch.float64)
    mean, var, log_var = diff.q_posterior_mean_variance(x0, x_t, 0)
    assert torch.allclose(mean, x0) and (var == 0).all()  # q(x_{-1}|x_0, x_0) is a point mass at x_0
    _, var1, _ = diff.q_posterior_mean_variance(x0, x_t, 1)
    assert torch.isfinite(log_var).all() and torch.allclose(log_var, torch.log(var1))


def test_respaced_marginals_equal_full_marginals_at_kept_steps():
    depth = _depth()
    full = BMapDiffusion(200, "cosine", "sqrt", b_min=0.95, depth=depth)
    for spec in ["ddim20", 7, [0, 3, 50, 51, 199], "full"]:
        resp = full.respace(spec)
        kept = resp.timestep_map
        cf, cr = _all_steps(full), _all_steps(resp)
        assert torch.equal(cr.alphabar, cf.alphabar[kept])
        # the respaced one-step kernels compose to the same marginals
        var = torch.zeros(H, W, dtype=torch.float64)
        for k in range(resp.num_steps):
            a = 1 - cr.beta[k, 0]
            var = a * var + cr.beta[k, 0]
            assert torch.allclose(1 - cr.alphabar[k, 0], var, rtol=1e-10, atol=1e-14)
            # and alpha'_k is the ratio of alphabar' at consecutive kept steps
            prev = cf.alphabar[kept[k - 1], 0] if k > 0 else torch.ones(H, W, dtype=torch.float64)
            assert torch.allclose(a, cf.alphabar[kept[k], 0] / prev, rtol=1e-12)


def test_respace_of_respace_keeps_original_indices():
    full = BMapDiffusion(100, depth=_depth(), b_min=0.9)
    twice = full.respace("ddim20").respace([0, 5, 19])
    assert twice.timestep_map.tolist() == [0, 25, 95]
    assert twice.config["steps"] == [0, 25, 95]


def test_bbar_last_step_one_at_probe_smallest_deepest():
    depth = _depth()
    diff = BMapDiffusion(300, "cosine", "sqrt", b_min=0.97, depth=depth)
    bbar = diff.bbar(diff.num_steps - 1)
    assert (bbar[depth == 0] == 1).all()
    assert torch.allclose(bbar[depth == depth.max()], bbar.min())
    assert bbar.min() < 1
    order = torch.argsort(depth.flatten())  # Bbar decreases with depth
    assert (bbar.flatten()[order].diff() <= 1e-15).all()
    # the per-step B-map equals its definition
    b = diff.profile[150]
    assert torch.allclose(diff.bmap(150), torch.sqrt(1 - depth.double() * b * 0.03), rtol=1e-12)


def test_b_min_one_is_exactly_ddpm():
    plain = BMapDiffusion(100, "linear", "sqrt", b_min=1.0)
    with_depth = BMapDiffusion(100, "linear", "sqrt", b_min=1.0, depth=_depth())
    x = torch.zeros(100, 1, H, W, dtype=torch.float64)
    t = torch.arange(100)
    for a, b in zip(plain.coefficients(t, x), with_depth.coefficients(t, x)):
        assert torch.equal(a.expand_as(b), b)
    assert torch.allclose(plain.coefficients(t, x).alphabar.flatten(), torch.from_numpy(np.cumprod(1 - plain.betas)), rtol=1e-12)


@pytest.mark.parametrize("b_min", [0.97, 0.85])
def test_tabulated_equals_dense(b_min):
    """Grid + cubic Hermite interpolation (forced: more distinct depths than nodes) is within
    1e-6 of the dense per-pixel computation for every coefficient, at T = 2000."""
    depth = convex_depth(48, 48, (-5.0, 24.0), 50.0, 70.0, 5.0)
    diff = BMapDiffusion(2000, "cosine", "sqrt", b_min=b_min, depth=depth, depth_nodes=65)
    assert diff.table.weights is not None and len(torch.unique(depth)) > 65
    a = _dense_alpha_prime(diff, depth)  # (T, 48, 48)
    log_ab = torch.cumsum(torch.log(a), 0)
    ab = torch.exp(log_ab)
    ab_prev = torch.cat([torch.ones_like(ab[:1]), ab[:-1]])
    for t in [torch.arange(0, 2000, 7), torch.tensor([1, 2, 1998, 1999])]:
        c = diff.coefficients(t, torch.zeros(len(t), 1, 48, 48, dtype=torch.float64))
        dense = {
            "alphabar": ab[t],
            "beta": 1 - a[t],
            "posterior_variance": (1 - a[t]) * (1 - ab_prev[t]) / (1 - ab[t]),
            "posterior_mean_coef1": ab_prev[t].sqrt() * (1 - a[t]) / (1 - ab[t]),
            "posterior_mean_coef2": a[t].sqrt() * (1 - ab_prev[t]) / (1 - ab[t]),
        }
        for name, want in dense.items():
            assert (getattr(c, name)[:, 0] - want).abs().max() < 1e-6, name
        assert (torch.log(c.alphabar[:, 0]) - log_ab[t]).abs().max() < 1e-6


def test_exact_nodes_for_few_distinct_depths():
    depth = linear_depth(32, 8)
    diff = BMapDiffusion(500, b_min=0.9, depth=depth)
    assert diff.table.weights is None and diff.table.num_nodes == 32
    a = _dense_alpha_prime(diff, depth)
    ab = torch.cumprod(a, 0)
    c = _all_steps(diff, (1, 32, 8))
    assert torch.allclose(c.alphabar[:, 0], ab, rtol=1e-12, atol=0)


def test_memory_at_paper_scale():
    """T = 2000, 256 x 256, convex probe: state <= 64 MB and independent of batch and channels."""
    depth = convex_depth(256, 256, (-30.0, 128.0), 260.0, 70.0, 30.0)
    diff = BMapDiffusion(2000, "cosine", "sqrt", b_min=0.96, depth=depth)
    assert diff.nbytes <= 64 * 2**20
    before = diff.nbytes
    diff.q_sample(torch.zeros(2, 3, 256, 256), torch.tensor([0, 1999]))
    assert diff.nbytes == before


# ------------------------------------------------------------------- model outputs and losses


def _model(channels_out):
    def model_fn(x, t):
        torch.manual_seed(0)
        out = torch.randn(x.shape[0], channels_out, *x.shape[2:], dtype=x.dtype)
        return out.clamp(-1, 1)

    return model_fn


@pytest.mark.parametrize("learn_sigma", [True, False])
def test_loss_and_variance_finite_at_ends(learn_sigma):
    diff = BMapDiffusion(1000, "cosine", "sqrt", b_min=0.96, depth=_depth(), learn_sigma=learn_sigma)
    x0 = torch.rand(3, 2, H, W) * 2 - 1
    out_channels = 4 if learn_sigma else 2
    for t in [0, 999]:
        tt = torch.full((3,), t)
        losses = diff.training_losses(_model(out_channels), x0, tt)
        assert set(losses) == {"loss", "mse", "vb"}
        for v in losses.values():
            assert v.shape == (3,) and torch.isfinite(v).all()
        for v_fill in [-1.0, 0.0, 1.0]:
            out = torch.cat([torch.zeros_like(x0), torch.full_like(x0, v_fill)], 1) if learn_sigma else torch.zeros_like(x0)
            mv = diff.p_mean_variance(out, x0, tt)
            assert torch.isfinite(mv.log_variance).all() and (mv.variance > 0).all()
    if learn_sigma:  # v interpolates between log betatilde' (v = -1) and log beta' (v = 1)
        c = diff.coefficients(5, x0)
        lo = diff.p_mean_variance(torch.cat([x0, -torch.ones_like(x0)], 1), x0, 5).log_variance
        hi = diff.p_mean_variance(torch.cat([x0, torch.ones_like(x0)], 1), x0, 5).log_variance
        assert torch.allclose(lo, c.posterior_log_variance_clipped.expand_as(x0))
        assert torch.allclose(hi, c.log_beta.expand_as(x0))
        assert (hi >= lo - 1e-6).all()


def test_vlb_term_freezes_the_mean():
    """Gradients of vb reach only the variance channels; mse reaches only the eps channels."""
    diff = BMapDiffusion(100, b_min=0.9, depth=_depth())
    x0 = torch.rand(2, 1, H, W) * 2 - 1
    out = torch.zeros(2, 2, H, W, requires_grad=True)
    losses = diff.training_losses(lambda x, t: out * 1.0, x0, torch.tensor([0, 50]))
    (g_vb,) = torch.autograd.grad(losses["vb"].sum(), out, retain_graph=True)
    assert (g_vb[:, 0] == 0).all() and g_vb[:, 1].abs().sum() > 0
    (g_mse,) = torch.autograd.grad(losses["mse"].sum(), out)
    assert (g_mse[:, 1] == 0).all() and g_mse[:, 0].abs().sum() > 0
    want = losses["mse"] + 0.001 * 100 * losses["vb"]
    assert torch.allclose(losses["loss"], want)


def test_vlb_conventions_differ_by_exactly_the_number_of_steps(default_config):
    """On one fixed batch, "sum" weights L_t by w T and "per_step" by w: loss - mse differs by T;
    the key reaches the process through from_config and is stored in its config."""
    gen = torch.Generator().manual_seed(0)
    x0 = torch.rand(3, 1, H, W, generator=gen, dtype=torch.float64) * 2 - 1   # float64: loss - mse is exact
    t, noise = torch.tensor([0, 40, 99]), torch.randn(3, 1, H, W, generator=gen, dtype=torch.float64)
    out = torch.randn(3, 2, H, W, generator=gen, dtype=torch.float64)
    section = {**default_config["diffusion"], "num_steps": 100, "b_min": 0.9, "vlb_weight": 0.01}
    losses = {}
    for convention in ("sum", "per_step"):
        diff = BMapDiffusion.from_config({**section, "vlb_convention": convention}, _depth())
        assert diff.config["vlb_convention"] == convention and diff.vlb_convention.value == convention
        losses[convention] = diff.training_losses(lambda x, tt: out, x0, t, noise)
    a, b = losses["sum"], losses["per_step"]
    assert torch.equal(a["mse"], b["mse"]) and torch.equal(a["vb"], b["vb"]) and (a["vb"] > 0).all()
    torch.testing.assert_close(b["loss"], b["mse"] + 0.01 * b["vb"], rtol=1e-12, atol=0)
    torch.testing.assert_close(a["loss"] - a["mse"], 100 * (b["loss"] - b["mse"]), rtol=1e-9, atol=0)
    respaced = BMapDiffusion.from_config({**section, "vlb_convention": "per_step"}, _depth()).respace(10)
    assert respaced.config["vlb_convention"] == "per_step" and respaced.vlb_factor == 0.01


def test_model_is_fed_original_timesteps():
    seen = []

    def model_fn(x, t):
        seen.append(t.clone())
        return torch.zeros(x.shape[0], 2 * x.shape[1], *x.shape[2:])

    diff = BMapDiffusion(100, depth=_depth(), b_min=0.9).respace("ddim10")
    diff.training_losses(model_fn, torch.zeros(2, 1, H, W), torch.tensor([0, 9]))
    assert seen[0].tolist() == [0, 90]


@pytest.mark.parametrize(
    "shape, learn_sigma, with_depth",
    [((1, 1, H, W), True, True), ((4, 3, H, W), True, True), ((2, 2, H, W), False, True),
     ((3, 1, 5, 7), True, False), ((2, 3, 16, 4), False, False)],
)
def test_shapes(shape, learn_sigma, with_depth):
    depth = _depth() if with_depth else None
    diff = BMapDiffusion(20, b_min=0.95, depth=depth, learn_sigma=learn_sigma)
    b, ch = shape[:2]
    x0 = torch.rand(shape) * 2 - 1
    t = torch.randint(0, 20, (b,))
    noise = torch.randn(shape)
    assert diff.q_sample(x0, t, noise).shape == shape
    for y in diff.q_posterior_mean_variance(x0, x0, t):
        assert y.shape == shape
    c = diff.coefficients(t, x0)
    assert c.alphabar.shape == ((b, 1, *shape[2:]) if with_depth else (b, 1, 1, 1))
    out = torch.zeros(b, 2 * ch if learn_sigma else ch, *shape[2:])
    for y in diff.p_mean_variance(out, x0, t):
        assert y.shape == shape
    for step in (diff.step(out, 3, x0, noise), diff.ddim_step(out, 3, x0, eta=0.5, noise=noise)):
        assert step.prev_sample.shape == step.pred_x0.shape == shape
    losses = diff.training_losses(lambda x, tt: out, x0, t)
    assert all(v.shape == (b,) for v in losses.values())
    with pytest.raises(ValueError):
        diff.p_mean_variance(torch.zeros(b, 5 * ch, *shape[2:]), x0, t)


def test_dtype_follows_data():
    diff = BMapDiffusion(20, b_min=0.95, depth=_depth())
    for dtype in (torch.float32, torch.float64):
        assert diff.q_sample(torch.zeros(1, 1, H, W, dtype=dtype), 5).dtype == dtype


def test_wrong_image_size_is_refused():
    diff = BMapDiffusion(20, b_min=0.95, depth=_depth())
    with pytest.raises(ValueError, match="depth map size"):
        diff.q_sample(torch.zeros(1, 1, H + 1, W), 0)


@pytest.mark.parametrize(
    "kwargs, key",
    [({"b_min": 0.0}, "b_min"), ({"b_min": 1.5}, "b_min"), ({"alpha_schedule": "nope"}, "alpha_schedule"),
     ({"bmap_schedule": "nope"}, "bmap_schedule"), ({"num_steps": 1}, "num_steps"),
     ({"fixed_variance": "medium"}, "fixed_variance"), ({"vlb_convention": "mean"}, "vlb_convention"), ({"depth": torch.full((4, 4), 2.0)}, "depth"),
     ({"depth": torch.zeros(2, 3, 3)}, "depth")],
)
def test_bad_config_is_refused(kwargs, key):
    with pytest.raises(InputError, match=key):
        BMapDiffusion(**{"num_steps": 10, **kwargs})


def test_ddim_eta_one_is_the_ancestral_step_with_posterior_variance():
    """Per pixel, DDIM with eta = 1 (sigma^2 = betatilde') equals the ancestral step with the
    fixed small variance (Song et al. Sec. 4.1), with B-maps on."""
    diff = BMapDiffusion(50, b_min=0.9, depth=_depth(), learn_sigma=False, fixed_variance="small")
    g = torch.Generator().manual_seed(0)
    for k in [49, 20, 1]:
        x_t = torch.randn(2, 1, H, W, generator=g, dtype=torch.float64)
        eps = torch.randn(2, 1, H, W, generator=g, dtype=torch.float64)
        z = torch.randn(2, 1, H, W, generator=g, dtype=torch.float64)
        a = diff.ddim_step(eps, k, x_t, eta=1.0, noise=z, clip_x0=False)
        b = diff.step(eps, k, x_t, noise=z, clip_x0=False)
        assert torch.allclose(a.prev_sample, b.prev_sample, rtol=1e-9, atol=1e-9)


def test_to_device_returns_self_and_moves_state():
    diff = BMapDiffusion(10, b_min=0.9, depth=_depth())
    assert diff.to("cpu") is diff and diff.device.type == "cpu"
    if torch.cuda.is_available():
        diff.to("cuda")
        x = diff.q_sample(torch.zeros(1, 1, H, W, device="cuda"), 3)
        assert x.device.type == "cuda"


def test_underflowing_alphabar_is_refused():
    """b_min = 0.5 over 2000 steps drives alphabar' below e^-150 at depth 1: refused, by key."""
    with pytest.raises(InputError, match="b_min"):
        BMapDiffusion(2000, b_min=0.5, depth=_depth())
