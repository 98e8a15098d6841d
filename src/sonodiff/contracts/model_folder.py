"""An exported model folder (``export/models/{d}/{v}/``): a trained model others load with
``safetensors`` and ``json`` alone, no pickle and no sonodiff training code.

The folder holds

    model.safetensors  the network's state dict exactly (the EMA weights of ``model.pt``), so
                       ``net.load_state_dict(safetensors.torch.load_file(path))`` works on the network
                       ``sonodiff.models.build_model(config["spec"])`` builds; safetensors metadata
                       ``{"format": FOLDER_FORMAT}``
    depth.safetensors  ``{"depth": d(p)}``, the (H, W) float32 depth map in [0, 1] the B-maps were built over
    config.json        plain JSON (indent 2, sorted keys), the keys :data:`CONFIG_KEYS`:
                       format (:data:`FOLDER_FORMAT`), sonodiff_version, dataset, variant, step,
                       b_min (1: B-maps off, the ordinary DDPM), image_shape [C, H, W], img_size,
                       spec (the network), diffusion (the process, :data:`LEGACY_DIFFUSION` filled in
                       as :func:`~sonodiff.contracts.model_file.load_model` does), sample (the sampler
                       settings it was trained with), probe (``type``, ``pad_square``, ``sector_label``,
                       ``sector_threshold``: the dataset's probe and sector geometry), labels (prepared
                       label name -> id, null when unknown), and config (the rest of the resolved config:
                       every key but :data:`LIFTED`); plus the ``extra`` keys of the writer
                       (the export stage adds the prepared dataset's ``structures``, ``sector_id``, ``counts``)
    README.md          the model card (written by ``sonodiff.export``; this contract stores its text)
    sector.png         the prepared dataset's sector mask, when given (``sample.mask_sector`` blacks
                       out the pixels outside it, as in the real images; :func:`folder_sector`)

:func:`load_model_folder` gives the :class:`~sonodiff.contracts.model_file.LoadedModel` that
``load_model`` gives for the ``model.pt`` it was exported from: the same network, process, spec,
step, and the same ``config`` (``config`` with :data:`LIFTED` put back), so sampling from the
folder gives the same images pixel for pixel. ``load_model`` of a folder path calls it.
"""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from sonodiff.contracts.layout import EXPORTED_CONFIG, EXPORTED_DEPTH, EXPORTED_WEIGHTS, MODEL_CARD, SECTOR
from sonodiff.contracts.model_file import LEGACY_DIFFUSION, LoadedModel
from sonodiff.errors import InputError
from sonodiff.io import atomic_dir, write_text

if TYPE_CHECKING:
    import torch

FOLDER_FORMAT = "sonodiff-model-folder/1"
#: Keys of the resolved config that ``config.json`` holds at its top level (``config`` holds the rest).
LIFTED = ("dataset", "variant", "diffusion", "sample")
#: Keys every ``config.json`` has.
CONFIG_KEYS = ("format", "sonodiff_version", "step", "b_min", "image_shape", "img_size", "spec", "probe",
               "labels", "config", *LIFTED)
#: Keys of the dataset config (``datasets.<d>``) that describe the probe and sector.
PROBE_KEYS = ("pad_square", "sector_label", "sector_threshold")


def sonodiff_version() -> str:
    """The installed sonodiff's version (the source tree's when it runs uninstalled, from ``PYTHONPATH``)."""
    try:
        return importlib.metadata.version("sonodiff")
    except importlib.metadata.PackageNotFoundError:
        import sonodiff

        return sonodiff.__version__


def folder_config(loaded: LoadedModel, extra: Mapping[str, Any] | None = None) -> dict:
    """The content of ``config.json`` for ``loaded``. ``extra``: more top-level keys; of the
    contract's own keys (:data:`CONFIG_KEYS`) it may give only ``labels`` (null without it), any
    other is a ValueError."""
    cfg, data = loaded.config, loaded.config.get("data", {})
    extra = dict(extra or {})
    clash = sorted(set(extra) & (set(CONFIG_KEYS) - {"labels"}))
    if clash:
        raise ValueError(f"extra keys {clash} are the folder contract's own")
    diffusion = {**LEGACY_DIFFUSION, **cfg["diffusion"]}
    return {
        "format": FOLDER_FORMAT,
        "sonodiff_version": sonodiff_version(),
        "dataset": cfg.get("dataset"),
        "variant": cfg.get("variant"),
        "step": int(loaded.step),
        "b_min": float(diffusion["b_min"]),
        "image_shape": list(loaded.image_shape),
        "img_size": data.get("img_size", loaded.image_shape[-1]),
        "spec": dict(loaded.spec),
        "diffusion": diffusion,
        "sample": dict(cfg["sample"]),
        "probe": {"type": data.get("probe", "convex"), **{k: data[k] for k in PROBE_KEYS if k in data}},
        "labels": None,
        "config": {k: v for k, v in cfg.items() if k not in LIFTED},
        **extra,
    }


def write_model_folder(folder: str | Path, loaded: LoadedModel, extra: Mapping[str, Any] | None = None,
                       card: str = "", sector: str | Path | None = None) -> Path:
    """Write the folder of ``loaded`` (:func:`folder_config` with ``extra``; ``card``: README.md's
    text; ``sector``: the prepared dataset's sector mask, copied as it is).

    Everything is written into a temporary sibling that then replaces ``folder`` (an old folder
    included): the folder appears complete or not at all.
    """
    from safetensors.torch import save_file

    text = json.dumps(folder_config(loaded, extra), indent=2, sort_keys=True, allow_nan=False) + "\n"
    weights = {k: v.detach().cpu().contiguous() for k, v in loaded.model.state_dict().items()}
    depth = loaded.diffusion.depth.detach().cpu().float().contiguous()
    with atomic_dir(folder) as tmp:
        save_file(weights, tmp / EXPORTED_WEIGHTS, metadata={"format": FOLDER_FORMAT})
        save_file({"depth": depth}, tmp / EXPORTED_DEPTH, metadata={"format": FOLDER_FORMAT})
        write_text(tmp / EXPORTED_CONFIG, text)
        write_text(tmp / MODEL_CARD, card)
        if sector is not None:
            (tmp / SECTOR).write_bytes(Path(sector).read_bytes())
    return Path(folder)


def folder_sector(folder: str | Path) -> Path | None:
    """The sector mask a model folder carries (None without one)."""
    path = Path(folder) / SECTOR
    return path if path.is_file() else None


def read_folder_config(folder: str | Path) -> dict:
    """``config.json`` of a model folder, checked for its format and :data:`CONFIG_KEYS`."""
    path = Path(folder) / EXPORTED_CONFIG
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(path, "model folder config not found") from None
    except (OSError, ValueError) as err:
        raise InputError(path, f"unreadable model folder config ({err})") from err
    if not isinstance(doc, dict) or doc.get("format") != FOLDER_FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise InputError(path, f"not a sonodiff model folder (format {found!r}, expected {FOLDER_FORMAT!r})")
    missing = [k for k in CONFIG_KEYS if k not in doc]
    if missing:
        raise InputError(path, f"not a sonodiff model folder (missing {missing})")
    return doc


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        return load_file(path, device="cpu")
    except Exception as err:  # safetensors raises its own error type for a truncated or foreign file
        raise InputError(path, f"unreadable safetensors file ({' '.join(str(err).split())[:200]})") from err


def load_model_folder(folder: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the model of an exported folder on ``device`` from safetensors and JSON alone: the
    network (:func:`sonodiff.models.build_model`, strict state dict) and the process
    (:meth:`sonodiff.diffusion.process.BMapDiffusion.from_config` over the stored depth map)."""
    from sonodiff.diffusion.process import BMapDiffusion
    from sonodiff.models import build_model

    folder = Path(folder)
    doc = read_folder_config(folder)
    state = _tensors(folder / EXPORTED_WEIGHTS)
    depth = _tensors(folder / EXPORTED_DEPTH).get("depth")
    if depth is None:
        raise InputError(folder / EXPORTED_DEPTH, "no tensor named 'depth'")
    model = build_model(doc["spec"])
    try:
        model.load_state_dict(state)
    except RuntimeError as err:  # missing, unexpected or misshapen tensors
        raise InputError(folder / EXPORTED_WEIGHTS, f"weights do not fit the spec ({' '.join(str(err).split())[:200]})") from err
    model.to(device).eval()
    diffusion = BMapDiffusion.from_config(doc["diffusion"], depth).to(device)
    config = {**doc["config"], **{k: doc[k] for k in LIFTED}}
    return LoadedModel(model, diffusion, dict(doc["spec"]), config, int(doc["step"]))
