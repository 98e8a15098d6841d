"""A trained diffusion model (``model.pt``) and its training log (``train_log.csv``).

``model.pt`` is a dict saved with ``torch.save`` and read with ``weights_only=True``:

    format      "sonodiff-model/1"
    state_dict  the EMA weights (CPU tensors)
    spec        the network spec (:func:`sonodiff.models.model_spec`), enough to rebuild it
    config      the resolved config it was trained with (its ``diffusion`` section rebuilds the process;
                a key added since, absent from an older file, takes :data:`LEGACY_DIFFUSION`'s value,
                the meaning that file was trained with)
    step        the optimiser step it was taken at
    depth       the depth map d(p) (H, W) its B-maps were built over

:func:`load_model` rebuilds the network and the B-map process; the sampling stage and the CLI use it.
It also loads an exported model folder (:mod:`sonodiff.contracts.model_folder`), so every reader of
a model takes either.
``train_log.csv`` has one row per ``train.log_every`` steps (:data:`TRAIN_LOG_COLUMNS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import pandas as pd

from sonodiff.errors import InputError
from sonodiff.io import atomic_path

if TYPE_CHECKING:  # torch is imported by the functions that need it: reading the log needs none
    import torch

MODEL_FORMAT = "sonodiff-model/1"
MODEL_KEYS = ("state_dict", "spec", "config", "step", "depth")
#: ``diffusion`` keys added after the first model files, with the value an older file meant:
#: ``vlb_convention`` "sum" (L_simple + vlb_weight K L_t, the only loss before the key existed).
LEGACY_DIFFUSION = {"vlb_convention": "sum"}
#: Columns of ``train_log.csv``, in order.
TRAIN_LOG_COLUMNS = ("step", "loss", "mse", "vb", "lr", "grad_norm", "images_per_s", "skipped_total")


def write_model_file(path: str | Path, state_dict: Mapping[str, torch.Tensor], spec: Mapping[str, Any],
                     config: Mapping[str, Any], step: int, depth: torch.Tensor) -> Path:
    """Write ``model.pt`` atomically (tensors moved to the CPU)."""
    import torch

    payload = {
        "format": MODEL_FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "spec": dict(spec),
        "config": dict(config),
        "step": int(step),
        "depth": depth.detach().cpu().float(),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def read_model_file(path: str | Path) -> dict:
    """The payload of ``model.pt`` (``weights_only=True``), checked for every key."""
    import torch

    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a missing, truncated or foreign file
        raise InputError(path, f"unreadable model ({' '.join(str(err).split())[:200]})") from err
    missing = [k for k in MODEL_KEYS if not isinstance(payload, dict) or k not in payload]
    if missing:
        raise InputError(path, f"not a sonodiff model (missing {missing})")
    return payload


@dataclass
class LoadedModel:
    """A ``model.pt`` rebuilt: the EMA network (eval mode), its B-map process, spec, config and step."""

    model: torch.nn.Module
    diffusion: Any
    spec: dict
    config: dict
    step: int

    @property
    def image_shape(self) -> tuple[int, int, int]:
        height, width = self.diffusion.depth.shape[-2:]
        return (self.spec["in_channels"], int(height), int(width))

    @property
    def output_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images it makes: ``image_shape`` but for a latent model (whose process
        runs on the latent grid), the decoded images' ``spec["image_channels"]`` and ``["image_size"]``."""
        if not self.latent:
            return self.image_shape
        height, width = self.spec["image_size"]
        return (int(self.spec["image_channels"]), int(height), int(width))

    @property
    def latent(self) -> bool:
        """Whether its diffusion runs in an autoencoder's latent space (:mod:`sonodiff.models.latent`)."""
        return "image_size" in self.spec

    @property
    def classes(self) -> list[str] | None:
        """The class names its prompts are made of (latent models), else None."""
        return self.spec.get("classes")

    @property
    def conditional(self) -> bool:
        return bool(self.model.conditional)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Load ``model.pt`` and rebuild its network (:func:`sonodiff.models.build_model`) and process
    (:meth:`sonodiff.diffusion.BMapDiffusion.from_config`) on ``device``.

    ``path`` may also be an exported model folder (a directory): then it is
    :func:`sonodiff.contracts.model_folder.load_model_folder` (safetensors and JSON, no ``torch.load``).
    """
    from sonodiff.diffusion.process import BMapDiffusion
    from sonodiff.models import build_model

    if Path(path).is_dir():
        from sonodiff.contracts.model_folder import load_model_folder  # it imports this module

        return load_model_folder(path, device)
    payload = read_model_file(path)
    model = build_model(payload["spec"])
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as err:  # missing, unexpected or misshapen tensors
        reason = " ".join(str(err).split())[:200]
        raise InputError(path, f"weights do not fit the network its spec describes ({reason})") from err
    model.to(device).eval()
    section = {**LEGACY_DIFFUSION, **payload["config"]["diffusion"]}
    diffusion = BMapDiffusion.from_config(section, payload["depth"]).to(device)
    return LoadedModel(model, diffusion, dict(payload["spec"]), dict(payload["config"]), int(payload["step"]))


def read_training_log(path: str | Path) -> pd.DataFrame:
    """``train_log.csv`` as a frame (the columns present of :data:`TRAIN_LOG_COLUMNS`)."""
    try:
        return pd.read_csv(path)
    except (OSError, ValueError, pd.errors.EmptyDataError) as err:
        raise InputError(path, f"unreadable training log ({err})") from err
