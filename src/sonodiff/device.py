"""Device and precision: which processor a job runs on and which autocast dtype it uses.

``device: auto`` picks this process's GPU when one is visible, else the CPU; ``cuda`` without a
GPU is refused (naming the config key) rather than failing later inside a kernel. Precision
``auto`` is bf16 autocast on a GPU and plain fp32 on the CPU.
"""

from __future__ import annotations

import torch

from sonodiff.errors import InputError


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> ``cuda:<local_rank>`` when a GPU is available, else ``cpu``; ``cuda`` needs a GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise InputError("config key device", "cuda asked for but no GPU is available")
        return torch.device("cuda", local_rank)
    return torch.device(name)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype of ``train.precision``: auto = bf16 on a GPU, none (fp32) on the CPU."""
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
