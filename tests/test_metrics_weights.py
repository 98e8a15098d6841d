"""Weights offline: a local file is used; no file + fail -> one-line error naming the file and the
place; no file + na -> a reason; fetching fails cleanly without internet; a file with the right
name and the wrong content is refused wherever it is looked at or read. Nothing downloads.

The real weights are not here: a test that needs a file accepted makes it the expected one
(:func:`trust`), which is how the checks on content are reached."""

from __future__ import annotations

import hashlib
import io
import json
import os
import urllib.error
import urllib.request

import pytest
import torch

from conftest import trust_weights as trust
from sonodiff.errors import InputError
from sonodiff.metrics import weights as w


@pytest.fixture
def hub(tmp_path):
    """An empty torch hub cache."""
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield tmp_path / "hub" / "checkpoints"
    torch.hub.set_dir(old)


def cfg(mode="na", inception=None, alexnet=None):
    return {"weights": {"inception": inception, "alexnet": alexnet}, "missing_weights": mode}


@pytest.fixture
def no_network(monkeypatch):
    def refuse(url, *args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def test_configured_local_file_is_used(tmp_path, hub, monkeypatch):
    local = tmp_path / "my_inception.pth"
    torch.save({"x": torch.zeros(1)}, local)
    trust(monkeypatch, "inception", local)
    status = w.weight_status(cfg(inception=str(local)), "inception")
    assert status.available and status.path == str(local)
    assert w.missing_reason(cfg("fail", inception=str(local), alexnet=str(local)), "fid") is None


def test_hub_cache_is_the_default_place(hub, monkeypatch):
    hub.mkdir(parents=True)
    torch.save({"x": torch.zeros(1)}, hub / "alexnet-owt-7be5be79.pth")
    trust(monkeypatch, "alexnet", hub / "alexnet-owt-7be5be79.pth")
    assert w.weight_status(cfg(), "alexnet").available
    assert w.missing_reason(cfg("fail"), "lpips") is None  # lpips' linear layers ship with the package
    assert w.weight_status(cfg(), "lpips_linear").available


def test_missing_file_with_fail_names_file_and_place(hub):
    with pytest.raises(InputError) as err:
        w.missing_reason(cfg("fail"), "fid")
    message = str(err.value)
    assert "pt_inception-2015-12-05-6726825d.pth" in message and str(hub) in message
    assert "metrics.weights.inception" in message and "\n" not in message


def test_fail_names_every_missing_file_at_once(hub):
    with pytest.raises(InputError) as err:
        w.missing_reasons(cfg("fail"))
    assert "pt_inception-2015-12-05-6726825d.pth" in str(err.value) and "alexnet-owt-7be5be79.pth" in str(err.value)


def test_missing_configured_file_with_fail_names_the_config_key(tmp_path, hub):
    with pytest.raises(InputError, match="alexnet-owt-7be5be79.pth.*metrics.weights.alexnet"):
        w.missing_reason(cfg("fail", alexnet=str(tmp_path / "nope.pth")), "lpips")


def test_missing_file_with_na_gives_the_reason(hub):
    reason = w.missing_reason(cfg("na"), "fid")
    assert "pt_inception-2015-12-05-6726825d.pth" in reason and "fetch_weights" in reason


def test_fetch_without_internet_fails_clearly(hub, no_network):
    with pytest.raises(InputError) as err:
        w.fetch_weights(cfg("fail"))
    message = str(err.value)
    assert "cannot fetch pretrained weights" in message and "Name or service not known" in message
    assert "pt_inception-2015-12-05-6726825d.pth" in message and "alexnet-owt-7be5be79.pth" in message
    assert str(hub) in message and "\n" not in message


def test_fetch_without_internet_with_na_reports_what_is_missing(hub, no_network):
    status = w.fetch_weights(cfg("na"))
    json.dumps(status)  # a status file
    assert not status["inception"]["available"] and not status["alexnet"]["available"]
    assert "download_error" in status["inception"]
    assert status["lpips_linear"]["available"]
    assert not hub.exists() or not any(hub.iterdir())  # no partial download left behind


def test_fetch_skips_present_files_and_checks_the_hash(hub, monkeypatch):
    hub.mkdir(parents=True)
    torch.save({"x": torch.zeros(1)}, hub / "pt_inception-2015-12-05-6726825d.pth")
    trust(monkeypatch, "inception", hub / "pt_inception-2015-12-05-6726825d.pth")
    requested = []

    def fake(url, *args, **kwargs):
        requested.append(url)
        return io.BytesIO(b"not the real alexnet")

    monkeypatch.setattr(urllib.request, "urlopen", fake)
    with pytest.raises(InputError, match="does not start with 7be5be79"):
        w.fetch_weights(cfg("fail"))
    assert requested == [w.WEIGHTS["alexnet"].url]
    assert not (hub / "alexnet-owt-7be5be79.pth").exists()


# ------------------------------------------------------------------------------- content checks

def _wrong_inception(hub):
    """A readable state dict under the Inception's name, with another content."""
    hub.mkdir(parents=True)
    path = hub / "pt_inception-2015-12-05-6726825d.pth"
    torch.save({"x": torch.zeros(1)}, path)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def _assert_wrong_hash(err, path, expected, found):
    message = str(err.value)
    assert message.startswith(f"{path}: wrong weights") and "\n" not in message
    assert f"starts with {found[:len(expected)]}, expected {expected}" in message


@pytest.mark.parametrize("mode", ["fail", "na"])
def test_right_name_wrong_content_is_refused_whatever_missing_weights_says(hub, mode):
    path, found = _wrong_inception(hub)
    for look in (lambda: w.weight_status(cfg(mode), "inception"), lambda: w.missing_reason(cfg(mode), "fid"),
                 lambda: w.load_state_dict(path, "inception")):
        with pytest.raises(InputError) as err:
            look()
        _assert_wrong_hash(err, path, "6726825d", found)
        assert "fetch_weights" in str(err.value) and "metrics.weights.inception" in str(err.value)


def test_configured_file_with_wrong_content_is_refused(tmp_path, hub):
    local = tmp_path / "alexnet_copy.pth"
    local.write_bytes(b"truncated download")
    with pytest.raises(InputError) as err:
        w.missing_reason(cfg("na", alexnet=str(local)), "lpips")
    _assert_wrong_hash(err, local, "7be5be79", hashlib.sha256(b"truncated download").hexdigest())


def test_fid_and_lpips_refuse_wrong_weights_before_building(hub, tmp_path):
    from sonodiff.metrics import fid, paired

    path, found = _wrong_inception(hub)
    with pytest.raises(InputError) as err:
        fid.build_inception(path, [64])
    _assert_wrong_hash(err, path, "6726825d", found)
    with pytest.raises(InputError) as err:
        paired.build_lpips(path, w.lpips_linear_path())
    _assert_wrong_hash(err, path, "7be5be79", found)
    linear = tmp_path / "alex.pth"
    torch.save({"x": torch.zeros(1)}, linear)
    with pytest.raises(InputError, match="wrong weights for LPIPS.*reinstall lpips==0.1.4"):
        w.load_state_dict(linear, "lpips_linear")


def test_fetch_refuses_a_wrong_file_in_place_of_downloading_over_it(hub, no_network):
    path, found = _wrong_inception(hub)
    with pytest.raises(InputError) as err:
        w.fetch_weights(cfg("na"))
    _assert_wrong_hash(err, path, "6726825d", found)
    assert path.read_bytes()                             # left for the user to inspect


def test_the_lpips_package_file_has_the_pinned_hash():
    w.verify_weights(w.lpips_linear_path(), "lpips_linear")
    assert w.weight_status(cfg(), "lpips_linear").available


def test_hash_is_computed_once_per_file_version(tmp_path, monkeypatch):
    path = tmp_path / "weights.pth"
    path.write_bytes(b"one")
    calls = []
    real = hashlib.sha256
    monkeypatch.setattr(w.hashlib, "sha256", lambda *a: calls.append(1) or real(*a))
    assert w.file_sha256(path) == w.file_sha256(path) == real(b"one").hexdigest()
    assert len(calls) == 1
    path.write_bytes(b"two")                             # same size: the mtime (or inode) tells
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert w.file_sha256(path) == real(b"two").hexdigest() and len(calls) == 2
