"""Metrics speed: 1000 synthetic/real pairs at 128 x 128 on this CPU, one thread.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_metrics.py [--pairs 1000] [--real 200]
        [--size 128] [--bootstrap 1000] [--fid-images 200]

Times, on speckle-like random images with four labels (``--pairs`` synthetic images, each paired
with one of ``--real`` real images, as augmented label maps share a real image):

- SSIM + PSNR per pair (torchmetrics), and the paired figures' bootstrap;
- the physics metrics (depth profile, speckle SNR, Wasserstein, gCNR): per-image part and the
  whole :func:`~sonodiff.metrics.physics.physics_metrics` with its bootstrap;
- LPIPS and FID with RANDOMLY INITIALISED networks: TIMING ONLY, the values mean nothing.
  LPIPS runs on all pairs. Inception features are measured on ``--fid-images`` images and
  scaled linearly to ``--pairs`` + ``--real`` (the per-image cost is constant); the Fréchet
  distance (sqrtm, d^3) and its bootstrap (Gram matrices, one n1 x n2 SVD per resample) run at
  full size on features resampled from the measured ones.

Prints JSON: CPU seconds (process time, which other jobs on a shared machine do not inflate) and
wall seconds per part.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from contextlib import contextmanager

import numpy as np
import torch
import torchvision

from sonodiff.metrics import fid, paired, physics
from sonodiff.metrics.weights import lpips_linear_path
from sonodiff.stats import bootstrap_ci, figure

TIMES: dict[str, dict[str, float]] = {}


@contextmanager
def timed(name: str):
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    TIMES[name] = {"cpu_s": round(time.process_time() - cpu, 3), "wall_s": round(time.perf_counter() - wall, 3)}


def make_images(rng: np.random.Generator, n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Log-compressed Rayleigh speckle (60 dB) with four labelled regions of different brightness."""
    lab = np.full((n, size, size), 4, np.uint8)
    s = size // 8
    lab[:, s:3 * s, s:4 * s], lab[:, s:3 * s, 5 * s:7 * s], lab[:, 5 * s:7 * s, s:7 * s] = 1, 2, 3
    gain = np.choose(lab - 1, [0.05, 1.0, 0.3, 0.15])
    env = np.abs(rng.normal(size=lab.shape) + 1j * rng.normal(size=lab.shape)) * gain
    db = 20 * np.log10(env / env.max(axis=(1, 2), keepdims=True) + 1e-12)
    return (np.clip(1 + db / 60, 0, 1) * 255).astype(np.uint8), lab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--real", type=int, default=200)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--fid-images", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    syn, syn_lab = make_images(rng, args.pairs, args.size)
    real, real_lab = make_images(rng, args.real, args.size)
    partner = real[np.arange(args.pairs) % args.real]
    sector = np.zeros((args.size, args.size), bool)
    sector[2:, 2:-2] = True
    names = {1: "a", 2: "b", 3: "c", 4: "sector"}

    with timed("ssim_psnr"):
        ssim = paired.ssim_per_image(syn, partner)
        psnr = paired.psnr_per_image(syn, partner)
    with timed("paired_bootstrap_6_figures"):
        for values in (ssim, psnr):
            for stat in paired.STATS:
                figure(lambda v, s=stat: paired.summary(v)[s], [values], args.bootstrap, 0)

    with timed("physics_per_image"):
        bins = physics.depth_bins(sector, "linear")
        physics.depth_profiles(syn, bins), physics.depth_profiles(real, bins)
        physics.speckle_snr(syn, syn_lab, [1, 2, 3, 4], 60.0), physics.speckle_snr(real, real_lab, [1, 2, 3, 4], 60.0)
        physics.label_histograms(syn, syn_lab, [1, 2, 3, 4]), physics.label_histograms(real, real_lab, [1, 2, 3, 4])
    with timed("physics_all_with_bootstrap"):
        physics.physics_metrics(syn, syn_lab, real, real_lab, sector, "linear", names, 60.0,
                                args.bootstrap, 0, progress=False)

    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        alex, inc = os.path.join(tmp, "alexnet.pth"), os.path.join(tmp, "inception.pth")
        torch.save(torchvision.models.alexnet(weights=None).state_dict(), alex)
        torch.save(torchvision.models.inception_v3(weights=None, aux_logits=False, num_classes=1008,
                                                   init_weights=False).state_dict(), inc)
        with timed("lpips_random_weights_TIMING_ONLY"):
            model = paired.build_lpips(alex, lpips_linear_path())
            paired.lpips_per_image(model, syn, partner, args.batch_size, progress=False)
        dims = [64, 192, 2048]
        model = fid.build_inception(inc, dims)
        n = min(args.fid_images, args.pairs)
        with timed(f"inception_features_{n}_images_random_weights_TIMING_ONLY"):
            feats = fid.inception_features(model, syn[:n], dims, args.batch_size, progress=False)
    measured = TIMES[f"inception_features_{n}_images_random_weights_TIMING_ONLY"]
    scale = (args.pairs + args.real) / n
    TIMES["inception_features_extrapolated_to_pairs_plus_real_TIMING_ONLY"] = {
        k: round(v * scale, 1) for k, v in measured.items()}
    for d in dims:
        x1 = feats[d][rng.integers(0, n, args.pairs)] + rng.normal(0, 1e-3, (args.pairs, d))
        x2 = feats[d][rng.integers(0, n, args.real)] + rng.normal(0, 1e-3, (args.real, d))
        with timed(f"frechet_sqrtm_d{d}"):
            (mu1, s1), (mu2, s2) = fid.statistics(x1), fid.statistics(x2)
            fid.frechet_distance(mu1, s1, mu2, s2)
        with timed(f"frechet_bootstrap_d{d}"):
            bootstrap_ci(fid.ResampledFrechet(x1, x2), [np.arange(args.pairs), np.arange(args.real)],
                         args.bootstrap, 0)
    total = {k: round(sum(t[k] for name, t in TIMES.items() if not name.startswith("inception_features_")
                          or "extrapolated" in name), 1) for k in ("cpu_s", "wall_s")}
    print(json.dumps({"pairs": args.pairs, "real": args.real, "size": args.size, "bootstrap": args.bootstrap,
                      "threads": torch.get_num_threads(), "seconds": TIMES,
                      "total_with_extrapolated_inception": total}, indent=2))


if __name__ == "__main__":
    main()
