"""Seeds derived from names: every random draw is a pure function of (master seed, what, where).

``derive_seed(seed, "step", 120, 0)`` hashes its parts with SHA-256, so it is the same in every
process, on every machine and across Python versions (unlike ``hash()``). Training draws each
step's timesteps, noise and label dropout from ``generator(seed, "step", step, rank)``, and the
data order from ``generator(seed, "epoch", epoch)``; sampling draws each image's noise from
``generator(seed, "sample", sample_id)``. A resumed or sharded run therefore sees exactly the
random numbers of an uninterrupted or unsharded one.
"""

from __future__ import annotations

import hashlib

import torch


def derive_seed(*parts: object) -> int:
    """A 63-bit seed: the first 8 bytes of SHA-256 of the parts' ``repr`` joined by ``/``."""
    digest = hashlib.sha256("/".join(repr(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def generator(*parts: object) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with :func:`derive_seed` of the parts."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed(derive_seed(*parts))
    return gen
