"""Checkpoints: atomic writes, newest-valid discovery, RNG state capture.

A checkpoint is ``<dir>/step_<00000123>.pt``, a dict of tensors and plain Python values (so
``torch.load(..., weights_only=True)`` reads it): ``step``, ``model``, ``ema``, ``optimizer``,
``scaler``, ``rng`` (torch, numpy and Python states), ``sampler`` (seed and position of the data
order), ``nonfinite`` (skipped-step counters), ``config`` (resolved) and ``spec`` (the network).
It is written to a temporary sibling, flushed to disk, then renamed into place, so a killed job
leaves either the previous set of checkpoints or the new one, never half a file under the final
name. :func:`latest_valid` still loads candidates newest first and skips any that fail to load
(a file truncated by a full disk or a copy) or that belong to another run (another config,
network or length: the caller's ``accept``), logging why: with ``set_aside_rejected`` it moves
each of them into ``stale/`` (:func:`set_aside`), so that neither a later resume nor the pruning
of old checkpoints meets them again. :func:`sonodiff.config.first_difference` names the first key in which two
configs differ.
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
                 accept: Any = None, set_aside_rejected: bool = False) -> tuple[Path, dict] | None:
    """The newest checkpoint that loads (and that ``accept(state)`` accepts), or None.

    ``accept`` returns None to accept a state or a reason (str) to skip it; an exception it raises
    (a foreign state it cannot read) is a reason too. Every skipped file is logged with the
    reason and, with ``set_aside_rejected``, moved into ``stale/``.
    """
    rejected: list[tuple[Path, str]] = []
    found = None
    for _, path in list_checkpoints(directory):
        try:
            state = load_checkpoint(path, map_location)
        except Exception as err:  # truncated zip, unpickling error, missing entries
            rejected.append((path, f"unreadable ({_one_line(err)})"))
            continue
        try:
            reason = accept(state) if accept else None
        except Exception as err:  # a foreign state that lacks what accept reads
            reason = f"not a checkpoint of this run ({type(err).__name__}: {_one_line(err)})"
        if reason:
            rejected.append((path, reason))
            continue
        found = path, state
        break
    for path, reason in rejected:
        log.warning("skipping checkpoint %s: %s", path, reason)
    if set_aside_rejected and rejected:
        set_aside(directory, "they cannot be resumed by this run", [p for p, _ in rejected])
    return found


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:200]




def set_aside(directory: str | Path, reason: str, paths: Any = None) -> None:
    """Move ``paths`` (default: every checkpoint of ``directory``) into ``directory/stale/``, which
    then holds only them (the ones set aside before are removed)."""
    found = [Path(p) for p in paths] if paths is not None else [p for _, p in list_checkpoints(directory)]
    if not found:
        return
    stale = Path(directory) / "stale"
    shutil.rmtree(stale, ignore_errors=True)
    stale.mkdir(parents=True)
    for path in found:
        os.replace(path, stale / path.name)
    log.warning("moved %s to %s: %s", ", ".join(p.name for p in found), stale, reason)


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
