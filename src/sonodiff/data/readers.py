"""Read raw images and volumes into numpy arrays, with one-line errors for bad files.

Axis convention: every array is in SimpleITK's numpy order, what ``sitk.GetArrayFromImage``
returns (the reverse of the ITK/NIfTI index order ``(i, j[, k])``):

- a 2D image is ``(rows, cols)`` with the probe at row 0 (PIL gives the same);
- a 3D volume is ``(k, j, i)``; ``slice_axis`` indexes this order and a slice keeps the two
  remaining axes in order as ``(rows, cols)``. A volume written with
  ``sitk.WriteImage(sitk.GetImageFromArray(a))`` reads back as ``a``.

NIfTI files are read with nibabel (which tolerates headers SimpleITK refuses) and their axes
reversed to match.

Singleton axes are squeezed; colour and palette images are converted to grayscale.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

import numpy as np

from sonodiff.errors import InputError
from sonodiff.io import read_png

PIL_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif"}
#: PIL modes that :func:`sonodiff.io.read_png` reads as raw files want: grey as stored, colour to grey.
READ_PNG_MODES = frozenset({"L", "RGB", "RGBA", "LA", "CMYK", "YCbCr"})


def _suffix(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    return path.suffix.lower()


def stem(path: str | Path) -> str:
    """File name without its (double) suffix: ``a.nii.gz`` -> ``a``."""
    path = Path(path)
    suffix = _suffix(path)
    return path.name[: len(path.name) - len(suffix)] if suffix else path.name


def read_array(path: str | Path) -> np.ndarray:
    """Read an image or volume (PNG/JPEG/TIFF via PIL, NIfTI via nibabel, else SimpleITK).

    Returns a squeezed 2D ``(rows, cols)`` or 3D ``(k, j, i)`` array (see the module docstring).
    Raises :class:`InputError` naming the file when it is missing, unreadable, empty or NaN.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    suffix = _suffix(path)
    try:
        if suffix in PIL_SUFFIXES:
            arr = _read_pil(path)
        elif suffix in (".nii", ".nii.gz"):
            arr = _read_nibabel(path)
        else:
            arr = _read_sitk(path)
    except InputError:
        raise
    except Exception as err:  # each library raises its own types for a broken file
        raise InputError(path, f"unreadable image ({type(err).__name__}: {err})") from err
    if arr.size == 0:
        raise InputError(path, "empty image (no voxels)")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise InputError(path, "image contains NaN or infinite values")
    return arr


def _read_pil(path: Path) -> np.ndarray:
    """A 2D image by PIL: 8-bit grey and colour images by :func:`sonodiff.io.read_png` (colour
    converted to grey); palette images as the grey of their colours (a raw file is a picture, not a
    palette label map); 1-bit, 16-bit and float images (``1``, ``I;16``, ``I``, ``F``) as stored."""
    from PIL import Image

    with Image.open(path) as img:
        if img.mode not in READ_PNG_MODES:
            img.load()
            return np.squeeze(np.asarray(img.convert("L") if img.mode == "P" else img))
    return np.squeeze(read_png(path))


def _read_nibabel(path: Path) -> np.ndarray:
    import nibabel as nib

    img = nib.load(str(path))
    return np.squeeze(np.asarray(img.dataobj).T)


def _read_sitk(path: Path) -> np.ndarray:
    import SimpleITK as sitk

    return np.squeeze(sitk.GetArrayFromImage(sitk.ReadImage(str(path))))


def find_files(root: Path, patterns: Iterable[str]) -> list[Path]:
    """Sorted files under ``root`` matching any glob (hidden and ``__MACOSX`` paths skipped)."""
    found = set()
    for pattern in patterns:
        if not pattern:
            continue
        for p in root.glob(pattern):
            rel = p.relative_to(root).parts
            if p.is_file() and not any(part.startswith(".") or part == "__MACOSX" for part in rel):
                found.add(p)
    return sorted(found)


def find_dirs(root: Path, name: str, max_depth: int = 4) -> list[Path]:
    """Folders called ``name`` at most ``max_depth`` levels under ``root`` (root itself included)."""
    out = []
    frontier = [root]
    for _ in range(max_depth + 1):
        nxt = []
        for d in frontier:
            if d.name == name:
                out.append(d)
            nxt.extend(c for c in sorted(d.iterdir())
                       if c.is_dir() and not c.name.startswith(".") and c.name != "__MACOSX")
        frontier = nxt
    return out


def safe_id(text: str) -> str:
    """A file-name-safe id: characters outside ``[A-Za-z0-9_.-]`` become ``_``."""
    out = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")
    return out or "sample"


def patient_regex(text: str) -> re.Pattern:
    """The compiled ``patient_pattern`` ``text``; it must hold a named group ``patient``."""
    try:
        pattern = re.compile(text)
    except re.error as err:
        raise InputError("config key patient_pattern", f"{text!r} is not a regular expression ({err})") from err
    if "patient" not in pattern.groupindex:
        raise InputError("config key patient_pattern", f"{text!r} has no named group (?P<patient>...)")
    return pattern
