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
from typing import Callable, Hashable, Iterable, Mapping, Sequence

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
    palette label map), other images of several bands (``PA``, ``HSV``...) by way of RGBA to grey;
    1-bit, 16-bit and float images (``1``, ``I;16``, ``I``, ``F``) as stored. A file of several
    frames (a multi-page TIFF, an animated GIF) is refused: PIL would read its first frame only."""
    from PIL import Image

    with Image.open(path) as img:
        frames = int(getattr(img, "n_frames", 1))
        if frames > 1:
            raise InputError(path, f"{frames} frames in one image file; store a volume as NIfTI or MetaImage")
        if img.mode not in READ_PNG_MODES:
            img.load()
            if img.mode == "P":
                img = img.convert("L")
            elif len(img.getbands()) > 1:
                img = img.convert("RGBA").convert("L")
            return np.squeeze(np.asarray(img))
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


# ------------------------------------------------------------------ identities and pairing
# Every converter names each raw file by an *identity* (BUSI: class, name and number; SegThy: the
# volume id; CAMUS: patient, view and phase; folder: the place and stem). ``index_files`` refuses
# two files of one identity, naming both; ``pair_files`` (BUSI, SegThy, folder) gives a label file
# to the image of its identity only, never to one of another identity.


def index_files(files: Iterable[Path], identity: Callable[[Path], Hashable | None], what: str,
                show: Callable[[Hashable], str] = str) -> dict[Hashable, Path]:
    """``{identity(f): f}`` over ``files`` (an identity of None leaves the file out). Two files of one
    identity are an :class:`InputError` naming both: ``"<second>: two files have the <what> <id>: this
    one and <first>"`` (``show`` spells the identity)."""
    out: dict[Hashable, Path] = {}
    for f in files:
        key = identity(f)
        if key is None:
            continue
        if key in out:
            raise InputError(f, f"two files have the {what} {show(key)}: this one and {out[key]}")
        out[key] = f
    return out


def pair_files(images: Mapping[Path, Sequence[Hashable]], labels: Mapping[Path, Sequence[Hashable]],
               orphan: Callable[[Path], str], several: bool = False, what: str = "label map",
               show: Callable[[Hashable], str] = str) -> dict[Path, tuple[Path, ...]]:
    """Image -> its label files: a label pairs with the image that has one of its identities.

    Each file comes with its identities (one for most formats; the folder format gives one per
    place a label may be found at). An identity held by two images, a label that matches no image
    (``orphan(label)`` is the reason), a label that matches two images and, unless ``several``
    (BUSI's masks, merged), an image with two labels are :class:`InputError` naming the files.
    Images without a label are left out; whether that is an error is the caller's rule. ``show``
    spells an identity in a message."""
    owner: dict[Hashable, Path] = {}
    for image, keys in images.items():
        for key in keys:
            if key in owner and owner[key] != image:
                raise InputError(image, f"two images have the identity {show(key)}: this one and {owner[key]}")
            owner[key] = image
    found: dict[Path, list[Path]] = {}
    for label in sorted(labels):
        matches = sorted({owner[k] for k in labels[label] if k in owner})
        if not matches:
            raise InputError(label, orphan(label))
        if len(matches) > 1:
            raise InputError(label, f"{what} matches several images: {', '.join(map(str, matches))}")
        found.setdefault(matches[0], []).append(label)
    if not several:
        for image, files in found.items():
            if len(files) > 1:
                raise InputError(image, f"ambiguous {what}: {len(files)} candidates {', '.join(map(str, files))}")
    return {image: tuple(files) for image, files in found.items()}
