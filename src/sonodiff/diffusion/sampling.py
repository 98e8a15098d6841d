"""The sampling loop, outside the process: ancestral (full or respaced) or DDIM.

    sample_loop(diffusion, model_fn, noise, generators=None, *, ddim=False, eta=0.0,
                clip_x0=True, progress=True, snapshot_every=None, model_kwargs=None)
        -> x_0                                   if snapshot_every is None
        -> (x_0, [Snapshot(step, x_t, pred_x0), ...])   otherwise

``noise`` is either the initial x_T (B, C, H, W) or a shape (B, C, H, W) to draw it. With
``generators`` (one ``torch.Generator`` per sample) the initial noise and every step's noise of
sample i come from generators[i] alone, so a set sampled in shards equals the set sampled at
once (given a model whose output for one sample does not depend on the others in the batch).
The model is fed the original step indices: ``model_fn(x_t, diffusion.timestep_map[t], **kw)``.
Sample with fewer steps by passing ``diffusion.respace("ddim50")`` (or any respacing spec).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from tqdm.auto import tqdm

from sonodiff.diffusion.process import BMapDiffusion, ModelFn


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
    diffusion: BMapDiffusion,
    model_fn: ModelFn,
    noise: torch.Tensor | Sequence[int],
    generators: Sequence[torch.Generator] | None = None,
    *,
    ddim: bool = False,
    eta: float = 0.0,
    clip_x0: bool = True,
    progress: bool = True,
    snapshot_every: int | None = None,
    model_kwargs: dict | None = None,
):
    """Run the reverse chain from x_T to x_0 (see the module docstring)."""
    if isinstance(noise, torch.Tensor):
        x = noise.to(diffusion.device)
    else:
        x = per_sample_noise(noise, generators, diffusion.device)
    if generators is not None and len(generators) != x.shape[0]:
        raise ValueError(f"{len(generators)} generators for a batch of {x.shape[0]}")
    snapshots: list[Snapshot] = []
    kwargs = model_kwargs or {}
    steps = range(diffusion.num_steps - 1, -1, -1)
    for k in tqdm(steps, desc="ddim" if ddim else "sampling", disable=not progress, leave=False):
        t = torch.full((x.shape[0],), k, dtype=torch.long, device=diffusion.device)
        out = model_fn(x, diffusion.timestep_map[t], **kwargs)
        needs_noise = k > 0 and (not ddim or eta > 0)
        z = per_sample_noise(x.shape, generators, x.device, x.dtype) if needs_noise else None
        if ddim:
            res = diffusion.ddim_step(out, k, x, eta=eta, noise=z, clip_x0=clip_x0)
        else:
            res = diffusion.step(out, k, x, noise=z, clip_x0=clip_x0)
        if snapshot_every and (k % snapshot_every == 0 or k == diffusion.num_steps - 1):
            step = int(diffusion.timestep_map[k])
            snapshots.append(Snapshot(step, x.detach().cpu(), res.pred_x0.detach().cpu()))
        x = res.prev_sample
    if snapshot_every:
        return x, snapshots
    return x
