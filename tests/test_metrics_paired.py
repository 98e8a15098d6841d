"""Paired metrics: SSIM/PSNR agree with scikit-image on the same pairs; LPIPS is built from files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from conftest import trust_weights
from sonodiff.errors import InputError
from sonodiff.metrics import paired
from sonodiff.metrics.weights import lpips_linear_path


@pytest.fixture(scope="module")
def pairs():
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, size=(5, 64, 64)).astype(np.uint8)
    noise = rng.normal(0, 30, size=real.shape)
    synthetic = np.clip(real * 0.8 + 20 + noise, 0, 255).astype(np.uint8)
    return synthetic, real


def skimage_ssim(a, b):
    return structural_similarity(a / 255.0, b / 255.0, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=1)


def test_ssim_agrees_with_scikit_image(pairs):
    synthetic, real = pairs
    expected = np.array([skimage_ssim(s, r) for s, r in zip(synthetic, real)])
    # scikit-image averages the SSIM map over the interior: identical there
    np.testing.assert_allclose(paired.ssim_per_image(synthetic, real, crop_border=True), expected, atol=2e-6)
    # the reported value (torchmetrics, reflect-padded borders included) stays close
    np.testing.assert_allclose(paired.ssim_per_image(synthetic, real), expected, atol=0.02)
    assert paired.ssim_per_image(real, real) == pytest.approx(1.0, abs=1e-6)


def test_psnr_agrees_with_scikit_image_per_image(pairs):
    synthetic, real = pairs
    expected = [peak_signal_noise_ratio(r / 255.0, s / 255.0, data_range=1) for s, r in zip(synthetic, real)]
    np.testing.assert_allclose(paired.psnr_per_image(synthetic, real), expected, rtol=1e-6)


def test_psnr_is_the_mean_of_per_image_values_not_of_pooled_mse():
    real = np.full((2, 16, 16), 100, np.uint8)
    synthetic = real.copy()
    synthetic[0] += 1      # tiny error
    synthetic[1] += 50     # large error
    per_image = paired.psnr_per_image(synthetic, real)
    pooled = 10 * np.log10(1 / np.mean(((synthetic.astype(float) - real) / 255) ** 2))
    assert paired.summary(per_image)["mean"] == pytest.approx(per_image.mean())
    assert per_image.mean() > pooled + 5


def test_summary_mean_std_range():
    s = paired.summary(np.array([1.0, 2.0, 4.0]))
    assert s == pytest.approx({"mean": 7 / 3, "std": np.std([1.0, 2.0, 4.0]), "range": 3.0})


@pytest.fixture(scope="module")
def random_alexnet_file(tmp_path_factory):
    """A randomly initialised torchvision AlexNet state dict: tests only."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "alexnet-owt-7be5be79.pth"
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)
    return path


def test_lpips_loads_every_weight_from_files(random_alexnet_file, pairs, monkeypatch):
    trust_weights(monkeypatch, "alexnet", random_alexnet_file)
    model = paired.build_lpips(random_alexnet_file, lpips_linear_path())
    trunk = torch.load(random_alexnet_file, weights_only=True)
    linear = torch.load(lpips_linear_path(), map_location="cpu", weights_only=True)
    assert torch.equal(getattr(model.net.slice1, "0").weight, trunk["features.0.weight"])
    assert torch.equal(getattr(model.net.slice5, "10").weight, trunk["features.10.weight"])
    assert torch.equal(model.lin2.model[1].weight, linear["lin2.model.1.weight"])
    synthetic, real = pairs
    d = paired.lpips_per_image(model, synthetic, real, batch_size=2, progress=False)
    same = paired.lpips_per_image(model, real, real, batch_size=5, progress=False)
    assert d.shape == (5,) and np.all(d > 0)
    np.testing.assert_allclose(same, 0, atol=1e-6)


def test_lpips_rejects_foreign_weights(tmp_path, monkeypatch):
    path = tmp_path / "not_alexnet.pth"
    torch.save({"weight": torch.zeros(3)}, path)
    trust_weights(monkeypatch, "alexnet", path)  # past the hash check: the content check refuses it
    with pytest.raises(InputError, match="not torchvision AlexNet weights"):
        paired.build_lpips(path, lpips_linear_path())
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a checkpoint")
    trust_weights(monkeypatch, "alexnet", broken)
    with pytest.raises(InputError, match="cannot read weights"):
        paired.build_lpips(broken, lpips_linear_path())


def test_chunking_does_not_change_values(pairs, monkeypatch):
    synthetic, real = pairs
    whole_ssim, whole_psnr = paired.ssim_per_image(synthetic, real), paired.psnr_per_image(synthetic, real)
    monkeypatch.setattr(paired, "CHUNK", 2)
    np.testing.assert_allclose(paired.ssim_per_image(synthetic, real), whole_ssim, rtol=1e-6)
    np.testing.assert_allclose(paired.psnr_per_image(synthetic, real), whole_psnr, rtol=1e-12)
