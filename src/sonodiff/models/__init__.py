"""Network construction: the semantic (label-conditioned) and the unconditional diffusion UNet.

A model is described by a *spec*, a plain dict saved inside every checkpoint and ``model.pt`` so
the network can be rebuilt without the config::

    spec = model_spec(cfg, num_classes=5)   # cfg: the resolved config; None = no label maps
    model = build_model(spec)
    eps_v = model(x_t, t, model.condition(labels))          # (B, 2C, H, W) with learned variance

Both kinds share one interface (``condition``, ``null``, ``drop``; see
:mod:`sonodiff.models.semantic`), so training and sampling code never branch on the kind.

Importing this package costs nothing: MONAI (and torch) load when a network is built or one of
the classes and condition helpers below is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Mapping

from sonodiff.errors import InputError

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "SemanticUNet", "UnconditionalUNet", "build_model", "model_spec",
    "one_hot_labels", "null_condition", "drop_condition", "LatentDiffusionUNet", "ControlledLatentUNet",
    "cat_conditions",
]

#: Names this package re-exports, by the submodule that defines them (loaded on first use).
_LAZY = {"SemanticUNet": "semantic", "one_hot_labels": "semantic", "null_condition": "semantic",
         "drop_condition": "semantic", "UnconditionalUNet": "unconditional",
         "LatentDiffusionUNet": "latent", "ControlledLatentUNet": "latent", "cat_conditions": "latent"}
#: Model kinds by name: the class (a name of :data:`_LAZY`); a new kind is one entry.
KINDS: dict[str, str] = {"semantic": "SemanticUNet", "unconditional": "UnconditionalUNet",
                         "latent": "LatentDiffusionUNet", "controlnet": "ControlledLatentUNet"}
#: Kinds whose network takes ``num_classes`` (the label maps' ids).
LABEL_KINDS = ("semantic", "controlnet")
#: Keys of the config's ``model`` section passed to the network.
MODEL_KEYS = ("channels", "attention_levels", "num_res_blocks", "num_head_channels", "norm_num_groups",
              "spade_channels")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"sonodiff.models.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def model_spec(cfg: Mapping[str, Any], num_classes: int | None, in_channels: int = 1) -> dict:
    """The spec of the network for a resolved config.

    ``num_classes``: number of prepared label ids (background, structures and sector), or None
    for a dataset without label maps (unconditional model). Output channels are ``2C`` with
    learned variance (``diffusion.learn_sigma``), else ``C``.
    """
    model = cfg["model"]
    if len(model["attention_levels"]) != len(model["channels"]):
        raise InputError("config key model.attention_levels", "needs one entry per entry of model.channels")
    bad = [c for c in model["channels"] if c % model["norm_num_groups"]]
    if bad:
        raise InputError("config key model.norm_num_groups",
                         f"{model['norm_num_groups']} does not divide channels {bad}")
    learn_sigma = bool(cfg["diffusion"]["learn_sigma"])
    spec = {
        "kind": "semantic" if num_classes else "unconditional",
        "in_channels": int(in_channels),
        "out_channels": int(in_channels) * (2 if learn_sigma else 1),
        "num_classes": int(num_classes) if num_classes else None,
    }
    spec.update({k: model[k] for k in MODEL_KEYS if k in model})
    return spec


def build_model(spec: Mapping[str, Any]) -> nn.Module:
    """Build the network a spec (from :func:`model_spec`) describes."""
    kwargs = {k: v for k, v in spec.items() if k not in ("kind", "num_classes")}
    if spec["kind"] in LABEL_KINDS:
        kwargs["num_classes"] = spec["num_classes"]
    try:
        return __getattr__(KINDS[spec["kind"]])(**kwargs)
    except ValueError as err:  # MONAI's checks of channels, heads and groups
        raise InputError("config key model", str(err)) from err
