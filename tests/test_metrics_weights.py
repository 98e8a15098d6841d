"""Weights offline: a local file is used; no file + fail -> one-line error naming the file and the
place; no file + na -> a reason; fetching fails cleanly without internet. Nothing downloads."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request

import pytest
import torch

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


def test_configured_local_file_is_used(tmp_path, hub):
    local = tmp_path / "my_inception.pth"
    torch.save({"x": torch.zeros(1)}, local)
    status = w.weight_status(cfg(inception=str(local)), "inception")
    assert status.available and status.path == str(local)
    assert w.missing_reason(cfg("fail", inception=str(local), alexnet=str(local)), "fid") is None


def test_hub_cache_is_the_default_place(hub):
    hub.mkdir(parents=True)
    torch.save({"x": torch.zeros(1)}, hub / "alexnet-owt-7be5be79.pth")
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
    requested = []

    def fake(url, *args, **kwargs):
        requested.append(url)
        return io.BytesIO(b"not the real alexnet")

    monkeypatch.setattr(urllib.request, "urlopen", fake)
    with pytest.raises(InputError, match="does not start with 7be5be79"):
        w.fetch_weights(cfg("fail"))
    assert requested == [w.WEIGHTS["alexnet"].url]
    assert not (hub / "alexnet-owt-7be5be79.pth").exists()
