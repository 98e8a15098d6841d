"""Memory and speed of the B-map diffusion core.

Prints JSON: the schedule state held by ``BMapDiffusion`` at ``--steps`` steps and
``--state-size`` x ``--state-size`` pixels (convex and linear probe), beside what a dense
per-pixel implementation would hold (six T x C x H x W float32 tensors, as the published B-map
code does); then the time of one training-loss evaluation and one sampling step (ancestral and
DDIM) for a small conv net at ``--size``, and of the diffusion's own part of them.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_diffusion.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import nn

from sonodiff.diffusion import BMapDiffusion, convex_depth, linear_depth
from sonodiff.diffusion.sampling import get_sampler

MB = 2**20


class SmallNet(nn.Module):
    """Three 3x3 convolutions on (x_t, t / T): (eps, v) out. A stand-in for a real UNet."""

    def __init__(self, channels: int, width: int, num_steps: int):
        super().__init__()
        self.num_steps = num_steps
        self.net = nn.Sequential(
            nn.Conv2d(channels + 1, width, 3, padding=1), nn.SiLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.SiLU(),
            nn.Conv2d(width, 2 * channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        tt = (t.float() / self.num_steps).view(-1, 1, 1, 1).expand(-1, 1, *x.shape[2:])
        return self.net(torch.cat([x, tt], 1))


def timed(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` in milliseconds (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def memory_report(steps: int, size: int, b_min: float, channels: int) -> dict:
    fan = convex_depth(size, size, (-0.12 * size, size / 2), 1.02 * size, 70.0, 0.12 * size)
    out = {"num_steps": steps, "height": size, "width": size, "b_min": b_min}
    for name, depth in {"convex": fan, "linear": linear_depth(size, size)}.items():
        start = time.perf_counter()
        diff = BMapDiffusion(steps, "cosine", "sqrt", b_min=b_min, depth=depth)
        out[f"{name}_build_s"] = round(time.perf_counter() - start, 3)
        out[f"{name}_depth_nodes"] = diff.table.num_nodes
        out[f"{name}_interpolated"] = diff.table.weights is not None
        out[f"{name}_state_MB"] = round(diff.nbytes / MB, 2)
    out[f"dense_6_tables_C{channels}_float32_MB"] = round(6 * steps * channels * size * size * 4 / MB, 1)
    out["dense_1_table_per_pixel_float64_MB"] = round(steps * size * size * 8 / MB, 1)
    return out


def speed_report(size: int, batch: int, channels: int, width: int, steps: int, b_min: float, repeats: int) -> dict:
    torch.manual_seed(0)
    depth = convex_depth(size, size, (-0.12 * size, size / 2), 1.02 * size, 70.0, 0.12 * size)
    diff = BMapDiffusion(steps, "cosine", "sqrt", b_min=b_min, depth=depth)
    model = SmallNet(channels, width, steps).eval()
    x0 = torch.rand(batch, channels, size, size) * 2 - 1
    t = torch.randint(0, steps, (batch,))
    ddim = get_sampler("ddim").respace(diff, 50)
    out = {"size": size, "batch": batch, "channels": channels, "net_width": width, "threads": torch.get_num_threads()}

    def loss_step():
        losses = diff.training_losses(model, x0, t)
        losses["loss"].mean().backward()

    with torch.no_grad():
        out_model = model(x0, t)
    out["train_loss_fwd_bwd_ms"] = timed(loss_step, repeats)
    out["model_fwd_bwd_ms"] = timed(lambda: model(x0, t).square().mean().backward(), repeats)
    with torch.no_grad():
        out["ancestral_step_ms"] = timed(lambda: diff.step(model(x0, t), 500, x0), repeats)
        out["ddim_step_ms"] = timed(lambda: ddim.ddim_step(model(x0, t), 25, x0), repeats)
        out["model_fwd_ms"] = timed(lambda: model(x0, t), repeats)
        out["diffusion_only_step_ms"] = timed(lambda: diff.step(out_model, 500, x0), repeats)
        out["diffusion_only_coefficients_ms"] = timed(lambda: diff.coefficients(t, x0), repeats)
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="diffusion steps T")
    parser.add_argument("--state-size", type=int, default=256, help="image size for the memory figures")
    parser.add_argument("--size", type=int, default=128, help="image size for the timings")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--width", type=int, default=32, help="conv width of the small net")
    parser.add_argument("--b-min", type=float, default=0.96)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    report = {
        "memory": memory_report(args.steps, args.state_size, args.b_min, 3),
        "cpu_time": speed_report(args.size, args.batch, args.channels, args.width, args.steps, args.b_min, args.repeats),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
