"""B-mode simulation with pymust: a SIMUS mode and a fast convolution mode.

Both modes turn a tissue description, ``echo(x, z)`` = backscatter power (linear, 1 = myocardium
or thyroid) at Cartesian points in metres, into a complex baseband (I/Q) beam-domain image
on the transducer's :class:`~sonodiff.phantom.probe.BeamGrid`, then into an 8-bit B-mode image by the
same chain (:func:`to_bmode`): electronic noise, envelope, log compression, scan conversion.

``simus`` (:class:`SimusModel`)
    Scatterers are drawn uniformly over the imaged region with density ``rho`` per wavelength^2 and
    reflection coefficients RC ~ N(0, echo(x, z)). pymust's SIMUS computes the RF signals of one
    transmit (diverging wave for the sector, plane wave for the linear probe) with frequency-dependent
    attenuation exp(-alpha f d) (``PARAM.attenuation``, dB/cm/MHz); ``rf2iq`` demodulates them and a
    delay-and-sum matrix (``dasmtx``, built once) beamforms them onto the beam grid.

``fast`` (:class:`FastModel`, the convolution model of Gao et al., IEEE TUFFC 56(12), 2009)
    The beamformed I/Q image is the tissue scattering map convolved with the system's point-spread
    function, made depth-dependent by interpolating K PSFs:

        IQ(r, l) = g(r) * sum_k w_k(r) * (h_k (*) s)(r, l),
        s(r, l) ~ CN(0, echo(r, l) * dA(r)),

    where h_k is the unit-energy PSF that pymust (SIMUS + rf2iq + dasmtx, same transducer and attenuation)
    gives for one scatterer at depth r_k, w_k(r) are linear-interpolation (hat) weights between the
    depths r_k, g(r) interpolates log ||PSF_k|| (diffraction, spreading and attenuation losses), and
    dA(r) is the area a grid node stands for (r dr dtheta for the sector). The scattering map s is
    complex circular Gaussian: the sum of many sub-resolution scatterers with random phases, which
    gives fully developed (Rayleigh) speckle.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy import fft as sfft
from scipy import ndimage, signal

from sonodiff.phantom.probe import Transducer, scan_convert

log = logging.getLogger(__name__)

#: pymust SIMUS: spectral components below this level (dB) are skipped; scatterers per call.
DB_THRESH = -100.0
SIMUS_CHUNK = 2000


@dataclass(frozen=True)
class Physics:
    """Display and noise settings shared by both modes.

    ``dynamic_range_db``: log compression window, B = 20 log10(|IQ| / ref) + gain mapped from
    [-DR, 0] to [0, 255]; ``ref`` is the ``ref_percentile`` of the signal envelope (the scanner's
    automatic gain) and ``gain_db`` an offset on it. ``noise_db``: electronic noise, complex Gaussian with rms
    ref * 10^(noise_db / 20), constant over depth (so deep tissue sinks into the noise floor).
    ``tgc_db_per_cm``: time-gain compensation, a gain of tgc * depth_cm dB (0 = none, the default).
    ``scatterers_per_wavelength2``: SIMUS scatterer density. ``psf_depths``: K in the fast model.
    """

    dynamic_range_db: float = 60.0
    gain_db: float = -6.0
    noise_db: float = -50.0
    ref_percentile: float = 99.0
    tgc_db_per_cm: float = 0.0
    scatterers_per_wavelength2: float = 1.0
    psf_depths: int = 6


def _simus_iq(transducer: Transducer, param, delays: np.ndarray, x: np.ndarray, z: np.ndarray,
              rc: np.ndarray, n_samples: int) -> np.ndarray:
    """RF of one transmit by pymust SIMUS, demodulated to I/Q (n_samples x n_elements).

    SIMUS is linear in the scatterers, so they are simulated in chunks of ``SIMUS_CHUNK`` (the
    exponential arrays then stay in cache) and the RF signals summed. Each chunk carries a silent
    scatterer (RC = 0) at the farthest corner of the image (of the fan, convex array) so that every
    chunk gets the same frequency sampling and RF length.
    """
    import pymust

    opts = pymust.utils.Options()
    opts.ParPool = False
    opts.WaitBar = False
    opts.dBThresh = DB_THRESH
    opts.ElementSplitting = 1
    if transducer.kind == "convex":
        far_x, far_z = (float(v[-1]) for v in transducer.far_points())
    else:
        far_x, far_z = transducer.image_width / 2, transducer.depth
    rf = np.zeros((n_samples, transducer.n_elements))
    for start in range(0, max(len(x), 1), SIMUS_CHUNK):
        sl = slice(start, start + SIMUS_CHUNK)
        cx = np.append(x[sl], far_x).reshape(1, -1)
        cz = np.append(z[sl], far_z).reshape(1, -1)
        crc = np.append(rc[sl], 0.0).reshape(1, -1)
        part, _ = pymust.simus(cx, cz, crc, delays, param, opts)
        n = min(n_samples, part.shape[0])
        rf[:n] += part[:n]
    return pymust.rf2iq(rf, param)


def _das_matrix(transducer: Transducer, param, delays: np.ndarray, n_samples: int, x: np.ndarray,
                z: np.ndarray):
    """pymust delay-and-sum matrix mapping I/Q channel data (n_samples x N, column-major) to points."""
    import pymust

    return pymust.dasmtx(1j * np.array([n_samples, transducer.n_elements]), x, z, delays, param)


def _n_samples(transducer: Transducer, param, delays: np.ndarray) -> int:
    """RF length (samples) covering the round trip to the farthest imaged point plus the pulse."""
    if transducer.kind == "convex":
        ex, ez, _, _ = param.getElementPositions()
        fx, fz = transducer.far_points()
        far = float(np.max(np.hypot(fx[:, None] - ex.ravel(), fz[:, None] - ez.ravel())))
    else:
        aperture = transducer.n_elements * transducer.pitch
        far = math.hypot(transducer.depth, transducer.image_width / 2 + aperture / 2)
    pulse = 4 / (transducer.fc * transducer.bandwidth / 100)
    t = 2 * far / transducer.c + float(np.nanmax(delays)) + pulse
    return int(math.ceil(t * param.fs))


class SimusModel:
    """Full pymust simulation: random scatterers -> SIMUS RF -> rf2iq -> DAS on the beam grid."""

    def __init__(self, transducer: Transducer, physics: Physics = Physics()):
        self.transducer, self.physics = transducer, physics
        self.param = transducer.pymust_param()
        self.delays = transducer.tx_delays(self.param)
        self.n_samples = _n_samples(transducer, self.param, self.delays)
        grid = transducer.beam_grid
        gx, gz = grid.points()
        self.das = _das_matrix(transducer, self.param, self.delays, self.n_samples, gx, gz)
        area = _region_area(transducer)
        self.n_scatterers = int(round(physics.scatterers_per_wavelength2 * area / transducer.wavelength ** 2))

    def scatterers(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Uniform positions over the imaged region (uniform in area for the sector and convex fans)."""
        n, p = self.n_scatterers, self.transducer
        if p.kind == "sector":
            r0 = 2 * p.wavelength
            r = np.sqrt(rng.uniform(r0 ** 2, p.depth ** 2, n))
            th = rng.uniform(-p.half_opening, p.half_opening, n)
            return r * np.sin(th), r * np.cos(th)
        if p.kind == "convex":
            r0 = p.radius + p.wavelength
            r = np.sqrt(rng.uniform(r0 ** 2, (p.radius + p.depth) ** 2, n))
            th = rng.uniform(-p.half_opening, p.half_opening, n)
            return r * np.sin(th), r * np.cos(th) - p.apothem
        x = rng.uniform(-p.image_width / 2, p.image_width / 2, n)
        z = rng.uniform(p.wavelength, p.depth, n)
        return x, z

    def iq(self, echo, rng: np.random.Generator) -> np.ndarray:
        """Beamformed I/Q on the beam grid for backscatter power ``echo(x, z)``."""
        x, z = self.scatterers(rng)
        rc = rng.standard_normal(x.shape) * np.sqrt(echo(x, z))
        iq = _simus_iq(self.transducer, self.param, self.delays, x, z, rc, self.n_samples)
        bf = self.das @ iq.reshape(-1, order="F")
        return np.asarray(bf).reshape(self.transducer.beam_grid.shape, order="F")


def _region_area(transducer: Transducer) -> float:
    if transducer.kind == "sector":
        return transducer.half_opening * transducer.depth ** 2
    if transducer.kind == "convex":
        return transducer.half_opening * ((transducer.radius + transducer.depth) ** 2 - transducer.radius ** 2)
    return transducer.image_width * transducer.depth


@functools.lru_cache(maxsize=8)
def psf_bank(transducer: Transducer, n_depths: int, half_rows: int, half_cols: int,
             ) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """PSFs at ``n_depths`` depths: (node rows, unit-energy I/Q kernels, kernel norms).

    Each kernel is pymust's answer for one scatterer (RC = 1) on the beam axis at the node depth:
    SIMUS RF -> rf2iq -> DAS on the beam-grid nodes of a (2 half_rows + 1) x (2 half_cols + 1)
    patch around it, tapered by a Tukey window; the norm ||PSF_k|| carries diffraction,
    spreading and attenuation losses. Cached per (transducer, sizes): a transducer is immutable.
    """
    grid = transducer.beam_grid
    depths = np.linspace(0.1 * transducer.depth, 0.95 * transducer.depth, n_depths)
    node_rows = np.unique(np.round(depths / grid.d_axial).astype(int))
    param = transducer.pymust_param()
    delays = transducer.tx_delays(param)
    n_samples = _n_samples(transducer, param, delays)
    hr, hc = half_rows, half_cols
    c0 = len(grid.lateral) // 2
    taper = np.outer(signal.windows.tukey(2 * hr + 1, 0.5), signal.windows.tukey(2 * hc + 1, 0.5))
    kernels, gains = [], []
    for row in node_rows:
        x0, z0 = grid.to_cartesian(grid.axial[row], grid.lateral[c0])
        iq = _simus_iq(transducer, param, delays, np.array([x0]), np.array([z0]), np.array([1.0]), n_samples)
        rows = np.arange(row - hr, row + hr + 1)
        cols = np.arange(c0 - hc, c0 + hc + 1)
        ax = grid.axial[0] + rows * grid.d_axial
        lat = grid.lateral[0] + cols * grid.d_lateral
        px, pz = grid.to_cartesian(*np.meshgrid(ax, lat, indexing="ij"))
        das = _das_matrix(transducer, param, delays, n_samples, px, pz)
        h = np.asarray(das @ iq.reshape(-1, order="F")).reshape(px.shape, order="F") * taper
        norm = float(np.sqrt(np.sum(np.abs(h) ** 2)))
        kernel = h / norm
        kernel.flags.writeable = False
        kernels.append(kernel)
        gains.append(norm)
    gains = np.array(gains)
    node_rows.flags.writeable = gains.flags.writeable = False
    return node_rows, kernels, gains


class FastModel:
    """Convolution model (Gao et al. 2009) with depth-dependent PSFs computed by pymust."""

    def __init__(self, transducer: Transducer, physics: Physics = Physics(), half_rows: int | None = None,
                 half_cols: int | None = None):
        self.transducer, self.physics = transducer, physics
        grid = transducer.beam_grid
        n_ax, n_lat = grid.shape
        # PSF support: +-3 wavelengths axially, +-12% of the lateral span (main lobe + first side lobes).
        self.half_rows = half_rows or int(math.ceil(3 * transducer.wavelength / grid.d_axial))
        self.half_cols = half_cols or max(4, int(round(0.12 * n_lat)))
        self.node_rows, self.kernels, self.gains = psf_bank(transducer, physics.psf_depths, self.half_rows,
                                                            self.half_cols)
        self.fft_shape = (sfft.next_fast_len(n_ax + 2 * self.half_rows),
                          sfft.next_fast_len(n_lat + 2 * self.half_cols))
        self.kernel_ffts = np.stack([sfft.fft2(h, self.fft_shape, workers=1) for h in self.kernels])
        rows = np.arange(n_ax)
        self.weights = _hat_weights(rows, self.node_rows)             # (K, n_ax)
        log_gain = np.interp(rows, self.node_rows, np.log(self.gains))
        self.row_gain = np.exp(log_gain) * np.sqrt(grid.cell_area())   # (n_ax,)

    def iq(self, echo_grid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Beamformed I/Q on the beam grid for backscatter power ``echo_grid`` (beam-grid shaped)."""
        n_ax, n_lat = echo_grid.shape
        amp = np.sqrt(echo_grid)
        s = (rng.standard_normal(echo_grid.shape) + 1j * rng.standard_normal(echo_grid.shape)) * (amp / math.sqrt(2))
        S = sfft.fft2(s, self.fft_shape, workers=1)
        out = np.zeros((n_ax, n_lat), dtype=np.complex128)
        hr, hc = self.half_rows, self.half_cols
        for k, H in enumerate(self.kernel_ffts):
            w = self.weights[k]
            nz = np.nonzero(w)[0]
            conv = sfft.ifft2(S * H, workers=1)[hr:hr + n_ax, hc:hc + n_lat]
            out[nz] += w[nz, None] * conv[nz]
        return out * self.row_gain[:, None]


def _hat_weights(rows: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """Linear-interpolation weights w_k(row) (sum to 1; constant beyond the first/last node)."""
    w = np.zeros((len(nodes), len(rows)))
    for k in range(len(nodes)):
        e = np.zeros(len(nodes))
        e[k] = 1.0
        w[k] = np.interp(rows, nodes, e)
    return w


def to_bmode(iq: np.ndarray, transducer: Transducer, size: int, physics: Physics,
             rng: np.random.Generator, extra_noise_db: float = 0.0) -> np.ndarray:
    """8-bit B-mode image (size x size, 0 outside the sector) from beam-domain I/Q.

    1. reference level ref = percentile_p |IQ| inside the sector (overall gain);
    2. add electronic noise n ~ CN(0, (ref 10^(noise_db/20))^2);
    3. optional TGC: multiply by 10^(tgc * depth_cm / 20);
    4. envelope |IQ + n| and log compression B = 20 log10(env / ref) + gain, mapped [-DR, 0] -> [0, 255];
    5. bilinear scan conversion to the output pixels, rounded to uint8.
    """
    env_signal = np.abs(iq)
    ref = float(np.percentile(env_signal, physics.ref_percentile))
    if not ref > 0:
        ref = 1.0
    sigma = ref * 10 ** ((physics.noise_db + extra_noise_db) / 20) / math.sqrt(2)
    noisy = iq + sigma * (rng.standard_normal(iq.shape) + 1j * rng.standard_normal(iq.shape))
    if physics.tgc_db_per_cm:
        depth_cm = transducer.beam_grid.axial * 100
        noisy = noisy * (10 ** (physics.tgc_db_per_cm * depth_cm / 20))[:, None]
    db = 20 * np.log10(np.abs(noisy) / ref + 1e-12) + physics.gain_db
    grey = np.clip((db + physics.dynamic_range_db) / physics.dynamic_range_db, 0.0, 1.0) * 255.0
    out = scan_convert(transducer, grey, size)
    return np.round(out).astype(np.uint8)


class Simulator:
    """One transducer, one mode, one output size: ``image(scene, rng)`` -> uint8 B-mode image.

    ``scene`` has ``echo(x, z, texture_db=None)`` (backscatter power) and ``texture`` (smooth dB
    field or None), as :class:`~sonodiff.phantom.tissue.Scene`.
    """

    #: The fast mode evaluates the (smooth) texture every TEXTURE_STEP grid nodes and interpolates.
    TEXTURE_STEP = 4

    def __init__(self, transducer: Transducer, mode: str, size: int, physics: Physics = Physics()):
        if mode not in ("fast", "simus"):
            raise ValueError(f"mode must be fast or simus, not {mode!r}")
        self.transducer, self.mode, self.size, self.physics = transducer, mode, size, physics
        self.model = FastModel(transducer, physics) if mode == "fast" else SimusModel(transducer, physics)
        grid = transducer.beam_grid
        self._grid_xz = grid.points()
        step = self.TEXTURE_STEP
        rows = np.unique(np.r_[np.arange(0, grid.shape[0], step), grid.shape[0] - 1])
        cols = np.unique(np.r_[np.arange(0, grid.shape[1], step), grid.shape[1] - 1])
        self._coarse_xz = (self._grid_xz[0][np.ix_(rows, cols)], self._grid_xz[1][np.ix_(rows, cols)])
        # fractional coarse indices of every grid node, for bilinear interpolation
        fr = np.interp(np.arange(grid.shape[0]), rows, np.arange(len(rows)))
        fc = np.interp(np.arange(grid.shape[1]), cols, np.arange(len(cols)))
        self._coarse_index = np.meshgrid(fr, fc, indexing="ij")

    def echo_on_grid(self, scene) -> np.ndarray:
        """Backscatter power at the beam-grid nodes (texture interpolated from a coarse grid)."""
        texture = None
        if getattr(scene, "texture", None) is not None:
            coarse = scene.texture(*self._coarse_xz)
            texture = ndimage.map_coordinates(coarse, self._coarse_index, order=1, mode="nearest")
        return scene.echo(*self._grid_xz, texture_db=texture)

    def iq(self, scene, rng: np.random.Generator) -> np.ndarray:
        if self.mode == "fast":
            return self.model.iq(self.echo_on_grid(scene), rng)
        return self.model.iq(scene.echo, rng)

    def image(self, scene, rng: np.random.Generator, extra_noise_db: float = 0.0) -> np.ndarray:
        """B-mode image of ``scene`` (uint8, size x size, 0 outside the sector)."""
        return to_bmode(self.iq(scene, rng), self.transducer, self.size, self.physics, rng, extra_noise_db)
