"""Models: shapes, the null map, label dropout, spec round trip, config errors."""

from __future__ import annotations

import pytest
import torch

from sonodiff.errors import InputError
from sonodiff.models import build_model, drop_condition, model_spec, null_condition, one_hot_labels
from tiny_data import tiny_config


@pytest.mark.parametrize("learn_sigma,out_c", [(True, 2), (False, 1)])
@pytest.mark.parametrize("num_classes", [3, None])
@pytest.mark.parametrize("size", [16, 32])
def test_output_shapes(learn_sigma, out_c, num_classes, size):
    cfg = tiny_config(diffusion={"learn_sigma": learn_sigma})
    spec = model_spec(cfg, num_classes)
    model = build_model(spec)
    assert spec["kind"] == ("semantic" if num_classes else "unconditional")
    assert model.conditional == bool(num_classes)
    x = torch.randn(2, 1, size, size)
    labels = torch.randint(0, 3, (2, size, size))
    cond = model.condition(labels)
    assert (cond is None) == (num_classes is None)
    if cond is not None:
        assert cond.shape == (2, num_classes + 1, size, size)
    out = model(x, torch.tensor([0, 9]), cond)
    assert out.shape == (2, out_c, size, size)
    assert torch.isfinite(out).all()


def test_one_hot_and_null_map_are_distinct():
    labels = torch.tensor([[[0, 1], [2, 2]]])
    y = one_hot_labels(labels, 3)
    assert y.shape == (1, 4, 2, 2)
    assert torch.equal(y[0, :3].argmax(0), labels[0])
    assert torch.equal(y[0, :3].sum(0), torch.ones(2, 2))     # exactly one class per pixel
    assert torch.equal(y[0, 3], torch.zeros(2, 2))             # real map: indicator 0
    null = null_condition(y)
    assert torch.equal(null[0, :3], torch.zeros(3, 2, 2)) and torch.equal(null[0, 3], torch.ones(2, 2))
    with pytest.raises(ValueError):
        one_hot_labels(torch.tensor([[[3]]]), 3)


def test_label_dropout_replaces_only_dropped_maps():
    y = one_hot_labels(torch.randint(0, 3, (4, 5, 5)), 3)
    out = drop_condition(y, torch.tensor([True, False, True, False]))
    assert torch.equal(out[1], y[1]) and torch.equal(out[3], y[3])
    assert torch.equal(out[0], null_condition(y)[0]) and torch.equal(out[2], null_condition(y)[2])


def test_null_map_changes_the_output():
    torch.manual_seed(0)
    model = build_model(model_spec(tiny_config(), 3)).eval()
    # MONAI zero-initialises the output and residual convolutions: perturb so every path is active.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x, t = torch.randn(1, 1, 16, 16), torch.tensor([3])
    y = one_hot_labels(torch.randint(0, 3, (1, 16, 16)), 3)
    with torch.no_grad():
        assert not torch.allclose(model(x, t, y), model(x, t, model.null(y)))
        assert not torch.allclose(model(x, t, model.null(y)), model(x, t, torch.zeros_like(y)))


def test_bad_model_config_names_the_key():
    cfg = tiny_config(model={"channels": [8, 12], "norm_num_groups": 8})
    with pytest.raises(InputError, match="model.norm_num_groups"):
        model_spec(cfg, 3)
    cfg = tiny_config(model={"attention_levels": [False]})
    with pytest.raises(InputError, match="model.attention_levels"):
        model_spec(cfg, 3)
