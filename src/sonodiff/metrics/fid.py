"""Fréchet Inception Distance with pytorch-fid's Inception at the 1st/2nd max-pool and pool3.

FID (Heusel et al. 2017) between two feature sets with means mu_i and covariances S_i:

    FID = ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))

Features come from pytorch-fid's ``InceptionV3`` (the TensorFlow FID Inception port) at the
block that gives ``dims`` channels: 64 = first max-pool, 192 = second max-pool (Domínguez et al.
2024, table 1), 768 = pre-aux, 2048 = final average pool. As in pytorch-fid's
``get_activations``, a spatial feature map is averaged to one vector per image; images are
grayscale in [0, 1] repeated to 3 channels (pytorch-fid's ``convert('RGB')``), resized
bilinearly to 299 px and scaled to [-1, 1] by the network.

The network is pytorch-fid's own class, constructed with its download replaced by the state
dict read from a local file whose SHA-256 is checked first (:mod:`sonodiff.metrics.weights`);
every parameter comes from that file. pytorch-fid's ``calculate_frechet_distance`` calls
``scipy.linalg.sqrtm(..., disp=False)``, an argument current SciPy deprecates and later removes:
:func:`frechet_distance` is the same computation (same eps fallback, same imaginary-part check)
calling ``sqrtm`` without it.

For bootstrap intervals :func:`frechet_distance_features` computes the same distance directly
from the two centred feature matrices X_i (n_i x d), without any matrix square root:
S_i = X_i^T X_i / (n_i - 1), and the non-zero eigenvalues of S_1 S_2 are the squared singular
values of K = X_1 X_2^T / sqrt((n_1 - 1)(n_2 - 1)), so Tr (S_1 S_2)^(1/2) = ||K||_* (nuclear norm).
It costs one SVD of an n_1 x n_2 matrix and is exact for singular covariances too;
:class:`ResampledFrechet` evaluates it on bootstrap resamples from Gram matrices computed once.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Sequence
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from sonodiff.errors import InputError
from sonodiff.metrics.weights import load_state_dict

log = logging.getLogger(__name__)

#: Feature dimension -> pytorch-fid InceptionV3 block index.
BLOCK_BY_DIM = {64: 0, 192: 1, 768: 2, 2048: 3}
#: Names the papers use for the feature layers.
LAYER_NAMES = {64: "1st max-pool", 192: "2nd max-pool", 768: "pre-aux", 2048: "pool3"}


def sqrtm(matrix: np.ndarray) -> np.ndarray:
    """Principal square root of a matrix (``scipy.linalg.sqrtm`` without the removed ``disp``)."""
    import scipy.linalg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LinAlgWarning for (near-)singular input: checked by the caller
        return scipy.linalg.sqrtm(matrix)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrtm(S1 S2)), as pytorch-fid's ``calculate_frechet_distance``.

    If sqrtm(S1 S2) is not finite, eps I is added to both covariances; a non-negligible
    imaginary diagonal (> 1e-3) is an error, a negligible one is dropped.
    """
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"feature shapes differ: {mu1.shape} vs {mu2.shape}, {sigma1.shape} vs {sigma2.shape}")
    diff = mu1 - mu2
    covmean = sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        log.info("fid calculation produces singular product; adding %s to diagonal of cov estimates", eps)
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"Imaginary component {np.max(np.abs(covmean.imag))}")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (``np.cov``, rows = images) of a feature set, as pytorch-fid."""
    features = np.asarray(features, dtype=np.float64)
    return features.mean(axis=0), np.atleast_2d(np.cov(features, rowvar=False))


def frechet_distance_features(x1: np.ndarray, x2: np.ndarray) -> float:
    """FID between two feature sets (rows = images) via the nuclear norm; see the module docstring.

    ||mu1 - mu2||^2 + ||X1||_F^2/(n1-1) + ||X2||_F^2/(n2-1) - 2 ||X1 X2^T||_* / sqrt((n1-1)(n2-1)),
    with X_i the centred features. NaN when a set has fewer than 2 images.
    """
    x1, x2 = np.asarray(x1, dtype=np.float64), np.asarray(x2, dtype=np.float64)
    n1, n2 = len(x1), len(x2)
    if n1 < 2 or n2 < 2:
        return float("nan")
    mu1, mu2 = x1.mean(axis=0), x2.mean(axis=0)
    c1, c2 = x1 - mu1, x2 - mu2
    tr1 = np.sum(c1 * c1) / (n1 - 1)
    tr2 = np.sum(c2 * c2) / (n2 - 1)
    nuclear = np.linalg.svd(c1 @ c2.T, compute_uv=False).sum() / np.sqrt((n1 - 1) * (n2 - 1))
    diff = mu1 - mu2
    return float(diff.dot(diff) + tr1 + tr2 - 2.0 * nuclear)


class ResampledFrechet:
    """FID of row-resampled feature sets, exact, from Gram matrices computed once (for the bootstrap).

    ``stat(i1, i2)`` = :func:`frechet_distance_features` ``(x1[i1], x2[i2])``. A resample is held as
    counts w (how often each image was drawn, n = sum w). With the Gram matrices A = X1 X1^T,
    B = X2 X2^T, C = X1 X2^T (features first shifted by one common vector, which leaves FID
    unchanged and avoids cancellation):
    ||mu1 - mu2||^2 = w1'A w1 / n1^2 + w2'B w2 / n2^2 - 2 w1'C w2 / (n1 n2),
    Tr S1 = (sum_i w1_i A_ii - w1'A w1 / n1) / (n1 - 1), likewise Tr S2, and
    Tr (S1 S2)^(1/2) = ||W1^(1/2) K W2^(1/2)||_* / sqrt((n1 - 1)(n2 - 1)), K the weighted double-centred
    C over the drawn images (a repeated row or column of the resampled product only scales a
    singular value's weight). Each resample costs one SVD of a (drawn images) matrix and nothing of order d.
    """

    def __init__(self, x1: np.ndarray, x2: np.ndarray):
        x1, x2 = np.asarray(x1, dtype=np.float64), np.asarray(x2, dtype=np.float64)
        shift = np.concatenate([x1, x2]).mean(axis=0)
        x1, x2 = x1 - shift, x2 - shift
        self.g11, self.g22, self.g12 = x1 @ x1.T, x2 @ x2.T, x1 @ x2.T
        self.sizes = (len(x1), len(x2))

    def __call__(self, i1: np.ndarray, i2: np.ndarray) -> float:
        w1 = np.bincount(i1, minlength=self.sizes[0]).astype(np.float64)
        w2 = np.bincount(i2, minlength=self.sizes[1]).astype(np.float64)
        n1, n2 = w1.sum(), w2.sum()
        if n1 < 2 or n2 < 2:
            return float("nan")
        mean_a = w1 @ self.g11 @ w1 / n1**2
        mean_b = w2 @ self.g22 @ w2 / n2**2
        tr1 = (w1 @ np.diag(self.g11) - n1 * mean_a) / (n1 - 1)
        tr2 = (w2 @ np.diag(self.g22) - n2 * mean_b) / (n2 - 1)
        u1, u2 = np.flatnonzero(w1), np.flatnonzero(w2)
        v1, v2 = w1[u1], w2[u2]
        c = self.g12[np.ix_(u1, u2)]
        row, col = c @ v2 / n2, v1 @ c / n1
        mean_c = v1 @ row / n1
        k = (c - row[:, None] - col[None, :] + mean_c) * np.sqrt(v1)[:, None] * np.sqrt(v2)[None, :]
        nuclear = np.linalg.svd(k, compute_uv=False).sum() / np.sqrt((n1 - 1) * (n2 - 1))
        return float(mean_a + mean_b - 2 * mean_c + tr1 + tr2 - 2.0 * nuclear)


def build_inception(weights: str | Path, dims: Sequence[int]) -> torch.nn.Module:
    """pytorch-fid's ``InceptionV3`` returning the blocks of ``dims``, every weight from ``weights``.

    ``weights`` must have the SHA-256 of pytorch-fid's file (else :class:`InputError`).
    """
    from pytorch_fid import inception

    bad = [d for d in dims if d not in BLOCK_BY_DIM]
    if bad:
        raise InputError("config key metrics.fid_dims", f"unsupported dims {bad}; choose from {sorted(BLOCK_BY_DIM)}")
    state = load_state_dict(weights, "inception")

    def from_file(url, *args, **kwargs):  # replaces pytorch-fid's download of FID_WEIGHTS_URL
        if url != inception.FID_WEIGHTS_URL:
            raise RuntimeError(f"unexpected weights download {url}")
        return state

    with mock.patch.object(inception, "load_state_dict_from_url", from_file):
        try:
            model = inception.InceptionV3(output_blocks=sorted({BLOCK_BY_DIM[d] for d in dims}))
        except RuntimeError as err:  # load_state_dict: missing/unexpected keys, wrong shapes
            raise InputError(weights, f"not pytorch-fid Inception weights ({str(err).splitlines()[0]})") from err
    return model.eval()


@torch.no_grad()
def inception_features(model: torch.nn.Module, images: np.ndarray, dims: Sequence[int],
                       batch_size: int = 50, device: str | torch.device = "cpu",
                       progress: bool = True) -> dict[int, np.ndarray]:
    """Features of ``images`` (N, H, W) uint8 grayscale at each of ``dims``: ``{dim: (N, dim)}``."""
    model = model.to(device).eval()
    blocks = sorted({BLOCK_BY_DIM[d] for d in dims})
    out = {d: np.empty((len(images), d)) for d in dims}
    starts = range(0, len(images), batch_size)
    for start in tqdm(starts, desc="inception", disable=not progress):
        batch = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size]))
        x = (batch.to(device=device, dtype=torch.float32) / 255.0)[:, None].expand(-1, 3, -1, -1)
        maps = dict(zip(blocks, model(x)))
        for d in dims:
            feat = maps[BLOCK_BY_DIM[d]]
            if feat.shape[2] != 1 or feat.shape[3] != 1:
                feat = F.adaptive_avg_pool2d(feat, output_size=(1, 1))
            out[d][start:start + len(batch)] = feat.flatten(1).double().cpu().numpy()
    return out
