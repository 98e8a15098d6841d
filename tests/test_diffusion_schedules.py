"""Schedules (registries, equations), respacing specs and depth maps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sonodiff.diffusion import (
    ALPHA_SCHEDULES,
    BMAP_SCHEDULES,
    BMapDiffusion,
    convex_depth,
    depth_from_sector_mask,
    linear_depth,
    register_bmap_schedule,
)
from sonodiff.diffusion.schedules import cosine_betas, even_steps, linear_betas, space_timesteps, strided_steps
from sonodiff.errors import InputError


def test_registries():
    assert set(ALPHA_SCHEDULES) >= {"linear", "cosine"}
    assert set(BMAP_SCHEDULES) >= {"linear", "sqrt", "cosine", "normal_cosine"}


@pytest.mark.parametrize("T", [10, 1000, 2000])
def test_bmap_profiles_follow_their_equations(T):
    t = np.arange(T)
    want = {
        "linear": t / (T - 1),
        "sqrt": np.sqrt(t / (T - 1)),
        "cosine": (1 - np.cos((t + 0.008) / (1.008 * T) * math.pi / 2)) ** 2,
        "normal_cosine": (1 - np.cos(math.pi * t / (T - 1))) / 2,
    }
    for name, values in want.items():
        got = BMAP_SCHEDULES[name](T)
        assert got.dtype == np.float64 and got.shape == (T,)
        np.testing.assert_allclose(got, values, rtol=1e-14, atol=1e-15)
        assert (got >= 0).all() and (got <= 1 + 1e-15).all()


def test_alpha_schedules():
    betas = cosine_betas(1000)
    assert betas.dtype == np.float64 and betas.max() == pytest.approx(0.999)
    abar = np.cumprod(1 - betas)
    f = lambda s: math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    np.testing.assert_allclose(abar[:500], [f((t + 1) / 1000) / f(0) for t in range(500)], rtol=1e-12)
    lin = linear_betas(2000)
    assert lin[0] == pytest.approx(5e-5) and lin[-1] == pytest.approx(0.01)


def test_new_bmap_schedule_is_one_function():
    @register_bmap_schedule("test_quadratic")
    def quadratic(num_steps):
        return (np.arange(num_steps) / (num_steps - 1)) ** 2

    try:
        diff = BMapDiffusion(20, bmap_schedule="test_quadratic", b_min=0.9, depth=linear_depth(4, 4))
        assert torch.allclose(diff.bmap(19)[-1], torch.full((4,), math.sqrt(0.9), dtype=torch.float64))
    finally:
        del BMAP_SCHEDULES["test_quadratic"]


@pytest.mark.parametrize(
    "spec, want",
    [("full", list(range(10))), ("ddim5", [0, 2, 4, 6, 8]), (5, [0, 2, 4, 7, 9]), ("5", [0, 2, 4, 7, 9]),
     ([9, 0, 3, 3], [0, 3, 9]), (10, list(range(10)))],
)
def test_space_timesteps(spec, want):
    assert space_timesteps(10, spec) == want


@pytest.mark.parametrize("spec", ["ddim7", "fast", 0, 11, [10], [], "ddim0"])
def test_space_timesteps_refuses(spec):
    with pytest.raises(InputError):
        space_timesteps(10, spec)


def test_ddim_spec_like_improved_ddpm():
    assert space_timesteps(1000, "ddim50") == list(range(0, 1000, 20))
    assert len(space_timesteps(2000, 250)) == 250


def test_the_two_respacings():
    """even_steps: rounded linspace (ancestral N); strided_steps: one integer stride (DDIM N)."""
    assert even_steps(10, 1) == [9] and even_steps(10, 4) == [0, 3, 6, 9]
    assert strided_steps(10, 4) == [0, 3, 6, 9] and strided_steps(100, 10) == list(range(0, 100, 10))
    assert strided_steps(100, 34) == list(range(0, 100, 3)) and even_steps(100, 34)[-1] == 99
    for bad in (lambda: even_steps(10, 11), lambda: strided_steps(10, 7), lambda: strided_steps(100, 30)):
        with pytest.raises(InputError):
            bad()


# ------------------------------------------------------------------------------------ depth


def test_linear_depth():
    d = linear_depth(5, 3)
    assert d.shape == (5, 3) and d.dtype == torch.float32
    assert torch.allclose(d[:, 0], torch.tensor([0, 0.25, 0.5, 0.75, 1.0]))
    mask = torch.zeros(5, 3, dtype=torch.bool)
    mask[1:4, 1:] = True
    d = linear_depth(5, 3, mask)
    assert (d[~mask] == 0).all() and torch.allclose(d[1:4, 1], torch.tensor([0, 0.5, 1.0]))


def test_convex_depth_geometry():
    d = convex_depth(64, 64, (-10.0, 32.0), 70.0, 60.0, 12.0)
    assert d.min() == 0 and d.max() <= 1 and d.max() > 0.98
    rows, cols = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    r = torch.hypot(rows + 10, cols - 32)
    inside = d > 0
    assert torch.allclose(d[inside], ((r[inside] - 12) / 58).float(), atol=1e-6)
    angle = torch.rad2deg(torch.atan2(cols - 32, rows + 10)).abs()
    assert (d[angle > 30.5] == 0).all()
    # along the central column: 0 above the probe (r < 12), rising to 1 at r = 70, 0 below
    col = d[:, 32]
    assert (col[:2] == 0).all() and (col[2:61].diff() > 0).all() and col[60] == 1 and (col[61:] == 0).all()


@pytest.mark.parametrize("apex_row, inner, width", [(-6.0, 8.0, 96), (0.0, 0.0, 96), (-6.0, 8.0, 64)])
def test_depth_from_sector_mask_recovers_the_fan(apex_row, inner, width):
    """The fan (also when the image border cuts its sides) is recovered from its mask alone."""
    want = convex_depth(96, width, (apex_row, width / 2), 90.0, 70.0, inner)
    mask = want > 0
    got = depth_from_sector_mask(mask.numpy().astype(np.uint8) * 255, "convex")
    assert (got[~mask] == 0).all()
    assert (got - want).abs()[mask].max() < 0.015
    assert got.max() == pytest.approx(1.0)


def test_depth_from_sector_mask_linear_and_errors():
    mask = np.zeros((10, 8), dtype=np.uint8)
    mask[2:9, 1:7] = 255
    d = depth_from_sector_mask(mask, "linear")
    assert torch.allclose(d[2:9, 3], torch.linspace(0, 1, 7))
    # a rectangle has parallel edges: no apex, the linear depth
    assert torch.equal(depth_from_sector_mask(mask, "convex"), d)
    with pytest.raises(InputError, match="probe"):
        depth_from_sector_mask(mask, "phased")
    with pytest.raises(InputError, match="empty"):
        depth_from_sector_mask(np.zeros((4, 4)), "linear")
