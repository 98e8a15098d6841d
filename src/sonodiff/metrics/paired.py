"""Paired image metrics: LPIPS, SSIM and PSNR between a synthetic image and its real counterpart.

Each synthetic image is compared with the real image of the label map it was generated from
(the samples manifest's ``real_image``), as in Domínguez et al. 2024, section 3.2, table 2.

Conventions (fixed here, since the papers leave them open):

- Images are uint8 grayscale, rescaled to [0, 1] (x / 255) before every metric; SSIM is not
  shift- or scale-invariant, so the range matters.
- SSIM (Wang et al. 2004) is torchmetrics' ``structural_similarity_index_measure`` with its
  defaults: 11 x 11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, ``data_range=1.0``, one value
  per image (the mean of the SSIM map, borders reflect-padded):
  SSIM = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2)),
  C1 = (0.01)^2, C2 = (0.03)^2, computed in float32 (20x faster than float64 on a CPU, and
  within 1e-6 of scikit-image's float64). With ``crop_border=True`` the map is averaged over the interior
  only (5 px from each border), which is exactly scikit-image's ``structural_similarity(...,
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1)``.
- PSNR is per image, PSNR = 10 log10(1 / MSE) with ``data_range=1.0``; the reported PSNR is the
  mean of the per-image values (not the PSNR of the pooled MSE).
- LPIPS (Zhang et al. 2018) is the ``lpips`` package, AlexNet trunk, v0.1 linear layers; the
  grayscale image is repeated to 3 channels and mapped to [-1, 1].
- Summary: mean, standard deviation (population, ``ddof=0``) and range (max - min) over pairs.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from sonodiff.errors import InputError
from sonodiff.metrics.weights import load_state_dict

#: Summary statistics of a paired metric, in the paper's order.
STATS = ("mean", "std", "range")
SSIM_BORDER = 5  # (11 - 1) // 2: pixels whose window leaves the image
CHUNK = 64  # images per SSIM/PSNR call


def to_unit(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W) -> float64 (N, 1, H, W) in [0, 1]."""
    return torch.from_numpy(np.asarray(images, dtype=np.float64) / 255.0)[:, None]


def ssim_per_image(synthetic: np.ndarray, real: np.ndarray, crop_border: bool = False) -> np.ndarray:
    """SSIM of each pair (N,), images uint8 (N, H, W); see the module docstring for the settings."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    out = np.empty(len(synthetic))
    for start in range(0, len(synthetic), CHUNK):  # bounded memory: SSIM keeps 5 float64 maps per image
        x, y = to_unit(synthetic[start:start + CHUNK]).float(), to_unit(real[start:start + CHUNK]).float()
        if not crop_border:
            values = structural_similarity_index_measure(x, y, data_range=1.0, reduction="none")
        else:
            _, ssim_map = structural_similarity_index_measure(x, y, data_range=1.0, reduction="none",
                                                              return_full_image=True)
            b = SSIM_BORDER
            values = ssim_map[..., b:-b, b:-b].mean(dim=(1, 2, 3))
        out[start:start + CHUNK] = values.double().numpy()
    return out


def psnr_per_image(synthetic: np.ndarray, real: np.ndarray) -> np.ndarray:
    """PSNR (dB) of each pair (N,): 10 log10(1 / mean((x - y)^2)), images in [0, 1]."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    out = np.empty(len(synthetic))
    for start in range(0, len(synthetic), CHUNK):
        x, y = to_unit(synthetic[start:start + CHUNK]), to_unit(real[start:start + CHUNK])
        out[start:start + CHUNK] = peak_signal_noise_ratio(x, y, data_range=1.0, reduction="none",
                                                           dim=(1, 2, 3)).numpy()
    return out


def summary(values: np.ndarray) -> dict[str, float]:
    """Mean, standard deviation (ddof=0) and range (max - min) of per-pair values."""
    values = np.asarray(values, dtype=np.float64)
    return {"mean": float(values.mean()), "std": float(values.std()), "range": float(values.max() - values.min())}


def build_lpips(alexnet_weights: str | Path, linear_weights: str | Path) -> torch.nn.Module:
    """The lpips package's LPIPS(net='alex', v0.1), every parameter loaded from the two files.

    The module is constructed with pretrained loading off (no download, no file read), then the
    AlexNet trunk gets torchvision's ``features.*`` tensors and the linear layers the lpips
    package's calibrated weights. Both files must have their published SHA-256 (else
    :class:`InputError`, :func:`sonodiff.metrics.weights.verify_weights`).
    """
    import lpips

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's deprecation of `pretrained=`, used inside lpips
        model = lpips.LPIPS(net="alex", version="0.1", pretrained=False, pnet_rand=True, verbose=False)
    trunk = load_state_dict(alexnet_weights, "alexnet")
    linear = load_state_dict(linear_weights, "lpips_linear")
    state = {}
    for name in model.state_dict():
        if name.startswith("net.slice"):  # net.slice<k>.<i>.<param> == torchvision features.<i>.<param>
            _, _, index, param = name.split(".")
            source = f"features.{index}.{param}"
            if source not in trunk:
                raise InputError(alexnet_weights, f"not torchvision AlexNet weights (no {source})")
            state[name] = trunk[source]
        elif name.startswith("lin"):  # lins.<k>.* is the same module as lin<k>.*
            source = name
            if name.startswith("lins."):
                _, k, rest = name.split(".", 2)
                source = f"lin{k}.{rest}"
            if source not in linear:
                raise InputError(linear_weights, f"not LPIPS AlexNet linear weights (no {source})")
            state[name] = linear[source]
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # wrong shapes
        raise InputError(alexnet_weights, f"weights do not fit LPIPS AlexNet ({str(err).splitlines()[0]})") from err
    if unexpected or any(not k.startswith("scaling_layer.") for k in missing):  # only fixed constants may stay
        raise RuntimeError(f"LPIPS parameters not loaded from files: {missing} {unexpected}")
    return model.eval()


@torch.no_grad()
def lpips_per_image(model: torch.nn.Module, synthetic: np.ndarray, real: np.ndarray,
                    batch_size: int = 50, device: str | torch.device = "cpu",
                    progress: bool = True) -> np.ndarray:
    """LPIPS distance of each pair (N,), images uint8 (N, H, W), grayscale repeated to RGB."""
    model = model.to(device).eval()
    out = np.empty(len(synthetic))
    for start in tqdm(range(0, len(synthetic), batch_size), desc="lpips", disable=not progress):
        stop = start + batch_size
        x = to_unit(synthetic[start:stop]).float().to(device).expand(-1, 3, -1, -1)
        y = to_unit(real[start:stop]).float().to(device).expand(-1, 3, -1, -1)
        out[start:stop] = model(x, y, normalize=True).flatten().double().cpu().numpy()
    return out
