"""FID: the Fréchet distance matches the closed form, works on current SciPy, and a set against
itself is ~0; pytorch-fid's Inception is built from a local file (random weights, tests only)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
import torchvision

from conftest import trust_weights
from sonodiff.errors import InputError
from sonodiff.metrics import fid


def closed_form(mu1, s1, mu2, s2):
    """Two Gaussians with commuting covariances (eigenvalues s1, s2 in the same basis)."""
    return float(np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2)))


def test_frechet_distance_matches_closed_form_for_diagonal_gaussians():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    s1, s2 = rng.uniform(0.1, 3, size=5), rng.uniform(0.1, 3, size=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # no deprecated `disp` on current SciPy
        value = fid.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2))
    assert value == pytest.approx(closed_form(mu1, s1, mu2, s2), rel=1e-9)


def test_frechet_distance_matches_closed_form_in_a_rotated_basis():
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    s1, s2 = rng.uniform(0.1, 2, size=6), rng.uniform(0.1, 2, size=6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    value = fid.frechet_distance(mu1, q @ np.diag(s1) @ q.T, mu2, q @ np.diag(s2) @ q.T)
    assert value == pytest.approx(closed_form(mu1, s1, mu2, s2), rel=1e-8)


def test_frechet_distance_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(2).normal(size=(300, 16))
    mu, sigma = fid.statistics(x)
    assert abs(fid.frechet_distance(mu, sigma, mu, sigma)) < 1e-6
    assert abs(fid.frechet_distance_features(x, x)) < 1e-8


@pytest.mark.parametrize("n1,n2,d", [(400, 300, 8), (12, 15, 64)])  # full rank and singular covariances
def test_nuclear_norm_form_equals_the_sqrtm_form(n1, n2, d):
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(n1, d)), 1.3 * rng.normal(size=(n2, d)) + 0.2
    (mu1, s1), (mu2, s2) = fid.statistics(x), fid.statistics(y)
    assert fid.frechet_distance_features(x, y) == pytest.approx(fid.frechet_distance(mu1, s1, mu2, s2), rel=1e-6)


def test_eps_fallback_when_sqrtm_is_not_finite(monkeypatch):
    calls = []
    real_sqrtm = scipy.linalg.sqrtm

    def flaky(matrix):
        calls.append(matrix.copy())
        return np.full_like(matrix, np.nan) if len(calls) == 1 else real_sqrtm(matrix)

    monkeypatch.setattr(scipy.linalg, "sqrtm", flaky)
    s = np.diag([1.0, 2.0])
    value = fid.frechet_distance(np.zeros(2), s, np.zeros(2), s, eps=1e-6)
    assert len(calls) == 2
    np.testing.assert_allclose(calls[1], (s + 1e-6 * np.eye(2)) @ (s + 1e-6 * np.eye(2)))
    assert abs(value) < 1e-5


@pytest.fixture(scope="module")
def random_inception_file(tmp_path_factory):
    """A randomly initialised FID-Inception state dict (same keys and shapes): tests only."""
    torch.manual_seed(0)
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
    path = tmp_path_factory.mktemp("weights") / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(net.state_dict(), path)
    return path


def test_inception_from_a_local_file(random_inception_file, monkeypatch):
    trust_weights(monkeypatch, "inception", random_inception_file)
    model = fid.build_inception(random_inception_file, [64, 192])
    state = torch.load(random_inception_file, weights_only=True)
    loaded = model.blocks[0][0].conv.weight
    assert torch.equal(loaded, state["Conv2d_1a_3x3.conv.weight"])  # every weight comes from the file
    rng = np.random.default_rng(4)
    images = rng.integers(0, 256, size=(6, 32, 32), dtype=np.uint8)
    feats = fid.inception_features(model, images, [64, 192], batch_size=4, progress=False)
    assert feats[64].shape == (6, 64) and feats[192].shape == (6, 192)
    again = fid.inception_features(model, images[::-1].copy(), [64], batch_size=6, progress=False)
    np.testing.assert_allclose(again[64][::-1], feats[64], rtol=1e-4, atol=1e-5)  # batching-independent
    assert abs(fid.frechet_distance_features(feats[64], feats[64])) < 1e-6


def test_inception_rejects_other_weights(tmp_path, monkeypatch):
    path = tmp_path / "alexnet.pth"
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)
    trust_weights(monkeypatch, "inception", path)  # past the hash check: the content check refuses it
    with pytest.raises(InputError, match="not pytorch-fid Inception weights"):
        fid.build_inception(path, [64])
    with pytest.raises(InputError, match="fid_dims"):
        fid.build_inception(path, [100])


def test_resampled_frechet_equals_the_direct_computation():
    rng = np.random.default_rng(5)
    x, y = rng.normal(3.0, 1.0, size=(30, 50)), rng.normal(3.2, 1.1, size=(20, 50))
    stat = fid.ResampledFrechet(x, y)
    assert stat(np.arange(30), np.arange(20)) == pytest.approx(fid.frechet_distance_features(x, y), rel=1e-9)
    i1, i2 = rng.integers(0, 30, 30), rng.integers(0, 20, 20)  # a bootstrap draw, with repeats
    assert stat(i1, i2) == pytest.approx(fid.frechet_distance_features(x[i1], y[i2]), rel=1e-9)
