"""The sampling loop, outside the process, and the samplers it runs, kept in a registry.

    sampler = get_sampler("ddim")                     # or "ancestral"
    process = sampler.respace(diffusion, 50)          # or "full"
    sample_loop(process, model_fn, noise, generators=None, *, sampler=sampler, eta=0.0,
                clip_x0=True, progress=True, snapshot_every=None, model_kwargs=None)
        -> x_0                                   if snapshot_every is None
        -> (x_0, [Snapshot(step, x_t, pred_x0), ...])   otherwise

A :class:`Sampler` is a name, the respacing it uses for N steps, its step x_t -> x_{t-1} and
whether that step takes fresh noise z ~ N(0, I):

* ``ancestral``: ``process.step`` (Ho et al. 2020, Algorithm 2; learned or fixed variance);
  N steps are :func:`~sonodiff.diffusion.schedules.even_steps` (rounded linspace); noise at
  every step but the last;
* ``ddim``: ``process.ddim_step`` (Song et al. 2021, eq. 12, with ``eta``); N steps are
  :func:`~sonodiff.diffusion.schedules.strided_steps` (improved DDPM's integer stride); noise
  only when eta > 0, never at the last step.

Adding a sampler is one :func:`register_sampler` call; the loop never branches on the sampler.

``noise`` is either the initial x_T (B, C, H, W) or a shape (B, C, H, W) to draw it. With
``generators`` (one ``torch.Generator`` per sample) the initial noise and every step's noise of
sample i come from generators[i] alone, so a set sampled in shards equals the set sampled at
once (given a model whose output for one sample does not depend on the others in the batch).
The model is fed the original step indices: ``model_fn(x_t, process.timestep_map[t], **kw)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

import torch
from tqdm.auto import tqdm

from sonodiff.diffusion.process import BMapDiffusion, ModelFn, StepOutput
from sonodiff.diffusion.schedules import even_steps, strided_steps
from sonodiff.errors import InputError

#: step(process, model_output, k, x_t, noise, eta, clip_x0) -> StepOutput(prev_sample, pred_x0)
StepFn = Callable[[BMapDiffusion, torch.Tensor, int, torch.Tensor, "torch.Tensor | None", float, bool], StepOutput]


@dataclass(frozen=True)
class Sampler:
    """A reverse-process sampler: its respacing of N steps, its step and its noise needs."""

    name: str
    spacing: Callable[[int, int], list[int]]  # (T, N) -> the N kept steps
    step: StepFn
    needs_noise: Callable[[int, float], bool]  # (k, eta) -> does step k draw z ~ N(0, I)?

    def timesteps(self, num_steps: int, steps: int | str) -> list[int]:
        """The kept steps of ``steps`` (an integer N >= 1 or ``"full"``) out of ``num_steps``."""
        return list(range(num_steps)) if check_steps(steps) == "full" else self.spacing(num_steps, int(steps))

    def respace(self, process: BMapDiffusion, steps: int | str) -> BMapDiffusion:
        """``process`` over the steps this sampler keeps for ``steps``."""
        return process.respace(self.timesteps(process.num_steps, steps))


SAMPLERS: dict[str, Sampler] = {}


def register_sampler(sampler: Sampler) -> Sampler:
    """Add ``sampler`` to the registry under its name (``sample.sampler`` in the config)."""
    SAMPLERS[sampler.name] = sampler
    return sampler


def get_sampler(name: str | Sampler, where: str = "config key sample.sampler") -> Sampler:
    """The registered sampler ``name`` (a :class:`Sampler` is returned as is)."""
    if isinstance(name, Sampler):
        return name
    if name not in SAMPLERS:
        raise InputError(where, f"unknown sampler {name!r}; known: {', '.join(sorted(SAMPLERS))}")
    return SAMPLERS[name]


def check_steps(steps: int | str, where: str = "config key sample.steps") -> int | str:
    """``steps`` if it is an integer >= 1 or ``"full"``; the old ``ddimN`` form names the new keys."""
    if isinstance(steps, str):
        text = steps.strip().lower()
        if text == "full":
            return "full"
        if text.startswith("ddim") and text[4:].isdigit():
            raise InputError(where, f"{steps!r} is the old form; "
                             f"set sample.sampler: ddim and sample.steps: {int(text[4:])}")
    elif isinstance(steps, int) and not isinstance(steps, bool) and steps >= 1:
        return steps
    raise InputError(where, f"{steps!r} is neither an integer >= 1 nor 'full'")


def _ancestral_step(process, model_output, k, x_t, noise, eta, clip_x0) -> StepOutput:
    return process.step(model_output, k, x_t, noise=noise, clip_x0=clip_x0)


def _ddim_step(process, model_output, k, x_t, noise, eta, clip_x0) -> StepOutput:
    return process.ddim_step(model_output, k, x_t, eta=eta, noise=noise, clip_x0=clip_x0)


ANCESTRAL = register_sampler(Sampler("ancestral", even_steps, _ancestral_step, lambda k, eta: k > 0))
DDIM = register_sampler(Sampler("ddim", strided_steps, _ddim_step, lambda k, eta: k > 0 and eta > 0))


class Snapshot(NamedTuple):
    step: int  # original step index t of x_t
    x_t: torch.Tensor  # on CPU
    pred_x0: torch.Tensor  # on CPU


def per_sample_noise(
    shape: Sequence[int],
    generators: Sequence[torch.Generator] | None,
    device: torch.device | str,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """N(0, I) of ``shape`` (B, ...); row i drawn from generators[i] (on that generator's device),
    or from the global generator when ``generators`` is None."""
    if generators is None:
        return torch.randn(tuple(shape), device=device, dtype=dtype)
    if len(generators) != shape[0]:
        raise ValueError(f"{len(generators)} generators for a batch of {shape[0]}")
    rows = [torch.randn(tuple(shape[1:]), generator=g, device=g.device, dtype=dtype) for g in generators]
    return torch.stack(rows).to(device)


@torch.no_grad()
def sample_loop(
    process: BMapDiffusion,
    model_fn: ModelFn,
    noise: torch.Tensor | Sequence[int],
    generators: Sequence[torch.Generator] | None = None,
    *,
    sampler: str | Sampler = "ancestral",
    eta: float = 0.0,
    clip_x0: bool = True,
    progress: bool = True,
    snapshot_every: int | None = None,
    model_kwargs: dict | None = None,
):
    """Run the reverse chain of ``process`` (already respaced) from x_T to x_0 (module docstring)."""
    sampler = get_sampler(sampler, "sampler")
    if isinstance(noise, torch.Tensor):
        x = noise.to(process.device)
    else:
        x = per_sample_noise(noise, generators, process.device)
    if generators is not None and len(generators) != x.shape[0]:
        raise ValueError(f"{len(generators)} generators for a batch of {x.shape[0]}")
    snapshots: list[Snapshot] = []
    kwargs = model_kwargs or {}
    steps = range(process.num_steps - 1, -1, -1)
    for k in tqdm(steps, desc=sampler.name, disable=not progress, leave=False):
        t = torch.full((x.shape[0],), k, dtype=torch.long, device=process.device)
        # 1. the model's output at the original step index of k
        out = model_fn(x, process.timestep_map[t], **kwargs)
        # 2. fresh noise z_k ~ N(0, I) per sample, when the sampler's step k takes any
        z = per_sample_noise(x.shape, generators, x.device, x.dtype) if sampler.needs_noise(k, eta) else None
        # 3. x_{k-1} from the sampler's step
        res = sampler.step(process, out, k, x, z, eta, clip_x0)
        if snapshot_every and (k % snapshot_every == 0 or k == process.num_steps - 1):
            step = int(process.timestep_map[k])
            snapshots.append(Snapshot(step, x.detach().cpu(), res.pred_x0.detach().cpu()))
        x = res.prev_sample
    if snapshot_every:
        return x, snapshots
    return x
