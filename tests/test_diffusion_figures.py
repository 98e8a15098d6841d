"""The paper's Figures 1 and 2 render to valid PNGs, written atomically."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sonodiff.diffusion import BMapDiffusion, convex_depth
from sonodiff.diffusion.figures import panel_steps, render_bmaps_figure, render_forward_figure


@pytest.fixture(scope="module")
def diffusion():
    return BMapDiffusion(50, "cosine", "linear", b_min=0.96, depth=convex_depth(32, 32, (-4.0, 16.0), 34.0, 70.0, 4.0))


def _check_png(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.size[0] > 200 and im.size[1] > 100
        assert np.asarray(im.convert("L")).std() > 5  # not blank
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_bmaps_figure(tmp_path, diffusion):
    out = render_bmaps_figure(diffusion, tmp_path / "figs" / "bmaps.png", num_panels=5)
    assert out == tmp_path / "figs" / "bmaps.png"
    _check_png(out)


def test_forward_figure(tmp_path, diffusion):
    image = np.tile(np.linspace(-1, 1, 32, dtype=np.float32)[:, None], (1, 32))
    _check_png(render_forward_figure(image, diffusion, tmp_path / "forward.png", num_panels=4))
    _check_png(render_forward_figure(image[None], diffusion.respace("ddim10"), tmp_path / "forward_ddim.png"))
    with pytest.raises(ValueError):
        render_forward_figure(np.zeros((1, 1, 32, 32)), diffusion, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_panel_steps():
    assert panel_steps(50, 5) == [0, 12, 24, 37, 49]
    assert panel_steps(3, 6) == [0, 1, 2]
