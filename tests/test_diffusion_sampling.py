"""The sampling loop, per-sample seeding, snapshots and classifier-free guidance."""

from __future__ import annotations

import pytest
import torch

from sonodiff.diffusion import BMapDiffusion, convex_depth
from sonodiff.diffusion.guidance import classifier_free, guided_model_fn
from sonodiff.diffusion.sampling import per_sample_noise, sample_loop

H = W = 12


def _diff(**kw):
    depth = convex_depth(H, W, (-2.0, 6.0), 14.0, 80.0, 2.0)
    return BMapDiffusion(**{"num_steps": 40, "b_min": 0.9, "depth": depth, **kw})


def _oracle(diff, x0):
    """eps(x_t, t) consistent with a known x_0: (x_t - sqrt(alphabar'_t) x_0) / sqrt(1 - alphabar'_t)."""
    index = {int(s): k for k, s in enumerate(diff.timestep_map)}

    def model_fn(x, t):
        k = torch.tensor([index[int(s)] for s in t])
        c = diff.coefficients(k, x)
        eps = (x - c.sqrt_alphabar * x0) / c.sqrt_one_minus_alphabar
        return torch.cat([eps, torch.zeros_like(eps)], 1) if diff.learn_sigma else eps

    return model_fn


@pytest.mark.parametrize("ddim, eta, spec", [(False, 0.0, "full"), (False, 0.0, 9), (True, 0.0, "ddim8"), (True, 1.0, "ddim8")])
def test_loop_with_oracle_model_recovers_x0(ddim, eta, spec):
    """With B-maps on, an exact eps model makes every sampler land on x_0 (per-pixel formulas
    consistent between the forward process, posterior and DDIM)."""
    diff = _diff().respace(spec)
    x0 = torch.rand(2, 1, H, W, dtype=torch.float64) * 1.6 - 0.8
    x_T = torch.randn(2, 1, H, W, dtype=torch.float64)
    out = sample_loop(diff, _oracle(diff, x0), x_T, ddim=ddim, eta=eta, progress=False)
    assert torch.allclose(out, x0, atol=1e-6)


@pytest.mark.parametrize("ddim, eta", [(False, 0.0), (True, 0.0), (True, 0.7)])
def test_sharded_equals_unsharded(ddim, eta):
    diff = _diff().respace(10)

    def model_fn(x, t):
        return torch.cat([torch.tanh(x) * 0.5, torch.sin(x)], 1)

    def gens(seeds):
        return [torch.Generator().manual_seed(s) for s in seeds]

    whole = sample_loop(diff, model_fn, (4, 2, H, W), gens([10, 11, 12, 13]), ddim=ddim, eta=eta, progress=False)
    part1 = sample_loop(diff, model_fn, (1, 2, H, W), gens([10]), ddim=ddim, eta=eta, progress=False)
    part2 = sample_loop(diff, model_fn, (3, 2, H, W), gens([11, 12, 13]), ddim=ddim, eta=eta, progress=False)
    assert torch.equal(whole, torch.cat([part1, part2]))
    other = sample_loop(diff, model_fn, (1, 2, H, W), gens([99]), ddim=ddim, eta=eta, progress=False)
    assert not torch.equal(other, part1)


def test_per_sample_noise_rows_are_independent_of_batch():
    a = per_sample_noise((3, 2, 4, 4), [torch.Generator().manual_seed(s) for s in (1, 2, 3)], "cpu")
    b = per_sample_noise((1, 2, 4, 4), [torch.Generator().manual_seed(2)], "cpu")
    assert torch.equal(a[1:2], b)
    with pytest.raises(ValueError):
        per_sample_noise((2, 1), [torch.Generator()], "cpu")


def test_snapshots_and_progress(capsys):
    diff = _diff().respace(10)
    x, snaps = sample_loop(
        diff, lambda x, t: torch.zeros(x.shape[0], 2, H, W), (2, 1, H, W), snapshot_every=3, progress=True
    )
    assert [s.step for s in snaps] == [int(diff.timestep_map[k]) for k in (9, 6, 3, 0)]
    assert all(s.x_t.shape == s.pred_x0.shape == x.shape for s in snaps)
    assert "sampling" in capsys.readouterr().err


def test_model_kwargs_are_passed():
    diff = _diff(learn_sigma=False).respace(4)
    seen = []

    def model_fn(x, t, y=None):
        seen.append(y)
        return torch.zeros_like(x)

    sample_loop(diff, model_fn, (1, 1, H, W), progress=False, model_kwargs={"y": "label"})
    assert seen == ["label"] * 4


def test_classifier_free_guidance():
    g = torch.Generator().manual_seed(0)
    cond, uncond = torch.randn(2, 4, 3, 3, generator=g), torch.randn(2, 4, 3, 3, generator=g)
    assert torch.equal(classifier_free(cond, uncond, 0.0), cond)
    out = classifier_free(cond, uncond, 1.5)
    assert torch.allclose(out[:, :2], cond[:, :2] + 1.5 * (cond[:, :2] - uncond[:, :2]))
    assert torch.equal(out[:, 2:], cond[:, 2:])  # variance channels from the conditional output
    out = classifier_free(cond, uncond, 2.0, learn_sigma=False)
    assert torch.allclose(out, 3 * cond - 2 * uncond)

    calls = []

    def cond_fn(x, t):
        calls.append("c")
        return cond

    def uncond_fn(x, t):
        calls.append("u")
        return uncond

    assert torch.equal(guided_model_fn(cond_fn, uncond_fn, 0.0)(None, None), cond) and calls == ["c"]
    assert torch.allclose(guided_model_fn(cond_fn, uncond_fn, 1.5)(None, None), classifier_free(cond, uncond, 1.5))
