"""Tissue scenes: which tissue is where, its label and its backscatter (echogenicity).

A phantom's anatomy is a function ``tissue(x, z) -> int array`` of tissue-class indices at Cartesian
points (metres; x lateral, z depth). A :class:`Scene` pairs it with a table of
:class:`Tissue` entries (label value written to the ground truth, echogenicity in dB relative to
myocardium/thyroid) and a smooth random texture (slow echogenicity variations, in dB), and gives

* ``labels(x, z)``: label values (ground truth),
* ``echo(x, z)``: backscatter power 10^((echo_db[tissue] + texture_db(x, z)) / 10), the variance of
  the scatterers' reflection coefficients used by both simulation modes.

An :class:`AttenuatedScene` also gives each tissue its own attenuation coefficient and darkens (or
brightens) the echoes of the points behind a tissue that attenuates more (or less) than the medium
the transducer assumes: acoustic shadowing and posterior enhancement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import ndimage

from sonodiff.phantom.probe import BeamGrid, Transducer


@dataclass(frozen=True)
class Tissue:
    name: str
    label: int
    echo_db: float        # backscatter power relative to the reference tissue (dB)
    texture: bool = True  # whether the slow random texture modulates it
    attenuation: float | None = None  # dB/cm/MHz (AttenuatedScene); None: the transducer's


class SmoothField:
    """A smooth random field t(x, z) = sqrt(2/J) * std * sum_j cos(k_j . p + phi_j) (in dB).

    J plane waves with random directions, wavelengths uniform in [lo, hi] (m) and phases: a
    stationary Gaussian-like field with standard deviation ``std``, cheap to evaluate anywhere.
    """

    def __init__(self, rng: np.random.Generator, std: float, wavelengths: tuple[float, float],
                 n_waves: int = 12, dims: int = 2):
        direction = rng.standard_normal((n_waves, dims))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        lam = rng.uniform(*wavelengths, n_waves)
        self.k = direction * (2 * math.pi / lam)[:, None]
        self.phase = rng.uniform(0, 2 * math.pi, n_waves)
        self.amp = std * math.sqrt(2.0 / n_waves)

    def __call__(self, *coords: np.ndarray) -> np.ndarray:
        coords = np.broadcast_arrays(*coords)
        out = np.zeros(coords[0].shape)
        for kj, ph in zip(self.k, self.phase):
            arg = ph + sum(kj[d] * coords[d] for d in range(len(coords)))
            out += np.cos(arg)
        return self.amp * out


class Scene:
    """Tissue map + tissue table + texture: labels and echogenicity at any point."""

    def __init__(self, tissue: Callable[[np.ndarray, np.ndarray], np.ndarray], table: list[Tissue],
                 texture: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None):
        self.tissue = tissue
        self.table = table
        self.texture = texture
        self._label = np.array([t.label for t in table], dtype=np.uint8)
        self._echo_db = np.array([t.echo_db for t in table], dtype=np.float64)
        self._textured = np.array([t.texture for t in table], dtype=bool)

    def labels(self, x: np.ndarray, z: np.ndarray) -> np.ndarray:
        return self._label[self.tissue(x, z)]

    def echo(self, x: np.ndarray, z: np.ndarray, texture_db: np.ndarray | None = None) -> np.ndarray:
        """Backscatter power at the points: 10^((echo_db + texture_db) / 10).

        ``texture_db``: the texture at the points if the caller has it already (for example
        interpolated from a coarse grid, as the texture is smooth); else it is evaluated here.
        """
        t = self.tissue(x, z)
        db = self._echo_db[t]
        if self.texture is not None:
            tex = self.texture(x, z) if texture_db is None else texture_db
            db = db + np.where(self._textured[t], tex, 0.0)
        return 10.0 ** (db / 10.0)


class AttenuatedScene(Scene):
    """A scene whose tissues attenuate sound differently: shadowing and enhancement behind them.

    Both simulation modes already apply the transducer's attenuation alpha_0 (dB/cm/MHz, linear in
    frequency) everywhere: pymust's ``PARAM.attenuation`` in SIMUS, the PSF gains of the fast
    model. A tissue of attenuation alpha != alpha_0 (:attr:`Tissue.attenuation`) on the way to a
    scatterer at beam coordinates (a, l) and back changes its echo by the excess round-trip loss

        L(a, l) = 2 f_c * integral_0^a (alpha(a', l) - alpha_0) da'   (dB; f_c in MHz, a' in cm),

    along its beam line (straight down, x = const, for the linear array's plane wave; the ray from
    the apex or the centre of curvature for the sector and convex arrays), so the backscatter power
    becomes echo * 10^(-L / 10) (the amplitude falls by L dB too: 20 log10 of its square root).
    Behind a lesion that attenuates less than the tissue (a fluid cyst) L < 0: the column under it
    is brighter than beside it (posterior acoustic enhancement); behind one that attenuates more
    (a fibrous carcinoma) L > 0: an acoustic shadow.

    L is integrated once per scene on a beam grid (axial step ``step`` m, the transducer's
    ``n_lateral`` lines), alpha taken at the middle of each step (midpoint rule, L = 0 at a = 0),
    and interpolated bilinearly at the points asked for.
    """

    def __init__(self, tissue: Callable[[np.ndarray, np.ndarray], np.ndarray], table: list[Tissue],
                 texture: Callable[[np.ndarray, np.ndarray], np.ndarray] | None, transducer: Transducer,
                 step: float = 2e-4):
        super().__init__(tissue, table, texture)
        self.transducer, self.step = transducer, step
        ref = transducer.attenuation
        self._excess = np.array([(ref if t.attenuation is None else t.attenuation) - ref for t in table])
        self._grid = None
        self._loss = None

    def _loss_grid(self):
        """(grid, L on its nodes in dB), computed on first use."""
        if self._loss is None:
            t = self.transducer
            beams = t.beam_grid
            n_ax = int(math.ceil(t.depth / self.step)) + 1
            grid = BeamGrid(beams.kind, np.linspace(0.0, t.depth, n_ax), beams.lateral, beams.radius, beams.apothem)
            mid = 0.5 * (grid.axial[1:] + grid.axial[:-1])
            A, Lat = np.meshgrid(mid, grid.lateral, indexing="ij")
            excess = self._excess[self.tissue(*grid.to_cartesian(A, Lat))]
            loss = 2.0 * (t.fc / 1e6) * np.cumsum(excess, axis=0) * (grid.d_axial * 100.0)
            self._grid = grid
            self._loss = np.vstack([np.zeros((1, len(grid.lateral))), loss])
        return self._grid, self._loss

    def loss_db(self, x: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Excess round-trip attenuation L (dB) of echoes from points (x, z) (class docstring)."""
        grid, loss = self._loss_grid()
        rows, cols = grid.fractional_index(np.asarray(x, float), np.asarray(z, float))
        return ndimage.map_coordinates(loss, [rows, cols], order=1, mode="nearest")

    def echo(self, x: np.ndarray, z: np.ndarray, texture_db: np.ndarray | None = None) -> np.ndarray:
        """Backscatter power 10^((echo_db + texture_db - L) / 10) (L: :meth:`loss_db`)."""
        return super().echo(x, z, texture_db) * 10.0 ** (-self.loss_db(x, z) / 10.0)


def index_of(table: list[Tissue]) -> dict[str, int]:
    return {t.name: i for i, t in enumerate(table)}


def ellipse(x: np.ndarray, z: np.ndarray, cx: float, cz: float, a: float, b: float,
            angle: float = 0.0) -> np.ndarray:
    """Points inside the ellipse centred (cx, cz) with semi-axes a (lateral) and b (depth), rotated
    by ``angle`` (rad): ((u / a)^2 + (v / b)^2 <= 1 in the rotated frame)."""
    c, s = math.cos(angle), math.sin(angle)
    dx, dz = x - cx, z - cz
    u = c * dx + s * dz
    v = -s * dx + c * dz
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0
