"""Probe geometry: the transducer, beam-domain grid, output image grid, imaging sector, scan conversion.

A :class:`Transducer` is the physical array the simulator images with (not the B-map probe
geometry :class:`sonodiff.diffusion.depth.Probe` of a prepared dataset).

Three geometries cover the phantoms:

* ``sector`` (cardiac, "convex" in the B-map sense): a phased array at the origin images a fan
  of half-opening ``a`` down to ``depth``. A point (x, z) (x lateral, z depth, metres) has beam
  coordinates r = sqrt(x^2 + z^2), theta = atan2(x, z); it is inside the sector when
  r <= depth and |theta| <= a. In the written image the fan apex is at the top centre
  (row 0, column (W-1)/2).
* ``convex`` (liver): a curvilinear array of radius R, its elements on an arc in pymust's frame
  (the chord through the end elements on z = 0, the centre of curvature, the fan's virtual apex,
  at (0, -h) with h = sqrt(R^2 - chord^2 / 4)). A point has beam coordinates
  a = sqrt(x^2 + (z + h)^2) - R (depth below the array surface) and theta = atan2(x, z + h); it is
  inside the sector when 0 <= a <= depth and |theta| <= a_half: a truncated fan whose top is the
  array's arc. The image rows run from the fan's highest point, R cos(a_half) - h, to its deepest,
  R + depth - h (so the apex lies above row 0 and the fan's top edge is curved).
* ``linear`` (neck, breast): a linear array on z = 0 images the rectangle |x| <= width/2, 0 <= z <= depth;
  beam coordinates are (z, x) themselves and every pixel is inside the sector.

The beam grid (:class:`BeamGrid`) of a transducer samples (r, theta) or (z, x) finely enough for
the baseband I/Q signal (axial step lambda/2 by default); scan conversion (:func:`scan_convert`)
interpolates it bilinearly at the output pixel centres, which is what a scanner does after log
compression.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import ndimage

KINDS = ("sector", "convex", "linear")


@dataclass(frozen=True)
class Transducer:
    """A transducer, its imaging geometry and the medium it images.

    Transducer fields follow pymust's ``PARAM`` (``getparam``): centre frequency ``fc`` (Hz),
    ``pitch``, ``kerf``, element ``height`` and elevation ``focus`` (m), ``n_elements``,
    pulse-echo 6-dB fractional ``bandwidth`` (%). ``attenuation`` is in dB/cm/MHz (linear
    frequency dependence, as pymust's ``PARAM.attenuation``); ``c`` is the speed of sound (m/s).
    ``radius``: the convex array's radius of curvature (m; unused by the other kinds).
    """

    name: str
    kind: str                      # "sector" | "convex" | "linear"
    fc: float
    pitch: float
    kerf: float
    n_elements: int
    bandwidth: float
    height: float
    focus: float
    depth: float                   # imaged depth (m)
    opening_deg: float = 75.0      # sector: full opening angle
    width: float = 0.0             # linear: imaged width (m); 0 = the aperture
    attenuation: float = 0.5       # dB/cm/MHz
    c: float = 1540.0
    axial_step_wavelengths: float = 0.5
    n_lateral: int = 192           # beam-grid columns (scan lines)
    radius: float = 0.0            # convex: radius of curvature (m)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"transducer kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.kind == "convex" and not self.radius > 0:
            raise ValueError(f"a convex transducer needs a radius > 0, not {self.radius!r}")
        if self.kind == "convex" and self.half_opening > self.array_half_angle + 1e-9:
            raise ValueError(f"the fan ({self.opening_deg} degrees) is wider than the convex array's arc "
                             f"({2 * math.degrees(self.array_half_angle):.1f} degrees)")

    # ------------------------------------------------------------------ derived quantities
    @property
    def wavelength(self) -> float:
        return self.c / self.fc

    @property
    def half_opening(self) -> float:
        return math.radians(self.opening_deg) / 2

    @property
    def array_half_angle(self) -> float:
        """Convex: angle of the end elements' normals from the z axis (pymust's element layout)."""
        return math.asin(self.pitch / 2 / self.radius) * (self.n_elements - 1)

    @property
    def apothem(self) -> float:
        """Convex: h, the depth of the centre of curvature above the end elements' chord (z = -h)."""
        return self.radius * math.cos(self.array_half_angle)

    @property
    def image_width(self) -> float:
        """Physical width (m) covered by the output image columns."""
        if self.kind == "sector":
            return 2 * self.depth * math.sin(self.half_opening)
        if self.kind == "convex":
            return 2 * (self.radius + self.depth) * math.sin(self.half_opening)
        return self.width or self.n_elements * self.pitch

    @property
    def image_top(self) -> float:
        """z (m) of the output image's row 0: the fan's highest point (0 for sector and linear)."""
        if self.kind == "convex":
            return self.radius * math.cos(self.half_opening) - self.apothem
        return 0.0

    @property
    def image_height(self) -> float:
        """Physical height (m) covered by the output image rows."""
        if self.kind == "convex":
            return self.radius + self.depth - self.apothem - self.image_top
        return self.depth

    def far_points(self) -> tuple[np.ndarray, np.ndarray]:
        """(x, z) of the imaged region's deepest corners and bottom centre (for the RF length)."""
        if self.kind == "linear":
            half = self.image_width / 2
            return np.array([-half, 0.0, half]), np.full(3, self.depth)
        r = self.depth + (self.radius if self.kind == "convex" else 0.0)
        th = np.array([-self.half_opening, 0.0, self.half_opening])
        z0 = -self.apothem if self.kind == "convex" else 0.0
        return r * np.sin(th), r * np.cos(th) + z0

    def pymust_param(self):
        """The pymust ``Param`` structure of this transducer (2-D simulation, no elevation focusing)."""
        import pymust

        p = pymust.utils.Param()
        p.fc = float(self.fc)
        p.pitch = float(self.pitch)
        p.kerf = float(self.kerf)
        p.width = float(self.pitch - self.kerf)
        p.Nelements = int(self.n_elements)
        p.bandwidth = float(self.bandwidth)
        p.radius = float(self.radius) if self.kind == "convex" else np.inf
        p.height = float(self.height)
        p.focus = float(self.focus)
        p.c = float(self.c)
        p.attenuation = float(self.attenuation)
        p.fs = 4 * float(self.fc)
        p.fnumber = None  # pymust picks the receive f-number from the element directivity
        return p

    def tx_delays(self, param) -> np.ndarray:
        """One transmit: a diverging wave covering the sector (phased array: pymust's circular
        wave; convex array: every element at once, which diverges from the centre of curvature),
        or a plane wave (linear)."""
        import pymust

        if self.kind == "convex":
            return np.zeros((1, self.n_elements))
        if self.kind == "sector":
            return pymust.txdelay(param, 0.0, math.radians(self.opening_deg))
        return pymust.txdelay(param, 0.0)

    # ------------------------------------------------------------------ grids
    @cached_property
    def beam_grid(self) -> "BeamGrid":
        return BeamGrid.for_transducer(self)

    def image_points(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """(x, z) in metres of the centres of a ``size`` x ``size`` output image (row 0 = probe)."""
        j = (np.arange(size) + 0.5) / size
        x = (j - 0.5) * self.image_width
        z = self.image_top + j * self.image_height
        return np.meshgrid(x, z)

    def image_spacing(self, size: int) -> tuple[float, float]:
        """Pixel spacing (column, row) in millimetres of a ``size`` x ``size`` image."""
        return self.image_width * 1e3 / size, self.image_height * 1e3 / size

    def inside(self, x: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Whether points lie in the imaging sector."""
        if self.kind == "sector":
            r = np.hypot(x, z)
            return (r <= self.depth) & (np.abs(np.arctan2(x, z)) <= self.half_opening) & (z >= 0)
        if self.kind == "convex":
            a = np.hypot(x, z + self.apothem) - self.radius
            theta = np.arctan2(x, z + self.apothem)
            return (a >= 0) & (a <= self.depth) & (np.abs(theta) <= self.half_opening)
        return (np.abs(x) <= self.image_width / 2) & (z >= 0) & (z <= self.depth)

    def sector_mask(self, size: int) -> np.ndarray:
        """Boolean (size, size) mask of the pixels inside the imaging sector."""
        return self.inside(*self.image_points(size))

    def with_(self, **changes) -> "Transducer":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class BeamGrid:
    """Beam-domain sampling: ``axial`` (r, depth below a convex array, or z; m) by ``lateral``
    (theta in rad, or x in m). ``radius`` and ``apothem``: a convex array's R and h (else 0)."""

    kind: str
    axial: np.ndarray
    lateral: np.ndarray
    radius: float = 0.0
    apothem: float = 0.0

    @staticmethod
    def for_transducer(transducer: Transducer) -> "BeamGrid":
        step = transducer.axial_step_wavelengths * transducer.wavelength
        n_ax = int(math.ceil(transducer.depth / step)) + 1
        axial = np.linspace(0.0, transducer.depth, n_ax)
        half = transducer.image_width / 2 if transducer.kind == "linear" else transducer.half_opening
        lateral = np.linspace(-half, half, transducer.n_lateral)
        if transducer.kind == "convex":
            return BeamGrid("convex", axial, lateral, transducer.radius, transducer.apothem)
        return BeamGrid(transducer.kind, axial, lateral)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.axial), len(self.lateral)

    @property
    def d_axial(self) -> float:
        return float(self.axial[1] - self.axial[0])

    @property
    def d_lateral(self) -> float:
        return float(self.lateral[1] - self.lateral[0])

    def points(self, rows: slice | None = None, cols: slice | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Cartesian (x, z) of the grid nodes (optionally a sub-block)."""
        a = self.axial if rows is None else self.axial[rows]
        lat = self.lateral if cols is None else self.lateral[cols]
        A, L = np.meshgrid(a, lat, indexing="ij")
        return self.to_cartesian(A, L)

    def to_cartesian(self, a: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cartesian (x, z) of beam coordinates (axial, lateral)."""
        if self.kind == "sector":
            return a * np.sin(lat), a * np.cos(lat)
        if self.kind == "convex":
            r = self.radius + a
            return r * np.sin(lat), r * np.cos(lat) - self.apothem
        return lat, a

    def cell_area(self) -> np.ndarray:
        """Area (m^2) each node stands for, per row: r dr dtheta (sector; r = R + a for a convex
        array) or dz dx (linear)."""
        if self.kind == "sector":
            return np.maximum(self.axial, 0.5 * self.d_axial) * self.d_axial * self.d_lateral
        if self.kind == "convex":
            return (self.radius + self.axial) * self.d_axial * self.d_lateral
        return np.full(len(self.axial), self.d_axial * self.d_lateral)

    def fractional_index(self, x: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fractional (row, column) grid indices of Cartesian points."""
        if self.kind == "sector":
            a, lat = np.hypot(x, z), np.arctan2(x, z)
        elif self.kind == "convex":
            a, lat = np.hypot(x, z + self.apothem) - self.radius, np.arctan2(x, z + self.apothem)
        else:
            a, lat = z, x
        return (a - self.axial[0]) / self.d_axial, (lat - self.lateral[0]) / self.d_lateral


def scan_convert(transducer: Transducer, beam_image: np.ndarray, size: int) -> np.ndarray:
    """Bilinear scan conversion of a beam-domain image to ``size`` x ``size`` pixels.

    Pixel (i, j) at Cartesian (x, z) takes the beam image at fractional indices
    ((r - r_0) / dr, (theta - theta_0) / dtheta) (sector; a = r - R for a convex array) or
    ((z - z_0) / dz, (x - x_0) / dx); pixels outside the imaging sector are 0.
    """
    x, z = transducer.image_points(size)
    rows, cols = transducer.beam_grid.fractional_index(x, z)
    out = ndimage.map_coordinates(beam_image, [rows, cols], order=1, mode="nearest")
    out[~transducer.inside(x, z)] = 0
    return out


#: Cardiac phased array (pymust ``P4-2v``, 2.7 MHz) imaging a 75-degree fan down to 17 cm.
CARDIAC = Transducer(
    name="P4-2v sector", kind="sector", fc=2.72e6, pitch=0.3e-3, kerf=0.05e-3, n_elements=64,
    bandwidth=74, height=14e-3, focus=60e-3, depth=0.17, opening_deg=75.0, attenuation=0.3,
    axial_step_wavelengths=1.0, n_lateral=160,
)

#: Abdominal convex array (pymust ``C5-2v``: 3.57 MHz, 128 elements, R = 49.6 mm) imaging its whole
#: 74.6-degree arc down to 15 cm below the array, in liver (0.5 dB/cm/MHz).
ABDOMEN = Transducer(
    name="C5-2v convex", kind="convex", fc=3.57e6, pitch=0.508e-3, kerf=0.048e-3, n_elements=128,
    bandwidth=79, height=13.5e-3, focus=60e-3, depth=0.15, radius=49.57e-3,
    opening_deg=2 * math.degrees(math.asin(0.508e-3 / 2 / 49.57e-3) * 127), attenuation=0.5,
    axial_step_wavelengths=1.0, n_lateral=160,
)

#: Neck linear array (128 elements, 5 MHz, 50 mm aperture) imaging a 50 mm x 40 mm rectangle.
NECK = Transducer(
    name="linear 5 MHz", kind="linear", fc=5.0e6, pitch=0.39e-3, kerf=0.05e-3, n_elements=128,
    bandwidth=75, height=5e-3, focus=20e-3, depth=0.04, width=0.05, attenuation=0.8,
    n_lateral=160,
)

#: Breast linear array (pymust ``L11-5v``: 7.6 MHz, 128 elements, 0.3 mm pitch, 38.4 mm aperture)
#: imaging a 38.4 mm x 40 mm rectangle, in breast tissue (fibroglandular, 0.75 dB/cm/MHz).
BREAST = Transducer(
    name="L11-5v linear", kind="linear", fc=7.6e6, pitch=0.3e-3, kerf=0.03e-3, n_elements=128,
    bandwidth=77, height=5e-3, focus=18e-3, depth=0.04, width=0.0384, attenuation=0.75,
    n_lateral=160,
)
