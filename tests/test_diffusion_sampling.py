"""The sampler registry, the sampling loop, per-sample seeding, snapshots and classifier-free guidance."""

from __future__ import annotations

import pytest
import torch

from sonodiff.diffusion import BMapDiffusion, convex_depth
from sonodiff.diffusion.guidance import classifier_free, guided_model_fn
from sonodiff.diffusion.sampling import SAMPLERS, check_steps, get_sampler, per_sample_noise, sample_loop
from sonodiff.diffusion.schedules import space_timesteps
from sonodiff.errors import InputError

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


@pytest.mark.parametrize("sampler, eta, steps", [("ancestral", 0.0, "full"), ("ancestral", 0.0, 9), ("ddim", 0.0, 8),
                                                 ("ddim", 1.0, 8), ("ddim", 0.0, "full")])
def test_loop_with_oracle_model_recovers_x0(sampler, eta, steps):
    """With B-maps on, an exact eps model makes every sampler land on x_0 (per-pixel formulas
    consistent between the forward process, posterior and DDIM)."""
    diff = get_sampler(sampler).respace(_diff(), steps)
    x0 = torch.rand(2, 1, H, W, dtype=torch.float64) * 1.6 - 0.8
    x_T = torch.randn(2, 1, H, W, dtype=torch.float64)
    out = sample_loop(diff, _oracle(diff, x0), x_T, sampler=sampler, eta=eta, progress=False)
    assert torch.allclose(out, x0, atol=1e-6)


@pytest.mark.parametrize("sampler, eta", [("ancestral", 0.0), ("ddim", 0.0), ("ddim", 0.7)])
def test_sharded_equals_unsharded(sampler, eta):
    diff = _diff().respace(10)

    def model_fn(x, t):
        return torch.cat([torch.tanh(x) * 0.5, torch.sin(x)], 1)

    def gens(seeds):
        return [torch.Generator().manual_seed(s) for s in seeds]

    whole = sample_loop(diff, model_fn, (4, 2, H, W), gens([10, 11, 12, 13]), sampler=sampler, eta=eta, progress=False)
    part1 = sample_loop(diff, model_fn, (1, 2, H, W), gens([10]), sampler=sampler, eta=eta, progress=False)
    part2 = sample_loop(diff, model_fn, (3, 2, H, W), gens([11, 12, 13]), sampler=sampler, eta=eta, progress=False)
    assert torch.equal(whole, torch.cat([part1, part2]))
    other = sample_loop(diff, model_fn, (1, 2, H, W), gens([99]), sampler=sampler, eta=eta, progress=False)
    assert not torch.equal(other, part1)


def test_samplers_respace_as_the_old_step_strings():
    """``ddim`` with N steps keeps what ``ddimN`` kept (integer stride), ``ancestral`` N what N kept."""
    for n in (2, 5, 10, 25, 50, 200):
        assert get_sampler("ddim").timesteps(1000, n) == space_timesteps(1000, f"ddim{n}")
        assert get_sampler("ancestral").timesteps(1000, n) == space_timesteps(1000, n)
    for name in SAMPLERS:
        assert get_sampler(name).timesteps(40, "full") == list(range(40))
    assert get_sampler("ddim").respace(_diff(), 8).timestep_map.tolist() == _diff().respace("ddim8").timestep_map.tolist()


def test_loop_equals_the_hand_written_chain():
    """sample_loop runs each sampler's step with the noise it asks for, and nothing else."""
    diff = _diff().respace(6)

    def model_fn(x, t):
        return torch.cat([torch.tanh(x) * 0.5, torch.sin(x)], 1)

    for sampler, eta in (("ancestral", 0.0), ("ddim", 0.0), ("ddim", 0.6)):
        x = torch.randn(2, 1, H, W, generator=torch.Generator().manual_seed(4))
        g = torch.Generator().manual_seed(5)
        want = x.clone()
        for k in range(diff.num_steps - 1, -1, -1):
            out = model_fn(want, diff.timestep_map[torch.full((2,), k)])
            drawn = k > 0 and (sampler == "ancestral" or eta > 0)
            z = torch.stack([torch.randn(1, H, W, generator=g) for _ in range(2)]) if drawn else None
            step = diff.step(out, k, want, noise=z) if sampler == "ancestral" else diff.ddim_step(out, k, want, eta, z)
            want = step.prev_sample
        g = torch.Generator().manual_seed(5)  # one generator for both rows: the rows' draws alternate
        got = sample_loop(diff, model_fn, x, [g, g], sampler=sampler, eta=eta, progress=False)
        assert torch.equal(got, want), sampler


def test_unknown_sampler_and_old_steps_are_refused():
    with pytest.raises(InputError, match="config key sample.sampler: unknown sampler 'plms'; known: ancestral, ddim"):
        get_sampler("plms")
    with pytest.raises(InputError) as err:
        check_steps("ddim10")
    assert str(err.value) == ("config key sample.steps: 'ddim10' is the old form; "
                              "set sample.sampler: ddim and sample.steps: 10")
    for bad in (0, "fast", "10", 2.5, True):
        with pytest.raises(InputError, match="config key sample.steps"):
            check_steps(bad)
    assert check_steps(10) == 10 and check_steps("full") == "full"


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
    assert "ancestral" in capsys.readouterr().err


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
