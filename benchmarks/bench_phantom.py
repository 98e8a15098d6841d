"""Phantom simulation rate: images per second per core, fast and SIMUS modes, at 128 x 128.

    OMP_NUM_THREADS=1 python benchmarks/bench_phantom.py [--size 128] [--fast-images 60] [--simus-images 2]
        [--liver-simus-images 0] [--breast-patients 24] [--breast-size 64]

For each phantom (CAMUS-like cardiac sector, SegThy-like neck linear, liver-like abdominal convex,
BUSI-like breast linear) and mode it times, on one core, the one-off set-up (PSFs or the delay-and-sum matrix) and then the
per-image work (scene, B-mode simulation, label map), and prints images/s per core from CPU time
(process time, which the other jobs on a shared machine do not inflate) and from wall time. It
then times whole datasets (fast mode, set-up and file writing included): ``simulate_camus`` with
6 patients, and ``simulate_liver`` at the default config's size (``--liver-patients`` x
``--liver-frames`` images of ``--liver-size`` pixels), the ``simulate_phantom`` job of the demo,
and ``simulate_busi`` (``--breast-patients`` images of ``--breast-size`` pixels), printing its
seconds per image.
The liver's SIMUS mode (about 9e4 scatterers x 128 elements, minutes per image) runs only with
``--liver-simus-images`` > 0.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from sonodiff.phantom import (ABDOMEN, BREAST, CARDIAC, NECK, Simulator, breast, cardiac, liver,  # noqa: E402
                              neck, simulate_busi, simulate_camus, simulate_liver)
from sonodiff.phantom.bmode import psf_bank  # noqa: E402


def scenes(phantom: str, n: int):
    """``n`` (scene, extra noise) pairs of distinct patients/views/phases or slices."""
    out = []
    p = 0
    while len(out) < n:
        if phantom == "camus":
            patient = cardiac.draw_patient(np.random.default_rng([0, p]))
            for view in cardiac.VIEWS:
                for phase in cardiac.PHASES:
                    out.append(cardiac.scene(patient, view, phase))
        elif phantom == "liver":
            patient = liver.draw_patient(np.random.default_rng([0, p]))
            out.extend(liver.scene(patient, float(y)) for y in liver.frame_positions(patient, 4))
        elif phantom == "breast":
            cls = breast.CLASSES[p % len(breast.CLASSES)]
            out.append(breast.scene(breast.draw_patient(np.random.default_rng([0, p]), cls)))
        else:
            patient = neck.draw_patient(np.random.default_rng([0, p]))
            out.extend(neck.scene(patient, float(y)) for y in neck.slice_positions(patient, 8))
        p += 1
    return out[:n]


def bench(phantom: str, mode: str, size: int, n: int) -> dict:
    transducer, physics = {"camus": (CARDIAC, cardiac.PHYSICS), "segthy": (NECK, neck.PHYSICS),
                           "liver": (ABDOMEN, liver.PHYSICS), "breast": (BREAST, breast.PHYSICS)}[phantom]
    c0, w0 = time.process_time(), time.perf_counter()
    sim = Simulator(transducer, mode, size, physics)
    setup_cpu, setup_wall = time.process_time() - c0, time.perf_counter() - w0
    todo = scenes(phantom, n)
    x, z = transducer.image_points(size)
    c0, w0 = time.process_time(), time.perf_counter()
    for k, scene in enumerate(todo):
        sim.image(scene, np.random.default_rng(k))
        scene.labels(x, z)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    return {"phantom": phantom, "mode": mode, "n": n, "setup_cpu_s": setup_cpu, "setup_wall_s": setup_wall,
            "cpu_s_per_image": cpu / n, "wall_s_per_image": wall / n,
            "images_per_s_per_core": n / cpu, "images_per_s_wall": n / wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--fast-images", type=int, default=60)
    ap.add_argument("--simus-images", type=int, default=2)
    ap.add_argument("--skip-simus", action="store_true")
    ap.add_argument("--liver-patients", type=int, default=10)
    ap.add_argument("--liver-frames", type=int, default=4)
    ap.add_argument("--liver-size", type=int, default=64)
    ap.add_argument("--liver-simus-images", type=int, default=0)
    ap.add_argument("--breast-patients", type=int, default=24)
    ap.add_argument("--breast-size", type=int, default=64)
    args = ap.parse_args()
    rows = []
    for phantom in ("camus", "segthy", "liver", "breast"):
        rows.append(bench(phantom, "fast", args.size, args.fast_images))
        n_simus = args.liver_simus_images if phantom == "liver" else args.simus_images
        if not args.skip_simus and n_simus > 0:
            rows.append(bench(phantom, "simus", args.size, n_simus))
    print(f"phantom simulation at {args.size}x{args.size} (OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']})")
    print(f"{'phantom':8} {'mode':6} {'n':>4} {'setup cpu s':>11} {'cpu s/img':>10} {'img/s/core':>10} "
          f"{'wall s/img':>10} {'img/s wall':>10}")
    for r in rows:
        print(f"{r['phantom']:8} {r['mode']:6} {r['n']:>4} {r['setup_cpu_s']:>11.2f} {r['cpu_s_per_image']:>10.4f} "
              f"{r['images_per_s_per_core']:>10.2f} {r['wall_s_per_image']:>10.4f} {r['images_per_s_wall']:>10.2f}")
    psf_bank.cache_clear()   # time the PSF set-up too
    with tempfile.TemporaryDirectory() as tmp:
        c0, w0 = time.process_time(), time.perf_counter()
        simulate_camus(tmp, patients=6, mode="fast", size=args.size, seed=0, progress=False)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    print(f"simulate_camus dataset, 6 patients x 4 images, fast, set-up and NIfTI writing included: "
          f"{24 / cpu:.2f} img/s/core ({cpu:.2f} s cpu, {wall:.2f} s wall)")
    psf_bank.cache_clear()
    n = args.liver_patients * args.liver_frames
    with tempfile.TemporaryDirectory() as tmp:
        c0, w0 = time.process_time(), time.perf_counter()
        simulate_liver(tmp, patients=args.liver_patients, mode="fast", size=args.liver_size,
                       frames=args.liver_frames, seed=0, progress=False)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    print(f"simulate_liver dataset, {args.liver_patients} patients x {args.liver_frames} images at "
          f"{args.liver_size} px, fast, set-up and PNG writing included: {n / cpu:.2f} img/s/core "
          f"({cpu:.2f} s cpu, {wall:.2f} s wall)")
    psf_bank.cache_clear()
    n = args.breast_patients
    with tempfile.TemporaryDirectory() as tmp:
        c0, w0 = time.process_time(), time.perf_counter()
        simulate_busi(tmp, patients=n, mode="fast", size=args.breast_size, seed=0, progress=False)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    print(f"simulate_busi dataset, {n} patients x 1 image at {args.breast_size} px, fast, set-up and PNG "
          f"writing included: {cpu / n:.4f} s/img cpu, {wall / n:.4f} s/img wall ({cpu:.2f} s cpu, {wall:.2f} s wall)")


if __name__ == "__main__":
    main()
