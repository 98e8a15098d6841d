"""Latent diffusion networks: a text-conditioned UNet in an autoencoder's latent space (Rombach et
al. 2022, Stable Diffusion) and a ControlNet on it (Zhang et al. 2023), as Freiche et al. 2025
fine-tune them on BUSI. Built from diffusers (``AutoencoderKL``, ``UNet2DConditionModel``,
``ControlNetModel``) and transformers (``CLIPTextModel``, ``CLIPTokenizer``).

Latents. ``z = s E(x)`` with ``E(x)`` the mean of the autoencoder's posterior and ``s`` its
``scaling_factor`` (Stable Diffusion's 0.18215, Rombach et al. sec. 4.3.2); ``x = D(z / s)``. An
autoencoder trained here standardises each latent channel c instead, ``z_c = (E(x)_c - m_c) / s_c``
with m_c, s_c the channel's mean and std over the training images (its config's
``latents_mean`` and ``latents_std``, as diffusers names them), so z_0 matches the N(0, I) prior
of x_T in mean as well as spread; ``x = D(z s + m)``. Grey images enter a
3-channel (pretrained) autoencoder as three equal channels and leave it as their mean.

Text. The class c of an image names its prompt, ``prompt_c = template.format(class=c)``; the
tokenised prompts of the K classes and the empty prompt (the null condition of classifier-free
guidance, as Stable Diffusion's training drops the caption) are stored as the buffer
``prompt_ids`` (K + 1, L), so a model file needs no tokenizer. The text encoder is frozen; its
hidden states ``tau(prompt_c)`` (L, D) are the UNet's cross-attention context.

ControlNet. ``eps = UNet(z_t, t, tau; r(z_t, t, tau, y))`` with ``r`` the residuals of a trainable
copy of the UNet's encoder fed the one-hot label map y through zero-initialised convolutions, so
at initialisation ``r = 0`` and the output is the base model's (Zhang et al. eq. 2); the base UNet,
the autoencoder and the text encoder stay frozen.

Both networks have the interface of the pixel-space ones (``condition``, ``null``, ``drop``,
``forward``; :mod:`sonodiff.models`), plus ``encode`` / ``decode`` between images in [-1, 1] and
latents. ``condition(labels, classes)`` takes the integer label maps (B, H, W) (the ControlNet's
condition; ignored by the prompt-only model) and the class ids (B,).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from sonodiff.errors import InputError

#: Special tokens of a CLIP tokenizer.
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
#: Components of a Stable Diffusion folder (diffusers' layout) that a latent model uses.
PRETRAINED_PARTS = ("unet", "vae", "text_encoder", "tokenizer")


def plain(config: Mapping[str, Any]) -> dict:
    """A diffusers / transformers config as plain JSON-able values (no FrozenDict, tuples as lists),
    without diffusers' ``_use_default_values`` (which would make ``from_config`` drop the values of
    the keys it lists, e.g. the latent statistics set after training)."""
    def convert(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): convert(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [convert(v) for v in value]
        return value
    return convert({k: v for k, v in dict(config).items() if k != "_use_default_values"})


def word_tokenizer(prompts: Sequence[str]):
    """A CLIP tokenizer whose vocabulary is the characters and words of ``prompts``.

    Every character ``c`` and word-final ``c</w>`` is a token, and each word ``w_1 .. w_n`` gets
    the merges ``(w_1 .. w_k, w_{k+1})`` that build it left to right, so every word of the prompts
    is in the vocabulary (BPE, Sennrich et al. 2016, as CLIP's tokenizer applies it). Used where
    no pretrained tokenizer exists (the tiny configs); a pretrained folder brings its own.
    """
    from transformers import CLIPTokenizer

    words = sorted({w for p in prompts for w in p.lower().split()})
    pieces, merges = [], []
    for word in words:
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        pieces += parts
        for k in range(1, len(parts)):
            left, right = "".join(parts[:k]), parts[k]
            merges.append((left, right))
            pieces.append(left + right)
    tokens = [BOS, EOS] + list(dict.fromkeys(pieces))
    vocab = {tok: i for i, tok in enumerate(tokens)}
    return CLIPTokenizer(vocab=vocab, merges=list(dict.fromkeys(merges)), unk_token=EOS, bos_token=BOS,
                         eos_token=EOS, pad_token=EOS)


def prompt_token_ids(tokenizer, prompts: Sequence[str], max_length: int) -> list[list[int]]:
    """``prompts`` and the empty prompt tokenised to ``max_length`` ids each (padded, truncated)."""
    batch = tokenizer(list(prompts) + [""], padding="max_length", max_length=int(max_length), truncation=True)
    return [list(map(int, ids)) for ids in batch["input_ids"]]


def tiny_vae_config(section: Mapping[str, Any], image_channels: int, img_size: int) -> dict:
    """An ``AutoencoderKL`` config from ``latent.autoencoder`` (downsampling 2^(len(channels) - 1))."""
    n = len(section["channels"])
    return {"in_channels": image_channels, "out_channels": image_channels,
            "down_block_types": ["DownEncoderBlock2D"] * n, "up_block_types": ["UpDecoderBlock2D"] * n,
            "block_out_channels": list(section["channels"]), "latent_channels": int(section["latent_channels"]),
            "layers_per_block": int(section["layers_per_block"]), "norm_num_groups": int(section["norm_num_groups"]),
            "sample_size": int(img_size), "scaling_factor": 1.0}


def tiny_unet_config(section: Mapping[str, Any], latent_channels: int, out_channels: int, latent_size: int,
                     cross_attention_dim: int) -> dict:
    """A ``UNet2DConditionModel`` config from ``latent.unet``: cross-attention in every block but the
    deepest (Stable Diffusion's pattern)."""
    n = len(section["channels"])
    down = ["CrossAttnDownBlock2D"] * (n - 1) + ["DownBlock2D"]
    up = ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * (n - 1)
    return {"sample_size": int(latent_size), "in_channels": int(latent_channels), "out_channels": int(out_channels),
            "down_block_types": down, "up_block_types": up, "block_out_channels": list(section["channels"]),
            "layers_per_block": int(section["layers_per_block"]), "cross_attention_dim": int(cross_attention_dim),
            "attention_head_dim": int(section["attention_head_dim"]), "norm_num_groups": int(section["norm_num_groups"])}


def tiny_text_config(section: Mapping[str, Any], tokenizer) -> dict:
    """A ``CLIPTextConfig`` from ``latent.text_encoder`` over ``tokenizer``'s vocabulary."""
    return {"vocab_size": len(tokenizer), "hidden_size": int(section["hidden_size"]),
            "intermediate_size": int(section["intermediate_size"]),
            "num_hidden_layers": int(section["layers"]), "num_attention_heads": int(section["heads"]),
            "max_position_embeddings": int(section["max_length"]), "projection_dim": int(section["hidden_size"]),
            "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id}


def pretrained_configs(folder: str | Path) -> dict:
    """The ``vae``, ``unet`` and ``text_encoder`` configs and the tokenizer of a Stable Diffusion folder."""
    import json

    from transformers import CLIPTokenizer

    folder = Path(folder)
    configs = {part: json.loads((folder / part / "config.json").read_text())
               for part in ("vae", "unet", "text_encoder")}
    return {**configs, "tokenizer": CLIPTokenizer.from_pretrained(folder / "tokenizer")}


class LatentDiffusionUNet(nn.Module):
    """``eps_theta(z_t, t | tau(prompt_c))``: the text-conditioned latent UNet with its frozen
    autoencoder and text encoder (module docstring)."""

    conditional = True

    def __init__(self, *, in_channels: int, out_channels: int, vae: Mapping, unet: Mapping,
                 text_encoder: Mapping, prompt_ids: Sequence[Sequence[int]], classes: Sequence[str],
                 image_channels: int, image_size: Sequence[int], **_descriptive: Any):
        super().__init__()
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPTextConfig, CLIPTextModel

        self.classes = list(classes)
        self.image_channels = int(image_channels)
        self.vae = AutoencoderKL.from_config(dict(vae))
        self.unet = UNet2DConditionModel.from_config(dict(unet))
        self.text_encoder = CLIPTextModel(CLIPTextConfig(**text_encoder))
        self.register_buffer("prompt_ids", torch.tensor(prompt_ids, dtype=torch.long))
        if self.unet.config.in_channels != in_channels or self.unet.config.out_channels != out_channels:
            raise ValueError(f"the UNet maps {self.unet.config.in_channels} to {self.unet.config.out_channels} "
                             f"channels, the spec says {in_channels} to {out_channels}")
        self.vae.requires_grad_(False)
        self.text_encoder.requires_grad_(False)

    # ------------------------------------------------------------------ latents
    def latent_statistics(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(m, s) broadcast over (B, C, h, w): the channel means and stds of the autoencoder's
        config when it has both, else (0, 1 / scaling_factor)."""
        cfg = self.vae.config
        mean, std = getattr(cfg, "latents_mean", None), getattr(cfg, "latents_std", None)
        if mean is None or std is None:
            return torch.zeros((), dtype=like.dtype, device=like.device), \
                torch.tensor(1.0 / float(cfg.scaling_factor), dtype=like.dtype, device=like.device)
        shape = (1, -1, 1, 1)
        return (torch.tensor(mean, dtype=like.dtype, device=like.device).view(shape),
                torch.tensor(std, dtype=like.dtype, device=like.device).view(shape))

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """``z = (mean(E(x)) - m) / s`` of images (B, C, H, W) in [-1, 1] (module docstring)."""
        x = images.to(self.vae.dtype)
        if self.vae.config.in_channels != x.shape[1]:
            x = x.expand(-1, self.vae.config.in_channels, -1, -1)
        mu = self.vae.encode(x).latent_dist.mean
        mean, std = self.latent_statistics(mu)
        return (mu - mean) / std

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """``x = clip(D(z s + m), -1, 1)`` with the image's channels (the mean of a 3-channel decoder's)."""
        z = latents.to(self.vae.dtype)
        mean, std = self.latent_statistics(z)
        x = self.vae.decode(z * std + mean).sample
        if x.shape[1] != self.image_channels:
            x = x.mean(dim=1, keepdim=True)
        return x.clamp(-1.0, 1.0).float()

    # ------------------------------------------------------------------ condition
    def prompt_embeddings(self) -> torch.Tensor:
        """``tau`` of the K prompts and the empty one: (K + 1, L, D), without gradient."""
        with torch.no_grad():
            return self.text_encoder(self.prompt_ids).last_hidden_state

    def condition(self, labels: torch.Tensor | None, classes: torch.Tensor | None = None) -> dict:
        """``{"text": tau(prompt_c) (B, L, D), "null": (1, L, D), "map": None}`` for class ids ``classes``."""
        if classes is None:
            raise ValueError("the latent model needs class ids (the prompts)")
        emb = self.prompt_embeddings()
        return {"text": emb[classes.long()], "null": emb[-1:], "map": None}

    @staticmethod
    def null(cond: dict) -> dict:
        """The empty prompt's context for every sample (the label map, if any, is kept)."""
        return {**cond, "text": cond["null"].expand_as(cond["text"])}

    @staticmethod
    def drop(cond: dict, drop: torch.Tensor) -> dict:
        """Caption dropout: ``tau_b <- tau(empty) if drop_b``."""
        keep = ~drop.to(cond["text"].device).view(-1, 1, 1)
        return {**cond, "text": torch.where(keep, cond["text"], cond["null"].expand_as(cond["text"]))}

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: dict, down_residuals=None,
                mid_residual=None) -> torch.Tensor:
        return self.unet(x, t, encoder_hidden_states=cond["text"].to(x.dtype),
                         down_block_additional_residuals=down_residuals,
                         mid_block_additional_residual=mid_residual).sample


class ControlledLatentUNet(nn.Module):
    """The frozen :class:`LatentDiffusionUNet` steered by a ControlNet on the one-hot label map."""

    conditional = True

    def __init__(self, *, in_channels: int, out_channels: int, num_classes: int, base: Mapping,
                 controlnet: Mapping, **_descriptive: Any):
        super().__init__()
        from diffusers import ControlNetModel

        self.num_classes = int(num_classes)
        self.base = LatentDiffusionUNet(**{k: v for k, v in base.items() if k != "kind"})
        self.base.requires_grad_(False)
        self.controlnet = ControlNetModel.from_config(dict(controlnet))
        self.classes = self.base.classes

    def init_from_base(self) -> None:
        """The ControlNet's encoder copied from the base UNet's, zero convolutions at zero (Zhang et al.)."""
        from diffusers import ControlNetModel

        cfg = self.controlnet.config
        fresh = ControlNetModel.from_unet(
            self.base.unet, conditioning_channels=cfg.conditioning_channels,
            conditioning_embedding_out_channels=tuple(cfg.conditioning_embedding_out_channels))
        self.controlnet.load_state_dict(fresh.state_dict())

    def train(self, mode: bool = True) -> "ControlledLatentUNet":
        super().train(mode)
        self.base.eval()  # frozen: no dropout, whatever the trainer asks
        return self

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.base.encode(images)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.base.decode(latents)

    def condition(self, labels: torch.Tensor | None, classes: torch.Tensor | None = None) -> dict:
        """The base model's text condition plus ``map``: the one-hot label map (B, K, H, W)."""
        if labels is None:
            raise ValueError("the ControlNet needs label maps")
        cond = self.base.condition(None, classes)
        onehot = torch.nn.functional.one_hot(labels.long(), self.num_classes).permute(0, 3, 1, 2).float()
        return {**cond, "map": onehot}

    null = staticmethod(LatentDiffusionUNet.null)
    drop = staticmethod(LatentDiffusionUNet.drop)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: dict) -> torch.Tensor:
        down, mid = self.controlnet(x, t, encoder_hidden_states=cond["text"].to(x.dtype),
                                    controlnet_cond=cond["map"].to(x.dtype), return_dict=False)
        return self.base(x, t, cond, down_residuals=down, mid_residual=mid)


def controlnet_config(unet_config: Mapping, num_classes: int, conditioning_channels: Sequence[int]) -> dict:
    """The ControlNet config :meth:`ControlledLatentUNet.init_from_base` fills: the UNet's encoder, a
    ``num_classes``-channel condition and ``conditioning_channels`` (one stride-2 layer between each
    two: the label map's size over the latent's is 2^(len - 1))."""
    from diffusers import ControlNetModel, UNet2DConditionModel

    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(dict(unet_config))
        net = ControlNetModel.from_unet(unet, conditioning_channels=int(num_classes), load_weights_from_unet=False,
                                        conditioning_embedding_out_channels=tuple(conditioning_channels))
    return plain(net.config)


def latent_spec(cfg: Mapping[str, Any], classes: Sequence[str], image_channels: int, img_size: int,
                vae: Mapping[str, Any] | None = None) -> dict:
    """The spec of the prompt-conditioned latent model of a resolved config (``latent`` section).

    With ``latent.pretrained`` (a Stable Diffusion folder) the component configs and the tokenizer
    are the folder's; otherwise the tiny components of ``latent.autoencoder``, ``.unet`` and
    ``.text_encoder`` over a :func:`word_tokenizer` of the prompts. ``vae``: the config of the
    autoencoder trained for it (with its latent statistics), in place of the one the config builds. The UNet predicts ``2C``
    channels with learned variance (``diffusion.learn_sigma``), else ``C`` (a pretrained one: C).
    """
    lat = cfg["latent"]
    prompts = [lat["prompt"].format(**{"class": c}) for c in classes]
    learn_sigma = bool(cfg["diffusion"]["learn_sigma"])
    if lat.get("pretrained"):
        parts = pretrained_configs(lat["pretrained"])
        tokenizer, vae, unet, text = parts["tokenizer"], parts["vae"], parts["unet"], parts["text_encoder"]
        max_length = int(text.get("max_position_embeddings", tokenizer.model_max_length))
        latent_channels = int(vae["latent_channels"])
        if unet["out_channels"] != latent_channels * (2 if learn_sigma else 1):
            raise InputError("config key diffusion.learn_sigma",
                             f"the pretrained UNet of {lat['pretrained']} predicts {unet['out_channels']} channels "
                             f"for {latent_channels} latent channels; set diffusion.learn_sigma: "
                             f"{'false' if unet['out_channels'] == latent_channels else 'true'}")
    else:
        tokenizer = word_tokenizer(prompts)
        max_length = int(lat["text_encoder"]["max_length"])
        vae = dict(vae) if vae is not None else tiny_vae_config(lat["autoencoder"], image_channels, img_size)
        latent_channels = int(vae["latent_channels"])
        text = tiny_text_config(lat["text_encoder"], tokenizer)
        factor = 2 ** (len(vae["block_out_channels"]) - 1)
        unet = tiny_unet_config(lat["unet"], latent_channels, latent_channels * (2 if learn_sigma else 1),
                                img_size // factor, text["hidden_size"])
    return {"kind": "latent", "in_channels": latent_channels, "out_channels": int(unet["out_channels"]),
            "num_classes": None, "classes": list(classes), "prompts": prompts,
            "prompt_ids": prompt_token_ids(tokenizer, prompts, max_length),
            "image_channels": int(image_channels), "image_size": [int(img_size), int(img_size)],
            "vae": plain(vae), "unet": plain(unet), "text_encoder": plain(text)}


def controlnet_spec(base_spec: Mapping[str, Any], num_classes: int, conditioning_channels: Sequence[int]) -> dict:
    """The spec of a ControlNet on the latent model ``base_spec`` for label maps of ``num_classes`` ids."""
    return {"kind": "controlnet", "in_channels": base_spec["in_channels"], "out_channels": base_spec["out_channels"],
            "num_classes": int(num_classes), "classes": list(base_spec["classes"]),
            "image_channels": base_spec["image_channels"], "image_size": list(base_spec["image_size"]),
            "base": dict(base_spec),
            "controlnet": controlnet_config(base_spec["unet"], num_classes, conditioning_channels)}


def latent_factor(spec: Mapping[str, Any]) -> int:
    """How many image pixels one latent pixel spans along each axis (the autoencoder's 2^(levels - 1))."""
    vae = spec["base"]["vae"] if spec["kind"] == "controlnet" else spec["vae"]
    return 2 ** (len(vae["block_out_channels"]) - 1)


def load_pretrained_weights(model: LatentDiffusionUNet, folder: str | Path) -> None:
    """The UNet, autoencoder and text encoder weights of a Stable Diffusion folder (safetensors, local only)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    folder = Path(folder)
    model.unet.load_state_dict(UNet2DConditionModel.from_pretrained(folder / "unet", local_files_only=True).state_dict())
    model.vae.load_state_dict(AutoencoderKL.from_pretrained(folder / "vae", local_files_only=True).state_dict())
    model.text_encoder.load_state_dict(
        CLIPTextModel.from_pretrained(folder / "text_encoder", local_files_only=True).state_dict())


def class_indices(classes: Sequence[str], names: Sequence[Any], where: str | Path) -> torch.Tensor:
    """The index in a model's ``classes`` (its prompts) of each class name; a name it does not know
    is an error naming ``where``."""
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({str(n) for n in names} - set(index))
    if unknown:
        raise InputError(where, f"classes {unknown} are not among the model's {list(classes)}")
    return torch.tensor([index[str(n)] for n in names], dtype=torch.long)


def cat_conditions(a: Any, b: Any) -> Any:
    """Two conditions of one network as one batch (tensors concatenated; dicts key by key)."""
    if isinstance(a, dict):
        return {k: (v if k == "null" or v is None else cat_conditions(v, b[k])) for k, v in a.items()}
    return torch.cat([a, b])


__all__ = ["LatentDiffusionUNet", "ControlledLatentUNet", "word_tokenizer", "prompt_token_ids", "plain",
           "tiny_vae_config", "tiny_unet_config", "tiny_text_config", "pretrained_configs", "controlnet_config",
           "cat_conditions", "class_indices"]
