"""Noise schedules as pure functions of the number of steps, in float64, kept in registries.

Steps are indexed t = 0..T-1 (the paper's t = 1..T). Two families:

* alpha schedules return the betas beta_t (alpha_t = 1 - beta_t) of the ordinary DDPM;
* B-map time profiles return b_t in [0, 1], the fraction of the B-map attenuation applied at
  step t. The B-map itself is B_t(p) = sqrt(1 - d(p) b_t (1 - b_min)) (Dominguez et al. 2024,
  Sec. 2.2; ``bmap_factors``).

Adding a schedule is one decorated function; nothing else changes::

    @register_bmap_schedule("quadratic")
    def quadratic_profile(num_steps): return (np.arange(num_steps) / (num_steps - 1)) ** 2

``even_steps`` and ``strided_steps`` are the two respacings (of the ancestral and the DDIM
sampler); ``space_timesteps`` turns a respacing spec ("full", N, "ddimN", list) into the kept steps.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from sonodiff.errors import InputError

Schedule = Callable[[int], np.ndarray]

ALPHA_SCHEDULES: dict[str, Schedule] = {}
BMAP_SCHEDULES: dict[str, Schedule] = {}


def register_alpha_schedule(name: str) -> Callable[[Schedule], Schedule]:
    """Decorator: register ``fn(num_steps) -> betas (T,) float64`` under ``name``."""

    def wrap(fn: Schedule) -> Schedule:
        ALPHA_SCHEDULES[name] = fn
        return fn

    return wrap


def register_bmap_schedule(name: str) -> Callable[[Schedule], Schedule]:
    """Decorator: register ``fn(num_steps) -> b (T,) float64 in [0, 1]`` under ``name``."""

    def wrap(fn: Schedule) -> Schedule:
        BMAP_SCHEDULES[name] = fn
        return fn

    return wrap


def get_schedule(registry: dict[str, Schedule], name: str, where: str) -> Schedule:
    """Look ``name`` up in ``registry``; unknown names raise ``InputError(where, ...)``."""
    if name not in registry:
        raise InputError(where, f"unknown schedule {name!r}; known: {', '.join(sorted(registry))}")
    return registry[name]


# ------------------------------------------------------------------------------ alpha schedules


@register_alpha_schedule("linear")
def linear_betas(num_steps: int) -> np.ndarray:
    """beta_t = linspace(s 1e-4, s 0.02, T), s = 1000 / T.

    Ho et al. 2020 (T = 1000), scaled to other T as in Nichol & Dhariwal 2021 (improved DDPM,
    ``get_named_beta_schedule("linear")``) so that the end points keep the same total noise.
    """
    scale = 1000.0 / num_steps
    return np.linspace(scale * 1e-4, scale * 0.02, num_steps, dtype=np.float64)


@register_alpha_schedule("scaled_linear")
def scaled_linear_betas(num_steps: int, beta_start: float = 0.00085, beta_end: float = 0.012) -> np.ndarray:
    """beta_t = linspace(sqrt(0.00085), sqrt(0.012), T)^2: Stable Diffusion's schedule (Rombach et
    al. 2022; diffusers' ``scaled_linear``), which a fine-tuned Stable Diffusion UNet must keep."""
    return np.linspace(beta_start ** 0.5, beta_end ** 0.5, num_steps, dtype=np.float64) ** 2


@register_alpha_schedule("cosine")
def cosine_betas(num_steps: int, max_beta: float = 0.999) -> np.ndarray:
    """Nichol & Dhariwal 2021, eq. 17: alphabar(s) = cos^2(((s + 0.008) / 1.008) pi / 2),
    beta_t = min(1 - alphabar((t + 1) / T) / alphabar(t / T), max_beta) (diffusers'
    ``squaredcos_cap_v2``)."""
    return betas_for_alpha_bar(
        num_steps, lambda s: math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2, max_beta
    )


def betas_for_alpha_bar(
    num_steps: int, alpha_bar: Callable[[float], float], max_beta: float = 0.999
) -> np.ndarray:
    """beta_t = min(1 - alpha_bar((t + 1) / T) / alpha_bar(t / T), max_beta), t = 0..T-1."""
    return np.array(
        [
            min(1.0 - alpha_bar((t + 1) / num_steps) / alpha_bar(t / num_steps), max_beta)
            for t in range(num_steps)
        ],
        dtype=np.float64,
    )


# ------------------------------------------------------------------------ B-map time profiles


@register_bmap_schedule("linear")
def linear_profile(num_steps: int) -> np.ndarray:
    """b_t = t / (T - 1)."""
    return np.arange(num_steps, dtype=np.float64) / (num_steps - 1)


@register_bmap_schedule("sqrt")
def sqrt_profile(num_steps: int) -> np.ndarray:
    """b_t = sqrt(t / (T - 1)) (the paper's choice)."""
    return np.sqrt(np.arange(num_steps, dtype=np.float64) / (num_steps - 1))


@register_bmap_schedule("cosine")
def cosine_profile(num_steps: int) -> np.ndarray:
    """b_t = (1 - cos(((t + 0.008) / (1.008 T)) pi / 2))^2."""
    t = np.arange(num_steps, dtype=np.float64)
    return (1.0 - np.cos((t + 0.008) / (1.008 * num_steps) * np.pi / 2)) ** 2


@register_bmap_schedule("normal_cosine")
def normal_cosine_profile(num_steps: int) -> np.ndarray:
    """b_t = (1 - cos(pi t / (T - 1))) / 2."""
    t = np.arange(num_steps, dtype=np.float64)
    return (1.0 - np.cos(np.pi * t / (num_steps - 1))) / 2


# ----------------------------------------------------------------------------- B-map tables


def bmap_factors(profile: np.ndarray, depth: np.ndarray, b_min: float) -> np.ndarray:
    """B_t(d) = sqrt(1 - d b_t (1 - b_min)), shape (T, n) for depths d of shape (n,)."""
    return np.sqrt(1.0 - np.outer(profile, depth) * (1.0 - b_min))


def log_bbar_tables(
    profile: np.ndarray, depth: np.ndarray, b_min: float
) -> tuple[np.ndarray, np.ndarray]:
    """log Bbar_t(d) and its derivative in d, both (T, n) float64, for depths d of shape (n,).

    log Bbar_t(d) = sum_{s<=t} (1/2) log(1 - d b_s c),  c = 1 - b_min
    d/dd log Bbar_t(d) = - sum_{s<=t} (1/2) b_s c / (1 - d b_s c)
    """
    bc = np.outer(profile, np.ones_like(depth)) * (1.0 - b_min)  # (T, n)
    x = bc * depth[None, :]
    log_b = 0.5 * np.log1p(-x)
    dlog_b = -0.5 * bc / (1.0 - x)
    return np.cumsum(log_b, axis=0), np.cumsum(dlog_b, axis=0)


# -------------------------------------------------------------------------------- respacing


def even_steps(num_steps: int, n: int) -> list[int]:
    """N steps evenly spread over 0..T-1, rounded: ``round(linspace(0, T - 1, N))`` (first 0,
    last T-1; N = 1 keeps T-1). The respacing of the ancestral sampler."""
    if not 1 <= n <= num_steps:
        raise InputError("respace steps", f"{n} steps requested from a {num_steps}-step process")
    if n == 1:
        return [num_steps - 1]
    return sorted({int(round(x)) for x in np.linspace(0, num_steps - 1, n)})


def strided_steps(num_steps: int, n: int) -> list[int]:
    """``range(0, T, stride)`` with the integer stride that gives exactly N steps (DDIM's uniform
    skip, improved DDPM's ``space_timesteps("ddimN")``). The respacing of the DDIM sampler."""
    for stride in range(1, num_steps + 1):
        if len(range(0, num_steps, stride)) == n:
            return list(range(0, num_steps, stride))
    raise InputError("respace steps", f"no integer stride gives {n} of {num_steps} steps")


def space_timesteps(num_steps: int, spec: int | str | Sequence[int]) -> list[int]:
    """The kept steps (sorted, unique, in 0..T-1) of a respacing ``spec``.

    * ``"full"``: all T steps;
    * ``N`` or ``"N"``: :func:`even_steps`;
    * ``"ddimN"``: :func:`strided_steps`;
    * a list of step indices.
    """
    where = "respace steps"
    if isinstance(spec, str):
        s = spec.strip().lower()
        if s == "full":
            return list(range(num_steps))
        if s.startswith("ddim"):
            return strided_steps(num_steps, _positive_int(s[4:], where, spec))
        spec = _positive_int(s, where, spec)
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        return even_steps(num_steps, int(spec))
    steps = sorted({int(s) for s in spec})
    if not steps or steps[0] < 0 or steps[-1] >= num_steps:
        raise InputError(where, f"steps must be a non-empty subset of 0..{num_steps - 1}")
    return steps


def _positive_int(text: str, where: str, spec: object) -> int:
    if not text.isdigit() or int(text) < 1:
        raise InputError(where, f"{spec!r} is not 'full', a count, 'ddimN' or a list of steps")
    return int(text)
