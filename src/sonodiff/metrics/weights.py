"""Pretrained weights of the metric networks, offline: where they are, fetching, and what is missing.

Three files are needed:

- ``inception``: pytorch-fid's FID Inception, ``pt_inception-2015-12-05-6726825d.pth``;
- ``alexnet``: torchvision's AlexNet trunk of LPIPS, ``alexnet-owt-7be5be79.pth``;
- ``lpips_linear``: LPIPS's calibrated linear layers ``weights/v0.1/alex.pth``, which ship
  inside the ``lpips`` pip package (never downloaded).

A file is looked up at ``metrics.weights.<name>`` when the config gives a path, else in the
standard torch hub cache ``torch.hub.get_dir()/checkpoints/<file>`` (where torch and pytorch-fid
would download it). The ``fetch_weights`` localrule downloads missing files to exactly that
place ahead of a cluster run (compute nodes often have no internet), checking the SHA-256
prefix that both projects put in the file names.

Every file's SHA-256 is checked whenever it is looked at (:func:`weight_status`) or read
(:func:`load_state_dict`, through which :mod:`~sonodiff.metrics.fid` and
:mod:`~sonodiff.metrics.paired` get every tensor), not only after a download: a file with the
right name and the wrong content (a truncated download, another checkpoint renamed) is an
:class:`~sonodiff.errors.InputError` naming the file and the expected and found hash, never
used and never replaced silently. The expected hash is ``WeightFile.sha256``: the prefix in the
file name for the downloads (as torch hub checks it), the full hash of lpips 0.1.4's
``alex.pth``. Hashing a 100 MB file takes about 0.2 s; within one process a file is hashed once
per (path, inode, size, modification time).

When a file is missing, ``metrics.missing_weights`` decides: ``fail`` raises
:class:`~sonodiff.errors.InputError` naming the file and where to put it; ``na`` makes the
metrics that need it n/a, with that same sentence as the reason. The networks are never built
with random weights here: :mod:`sonodiff.metrics.fid` and :mod:`sonodiff.metrics.paired` load
every parameter from these files.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping, Sequence

import torch

from sonodiff.errors import InputError
from sonodiff.io import atomic_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WeightFile:
    """One pretrained weights file: its name, download URL, what needs it and its SHA-256 (or a prefix)."""

    key: str
    filename: str
    url: str | None
    used_by: str
    sha256: str


WEIGHTS: dict[str, WeightFile] = {
    "inception": WeightFile(
        "inception", "pt_inception-2015-12-05-6726825d.pth",
        "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
        "pt_inception-2015-12-05-6726825d.pth",
        "FID", "6726825d"),
    "alexnet": WeightFile(
        "alexnet", "alexnet-owt-7be5be79.pth",
        "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        "LPIPS", "7be5be79"),
    "lpips_linear": WeightFile("lpips_linear", "alex.pth", None, "LPIPS",
                               "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0"),
}
#: Which files each network-based metric needs.
NEEDS = {"fid": ("inception",), "lpips": ("alexnet", "lpips_linear")}
DOWNLOAD_TIMEOUT_S = 30
#: Hex digits of each hash that an error message shows.
SHOWN_HASH = 16


@dataclass(frozen=True)
class WeightStatus:
    """Where a weights file is expected, whether it is there, and if not, what to do."""

    key: str
    filename: str
    path: str
    available: bool
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def hub_checkpoints() -> Path:
    """The standard torch hub cache folder of downloaded checkpoints."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def lpips_linear_path() -> Path:
    """LPIPS v0.1 AlexNet linear-layer weights inside the installed lpips package."""
    import lpips

    return Path(lpips.__file__).resolve().parent / "weights" / "v0.1" / "alex.pth"


def weight_path(metrics_cfg: Mapping, key: str) -> Path:
    """Where weights ``key`` are expected: the config path, else the torch hub cache."""
    if key == "lpips_linear":
        return lpips_linear_path()
    configured = (metrics_cfg.get("weights") or {}).get(key)
    return Path(configured).expanduser() if configured else hub_checkpoints() / WEIGHTS[key].filename


def weight_status(metrics_cfg: Mapping, key: str) -> WeightStatus:
    """Whether weights ``key`` are present, with a sentence naming the file and where it goes.

    A present file with the wrong SHA-256 is not "missing": it raises :class:`InputError`
    (:func:`verify_weights`) whatever ``metrics.missing_weights`` says.
    """
    spec = WEIGHTS[key]
    path = weight_path(metrics_cfg, key)
    if path.is_file():
        verify_weights(path, key)
        return WeightStatus(key, spec.filename, str(path), True, "")
    if key == "lpips_linear":
        reason = (f"{spec.used_by} needs the lpips package's linear-layer weights {path}, which are "
                  "missing: reinstall lpips==0.1.4")
    elif (metrics_cfg.get("weights") or {}).get(key):
        reason = (f"{spec.used_by} needs {spec.filename}, not found at {path} "
                  f"(config key metrics.weights.{key}); download it from {spec.url} to that path")
    else:
        reason = (f"{spec.used_by} needs {spec.filename}, not found in {path.parent}; put it there "
                  f"(run the fetch_weights rule on a machine with internet, or download {spec.url}) "
                  f"or set config key metrics.weights.{key} to a local copy")
    return WeightStatus(key, spec.filename, str(path), False, reason)


def missing_reasons(metrics_cfg: Mapping, metrics: Sequence[str] = tuple(NEEDS)) -> dict[str, str | None]:
    """For each of ``metrics`` ("fid", "lpips"): None when all its weights are there, else why not.

    With ``metrics.missing_weights: fail`` any missing file raises one :class:`InputError` that
    names every missing file and where it goes.
    """
    status = {key: weight_status(metrics_cfg, key) for m in metrics for key in NEEDS[m]}
    missing = [s for s in status.values() if not s.available]
    if missing and metrics_cfg.get("missing_weights", "fail") == "fail":
        raise InputError(missing[0].path, "pretrained weights missing (metrics.missing_weights: fail): "
                         + "; ".join(s.reason for s in missing))
    return {m: "; ".join(status[k].reason for k in NEEDS[m] if not status[k].available) or None for m in metrics}


def missing_reason(metrics_cfg: Mapping, metric: str) -> str | None:
    """:func:`missing_reasons` of one metric."""
    return missing_reasons(metrics_cfg, (metric,))[metric]


def _download(url: str, target: Path, hash_prefix: str) -> None:
    """Download ``url`` to ``target`` atomically; the file's SHA-256 must start with ``hash_prefix``."""
    digest = hashlib.sha256()
    with atomic_path(target) as tmp:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(tmp, "wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if not digest.hexdigest().startswith(hash_prefix):
            raise InputError(url, f"downloaded file's SHA-256 {digest.hexdigest()} does not start with {hash_prefix}")


def fetch_weights(metrics_cfg: Mapping) -> dict[str, dict]:
    """Download every missing weights file to where :func:`weight_path` expects it.

    Returns the status of every file (``WeightStatus.to_dict``, plus ``download_error`` where a
    download failed). Under ``missing_weights: fail`` a file still missing afterwards raises one
    :class:`InputError` naming every missing file, the network error, and where to put it.
    """
    errors: dict[str, str] = {}
    for key, spec in WEIGHTS.items():
        status = weight_status(metrics_cfg, key)
        if status.available or spec.url is None:
            continue
        target = Path(status.path)
        log.info("downloading %s to %s", spec.url, target)
        try:
            _download(spec.url, target, spec.sha256)
        except (OSError, InputError) as err:  # URLError and timeouts are OSErrors
            errors[key] = f"download from {spec.url} failed ({err})"
            log.warning("%s: %s", spec.filename, errors[key])
    result = {key: weight_status(metrics_cfg, key).to_dict() for key in WEIGHTS}
    for key, error in errors.items():
        result[key]["download_error"] = error
    missing = [s for s in result.values() if not s["available"]]
    if missing and metrics_cfg.get("missing_weights", "fail") == "fail":
        raise InputError(missing[0]["path"], "cannot fetch pretrained weights: " + "; ".join(
            f"{s['download_error']}; {s['reason']}" if "download_error" in s else s["reason"] for s in missing))
    return result


def verify_weights(path: str | Path, key: str) -> None:
    """:class:`InputError` naming ``path`` unless its SHA-256 is that of weights ``key``."""
    spec = WEIGHTS[key]
    found = file_sha256(path)
    if found.startswith(spec.sha256.lower()):
        return
    shown = min(len(spec.sha256), SHOWN_HASH)
    if spec.url is None:
        remedy = "reinstall lpips==0.1.4"
    else:
        remedy = (f"replace it with {spec.filename} from {spec.url} (the fetch_weights rule downloads it "
                  f"to the torch hub cache once the file there is deleted), or set config key "
                  f"metrics.weights.{key} to a good copy")
    raise InputError(path, f"wrong weights for {spec.used_by}: SHA-256 starts with {found[:shown]}, expected "
                     f"{spec.sha256[:shown]} ({spec.filename}); {remedy}")


def load_state_dict(path: str | Path, key: str) -> dict[str, torch.Tensor]:
    """Read weights ``key`` from ``path`` with ``weights_only=True``, after :func:`verify_weights`.

    A wrong hash, or a broken file, is an :class:`InputError`.
    """
    verify_weights(path, key)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a broken or foreign file
        raise InputError(path, f"cannot read weights ({err})") from err
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(path, "not a state dict of tensors")
    return dict(state)


#: SHA-256 of each file hashed in this process, keyed by (path, device, inode, size, mtime).
_SHA256: dict[tuple[str, int, int, int, int], str] = {}


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file (verifies weights; records which weights produced a set of statistics).

    Computed once per (resolved path, device, inode, size, modification time) in a process: a
    file rewritten or replaced since is hashed again.
    """
    info = os.stat(path)
    key = (str(Path(path).resolve()), info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    if key not in _SHA256:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        _SHA256[key] = digest.hexdigest()
    return _SHA256[key]
