"""Data-parallel training with torchrun: process group set-up and the few collectives used.

``torchrun --nproc_per_node=N -m sonodiff.cli train ...`` starts N processes and tells each its
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` through the environment (torchrun's contract, read
here and nowhere else). The backend is NCCL on GPUs and gloo on the CPU. Each process trains on
its own ``train.batch_size`` images per step; DistributedDataParallel averages the gradients, so
every process holds the same weights after every step and only rank 0 writes files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    """Where this process stands: ``rank`` of ``world_size`` (1 and 0 without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init(device_type: str) -> Dist:
    """Join the process group torchrun set up (no-op when run as a single process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    info = Dist(rank=int(os.environ["RANK"]), world_size=world, local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend=backend)
    return info


def shutdown(info: Dist) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def mean(value: torch.Tensor, info: Dist) -> torch.Tensor:
    """The mean of ``value`` over processes (``value`` itself without torchrun)."""
    if not info.enabled:
        return value
    out = value.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / info.world_size


def broadcast(obj: Any, info: Dist) -> Any:
    """Rank 0's ``obj`` on every process."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(info: Dist) -> None:
    if info.enabled:
        dist.barrier()


def launch(args: Sequence[str], nproc: int) -> None:
    """Run ``sonodiff <args>`` under torchrun with ``nproc`` processes on this node.

    Raises ``subprocess.CalledProcessError`` if any process fails.
    """
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "sonodiff.cli", *args]
    subprocess.run(cmd, check=True)
