"""Atomic writes (every output appears whole or not at all) and the one PNG codec.

A writer produces a temporary sibling of the target, ``.<target name>.<8 random characters>.tmp``
(:data:`TEMPORARY`), and renames it into place with ``os.replace`` (atomic on POSIX within one
file system); on any exception the temporary is removed, so a failed job leaves no partial output
behind. A job killed outright (``kill -9``) cannot remove it: :func:`sweep_stale_temporaries`,
called by a job on its own folders when it starts, does. The output gets the mode a plain
``open()`` or ``mkdir()`` would give it under the process's umask (``0644``/``0755`` under
``022``), not the ``0600``/``0700`` of ``mkstemp``/``mkdtemp``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from sonodiff.errors import InputError

log = logging.getLogger(__name__)

#: The names of the temporaries of :func:`atomic_path` and :func:`atomic_dir`:
#: ``.<target name>.<tempfile's 8 random characters [a-z0-9_]>.tmp``.
TEMPORARY = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp$")


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary file path next to ``target``; rename it to ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the mode a plain open() would
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a temporary directory next to ``target``; it replaces ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _umask() -> int:
    """The process's umask, read from ``/proc`` where it can be: ``os.umask`` can only be read by
    setting it, and a file another thread creates meanwhile would get the mode 0666."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)  # the brief window errs on the private side
    os.umask(mask)
    return mask


def sweep_stale_temporaries(folder: str | Path) -> list[Path]:
    """Remove the temporaries a killed writer left in ``folder`` (not below it): files and folders
    named like :data:`TEMPORARY`, nothing else. Call it on a job's own output folders before the
    job writes (another job's write in progress there would lose its temporary). Returns what it
    removed, each logged with its size."""
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for entry in sorted(folder.iterdir()):
        if not TEMPORARY.match(entry.name):
            continue
        if entry.is_dir() and not entry.is_symlink():
            size = sum(f.stat().st_size for f in entry.rglob("*") if f.is_file() and not f.is_symlink())
            shutil.rmtree(entry, ignore_errors=True)
        else:
            size = entry.lstat().st_size
            entry.unlink(missing_ok=True)
        log.warning("removed %s (%d bytes), the temporary of a write that was killed", entry, size)
        removed.append(entry)
    return removed


def write_text(target: str | Path, text: str) -> None:
    """Write ``text`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def write_json(target: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically (NaN written as null)."""
    write_text(target, json.dumps(_finite_or_none(obj), indent=2, sort_keys=False) + "\n")


def _finite_or_none(obj: Any) -> Any:
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    return obj


def read_json(path: str | Path) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text())


# ----------------------------------------------------------------------------- image codec
# Every stage reads and writes its 8-bit PNGs (images, label maps, the sector mask) here.

def read_png(path: str | Path) -> np.ndarray:
    """An 8-bit PNG as a uint8 (H, W) array: grey (L) and palette (P) images as stored, others
    converted to grey with PIL's ``convert("L")`` (ITU-R 601-2 luma)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return np.asarray(img if img.mode in ("L", "P") else img.convert("L"), dtype=np.uint8)
    except (OSError, ValueError) as err:  # PIL raises both for a broken or missing file
        raise InputError(path, f"unreadable image ({' '.join(str(err).split())})") from err


def read_pngs(paths: Sequence[str | Path], where: str | Path) -> np.ndarray:
    """PNGs of one size as a uint8 (N, H, W) stack; ``where`` (the listing file) names a size clash."""
    return stack_images([read_png(p) for p in paths], where)


def stack_images(images: Sequence[np.ndarray], where: str | Path) -> np.ndarray:
    """(H, W) arrays of one size as an (N, H, W) stack; ``where`` (the listing file) names a size clash."""
    shapes = sorted({a.shape for a in images})
    if len(shapes) > 1:
        raise InputError(where, f"images of different sizes {shapes}")
    return np.stack(images) if len(images) else np.zeros((0, 0, 0), np.uint8)


def write_png(path: str | Path, array: np.ndarray, compress_level: int = 1) -> Path:
    """Write a uint8 (H, W) array as a grey PNG (zlib ``compress_level``), atomically."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8)).save(tmp, format="PNG", compress_level=compress_level)
    return Path(path)


# ----------------------------------------------------------------------------- model range
# The codec between 8-bit pixels and the diffusion model's data range [-1, 1] (torch tensors).

def to_model_range(images):
    """uint8 [0, 255] -> float [-1, 1]: ``x = u / 127.5 - 1`` (a torch tensor)."""
    return images.float() / 127.5 - 1.0


def to_uint8(x):
    """float [-1, 1] -> uint8: ``u = round((x + 1) 127.5)``, x clipped to [-1, 1] (a torch tensor)."""
    import torch

    return ((x.float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
