"""Transverse neck anatomy for SegThy-like volumes: thyroid, carotid arteries, jugular veins, trachea.

Coordinates in metres: x lateral (image left = the patient's right, as in a transverse scan), z depth
from the probe, y elevation (cranio-caudal, the slicing direction of the written volume). Each
slice y is a 2-D scene imaged by the linear probe. Structures (ellipses in every slice):

* skin (bright line), subcutaneous fat, strap muscles and sternocleidomastoid muscles (hypoechoic),
* trachea (air, label 0): a bright anterior wall and a black acoustic shadow below it,
* thyroid (label 1): two lobes beside the trachea, ellipsoids along y (cross-section semi-axes
  scaled by sqrt(1 - ((y - y_c) / h)^2), so slices beyond a lobe's ends hold no thyroid) joined by an
  isthmus in front of the trachea near the lobes' middle,
* carotid arteries (labels 2 left, 4 right) and jugular veins (3 left, 5 right): anechoic lumens
  lateral to the lobes, drifting slowly with y.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sonodiff.phantom.bmode import Physics
from sonodiff.phantom.tissue import Scene, SmoothField, Tissue, ellipse, index_of

#: Label values of the SegThy volunteer dataset.
LABELS = {"background": 0, "thyroid": 1, "carotid_left": 2, "jugular_left": 3, "carotid_right": 4,
          "jugular_right": 5}
#: Display/noise settings. SIMUS density 1 per wavelength^2: about 1 scatterer per resolution cell
#: of the plane-wave linear image, about 7 s of one core per image.
PHYSICS = Physics(scatterers_per_wavelength2=1.0)

TISSUES = [
    Tissue("tissue", 0, -8.0),
    Tissue("skin", 0, 3.0),
    Tissue("fat", 0, -12.0),
    Tissue("muscle", 0, -13.0),
    Tissue("deep", 0, -9.0),
    Tissue("air", 0, -80.0, texture=False),
    Tissue("cartilage", 0, 8.0),
    Tissue("vessel_wall", 0, 0.0),
    Tissue("thyroid", 1, 0.0),
    Tissue("carotid_left", 2, -40.0, texture=False),
    Tissue("jugular_left", 3, -40.0, texture=False),
    Tissue("carotid_right", 4, -40.0, texture=False),
    Tissue("jugular_right", 5, -40.0, texture=False),
]
T = index_of(TISSUES)


@dataclass(frozen=True)
class Lobe:
    x: float
    z: float
    a: float        # lateral semi-axis at the widest section
    b: float        # depth semi-axis
    y: float        # centre along y
    half_len: float
    angle: float


@dataclass(frozen=True)
class Vessel:
    x: float
    z: float
    a: float
    b: float
    drift: float    # dx/dy


@dataclass(frozen=True)
class NeckPatient:
    skin: float
    fat: float
    strap: float
    trachea_z: float     # centre depth
    trachea_r: float
    lobes: tuple[Lobe, Lobe]        # (right = image left, left = image right)
    isthmus: tuple[float, float, float]   # y centre, half length (y), thickness
    carotids: tuple[Vessel, Vessel]
    jugulars: tuple[Vessel, Vessel]
    extent: float        # volume extent along y (m)
    texture_seed: int


def draw_patient(rng: np.random.Generator) -> NeckPatient:
    """Draw one volunteer's neck: layer depths, trachea, lobe sizes and extents, vessel positions."""
    skin = rng.uniform(1.0e-3, 1.6e-3)
    fat = skin + rng.uniform(2.0e-3, 5.0e-3)
    strap = fat + rng.uniform(2.5e-3, 4.0e-3)
    tr = rng.uniform(0.006, 0.0075)
    tz = strap + rng.uniform(0.004, 0.006) + tr
    extent = 0.06
    lobes = []
    for side in (-1, 1):
        a, b = rng.uniform(0.005, 0.007), rng.uniform(0.007, 0.0095)
        lobes.append(Lobe(x=side * (tr + a - 0.002 + rng.uniform(0, 0.0015)),
                          z=tz - rng.uniform(0.001, 0.004), a=a, b=b,
                          y=rng.uniform(-0.006, 0.006), half_len=rng.uniform(0.018, 0.024),
                          angle=side * math.radians(rng.uniform(5, 20))))
    carotids, jugulars = [], []
    for side, lobe in zip((-1, 1), lobes):
        rc = rng.uniform(0.0028, 0.0035)
        cx = side * (abs(lobe.x) + 0.6 * lobe.a + rc + rng.uniform(0.0, 0.0015))
        cz = lobe.z + 0.4 * lobe.b + rng.uniform(0.0, 0.002)
        carotids.append(Vessel(cx, cz, rc, rc, rng.uniform(-0.06, 0.06)))
        ja, jb = rng.uniform(0.0035, 0.005), rng.uniform(0.0022, 0.0035)
        jugulars.append(Vessel(cx + side * rng.uniform(0.0015, 0.003), cz - rc - jb - rng.uniform(0.0002, 0.001),
                               ja, jb, rng.uniform(-0.06, 0.06)))
    isthmus = (float(np.mean([lb.y for lb in lobes])), rng.uniform(0.005, 0.009), rng.uniform(0.002, 0.0035))
    return NeckPatient(skin, fat, strap, tz, tr, tuple(lobes), isthmus, tuple(carotids), tuple(jugulars),
                       extent, int(rng.integers(2 ** 31)))


def slice_positions(patient: NeckPatient, n: int) -> np.ndarray:
    """Elevations (m) of ``n`` slices evenly covering the volume's extent."""
    if n == 1:
        return np.zeros(1)
    return np.linspace(-patient.extent / 2, patient.extent / 2, n)


def sweep_positions(patient: NeckPatient, n: int, sweep: int, sweeps: int) -> np.ndarray:
    """Elevations (m) of the ``n`` slices of sweep ``sweep`` (0-based) of ``sweeps``: those of
    :func:`slice_positions` shifted by ``sweep / sweeps`` of their spacing, so that the sweeps of
    one volunteer image interleaved planes of the same neck."""
    ys = slice_positions(patient, n)
    step = float(ys[1] - ys[0]) if n > 1 else 0.0
    return ys + step * sweep / sweeps


def tissue_map(p: NeckPatient, y: float, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Tissue-class index at points (x, z) of the slice at elevation y (later rules override)."""
    x, z = np.broadcast_arrays(np.asarray(x, float), np.asarray(z, float))
    out = np.full(x.shape, T["tissue"], dtype=np.intp)
    out[z > p.trachea_z + p.trachea_r + 0.006] = T["deep"]
    out[z <= p.fat] = T["fat"]
    out[z <= p.skin] = T["skin"]
    # strap muscles over the thyroid, sternocleidomastoid over the vessels
    out[(z > p.fat) & (z <= p.strap) & (np.abs(x) < p.trachea_r + 0.011)] = T["muscle"]
    for cx in (p.carotids[0].x, p.carotids[1].x):
        out[ellipse(x, z, cx * 1.05, p.strap + 0.002, 0.009, 0.0035, -np.sign(cx) * 0.3)] = T["muscle"]
    # vessels
    names = (("carotid_right", "jugular_right"), ("carotid_left", "jugular_left"))
    for (car_name, jug_name), car, jug in zip(names, p.carotids, p.jugulars):
        cx, jx = car.x + car.drift * y, jug.x + jug.drift * y
        jb = jug.b * (1 + 0.25 * math.sin(30 * y + jug.x * 400))
        out[ellipse(x, z, cx, car.z, car.a + 6e-4, car.b + 6e-4)] = T["vessel_wall"]
        out[ellipse(x, z, cx, car.z, car.a, car.b)] = T[car_name]
        out[ellipse(x, z, jx, jug.z, jug.a, jb)] = T[jug_name]
    # thyroid lobes and isthmus
    for lobe in p.lobes:
        q = 1.0 - ((y - lobe.y) / lobe.half_len) ** 2
        if q > 0.02:
            s = math.sqrt(q)
            out[ellipse(x, z, lobe.x, lobe.z, lobe.a * s, lobe.b * s, lobe.angle)] = T["thyroid"]
    iy, ih, it = p.isthmus
    if abs(y - iy) < ih:
        top = p.trachea_z - p.trachea_r
        band = (np.abs(x) < p.trachea_r * 0.9) & (z > top - it - 0.001) & (z <= top - 0.0005)
        out[band] = T["thyroid"]
    # trachea: bright anterior cartilage, air and its acoustic shadow below
    r = np.hypot(x, z - p.trachea_z)
    front = z < p.trachea_z
    out[(r <= p.trachea_r) & (r > p.trachea_r - 0.0012) & front] = T["cartilage"]
    below = z >= p.trachea_z
    in_shadow = ((r <= p.trachea_r - 0.0012) | (below & (np.abs(x) <= p.trachea_r - 0.0012)))
    out[in_shadow] = T["air"]
    return out


def scene(patient: NeckPatient, y: float) -> Scene:
    """Scene of the slice at elevation y; the texture varies smoothly in 3-D."""
    tex = SmoothField(np.random.default_rng(patient.texture_seed), std=1.5, wavelengths=(0.003, 0.012), dims=3)
    return Scene(lambda x, z: tissue_map(patient, y, x, z), TISSUES, lambda x, z: tex(x, z, np.full_like(x, y)))
