"""Checkpoints: atomic writes, newest-valid discovery, RNG state capture.

A checkpoint is ``<dir>/step_<00000123>.pt``, a dict of tensors and plain Python values (so
``torch.load(..., weights_only=True)`` reads it): ``step``, ``model``, ``ema``, ``optimizer``,
``scaler``, ``rng`` (torch, numpy and Python states), ``sampler`` (seed and position of the data
order), ``nonfinite`` (skipped-step counters), ``config`` (resolved) and ``spec`` (the network).
It is written to a temporary sibling, flushed to disk, then renamed into place, so a killed job
leaves either the previous set of checkpoints or the new one, never half a file under the final
name. :func:`latest_valid` still loads candidates newest first and skips any that fail to load
(a file truncated by a full disk or a copy), logging why.
"""

from __future__ import annotations

import logging
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from sonodiff.io import atomic_path

log = logging.getLogger(__name__)

PATTERN = re.compile(r"^step_(\d+)\.pt$")
REQUIRED = ("step", "model", "ema", "optimizer", "config", "spec")


def checkpoint_path(directory: str | Path, step: int) -> Path:
    return Path(directory) / f"step_{step:08d}.pt"


def list_checkpoints(directory: str | Path) -> list[tuple[int, Path]]:
    """Checkpoints in ``directory`` as (step, path), newest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := PATTERN.match(p.name))]
    return sorted(found, reverse=True)


def save_checkpoint(state: Mapping[str, Any], directory: str | Path, keep: int = 2) -> Path:
    """Write ``state`` atomically as ``step_<step>.pt``; keep only the ``keep`` newest."""
    path = checkpoint_path(directory, int(state["step"]))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            torch.save(dict(state), handle)
            handle.flush()
            os.fsync(handle.fileno())
    for _, old in list_checkpoints(directory)[keep:]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint with ``weights_only=True``; raise ``ValueError`` if it is incomplete."""
    state = torch.load(path, map_location=map_location, weights_only=True)
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise ValueError(f"missing entries {missing}")
    return state


def latest_valid(directory: str | Path, map_location: str | torch.device = "cpu",
                 accept: Any = None) -> tuple[Path, dict] | None:
    """The newest checkpoint that loads (and that ``accept(state)`` accepts), or None.

    ``accept`` returns None to accept a state or a reason (str) to skip it. Every skipped file
    is logged with the reason.
    """
    for _, path in list_checkpoints(directory):
        try:
            state = load_checkpoint(path, map_location)
        except Exception as err:  # truncated zip, unpickling error, missing entries
            log.warning("skipping checkpoint %s: unreadable (%s)", path, " ".join(str(err).split())[:200])
            continue
        reason = accept(state) if accept else None
        if reason:
            log.warning("skipping checkpoint %s: %s", path, reason)
            continue
        return path, state
    return None


def set_aside(directory: str | Path, reason: str) -> None:
    """Move every checkpoint of ``directory`` into ``directory/stale/`` (replacing older ones)."""
    found = list_checkpoints(directory)
    if not found:
        return
    stale = Path(directory) / "stale"
    shutil.rmtree(stale, ignore_errors=True)
    stale.mkdir(parents=True)
    for _, path in found:
        os.replace(path, stale / path.name)
    log.warning("moved %d checkpoints to %s: %s", len(found), stale, reason)


def rng_state() -> dict:
    """The torch, numpy and Python global RNG states as tensors and plain values."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": py_state[0], "state": list(py_state[1]), "gauss": py_state[2]},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
