"""Liver anatomy for an unlabelled abdominal phantom imaged by a convex array (no label maps).

Coordinates in metres, in the convex array's frame (:data:`~sonodiff.phantom.probe.ABDOMEN`):
x lateral, z depth (z = 0 on the chord of the array's end elements, its centre of curvature at
(0, -h)), y elevation (the sweep direction: a patient's images are parallel planes y = y_k). The
depth below the skin is a = sqrt(x^2 + (z + h)^2) - R (the skin follows the array) and the beam
angle theta = atan2(x, z + h). Structures, later rules overriding earlier ones:

* abdominal wall conforming to the probe: skin (bright) for a < s, subcutaneous fat (dark) to f,
  muscle (hypoechoic) to m;
* liver capsule: a bright band of thickness c about a = m + g + k theta + q sin(w theta + phi) (a
  slightly tilted, wavy interface); the liver parenchyma (0 dB, smoothly textured) below it;
* diaphragm: the shell of an ellipsoid dome, centre (x_d, y_d, z_d), semi-axes (A, C, B) along
  (x, y, z), the points with 1 <= rho <= 1 + t / B, rho = sqrt(((x - x_d)/A)^2 + ((y - y_d)/C)^2
  + ((z - z_d)/B)^2): a bright curved line crossing the deep part of the fan; beyond it (rho > 1 +
  t / B) the lung, shown as the faint mirror-image echoes a scanner displays there;
* vessels: hepatic veins (anechoic) and portal veins (anechoic with a bright wall), finite
  cylinders of radius r_v about a 3-D axis p_v + s d_v (|s| <= half length), d_v mostly along y, so
  each plane cuts them as round or elliptic lumens; only within the liver.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sonodiff.phantom.bmode import Physics
from sonodiff.phantom.probe import ABDOMEN, Transducer
from sonodiff.phantom.tissue import Scene, SmoothField, Tissue, index_of

#: Echogenicity relative to the liver parenchyma (dB). Labels are all 0: the dataset is unlabelled.
TISSUES = [
    Tissue("liver", 0, 0.0),
    Tissue("skin", 0, 6.0),
    Tissue("fat", 0, -14.0),
    Tissue("muscle", 0, -8.0),
    Tissue("capsule", 0, 10.0),
    Tissue("diaphragm", 0, 14.0),
    Tissue("lung", 0, -10.0),
    Tissue("vessel_wall", 0, 8.0),
    Tissue("vessel", 0, -40.0, texture=False),
]
T = index_of(TISSUES)
#: Display/noise settings: a time-gain compensation of 1.5 dB/cm makes up for part of the round-trip
#: attenuation (2 x 0.5 dB/cm/MHz x 3.57 MHz = 3.6 dB/cm), so the far field stays darker, as on a
#: scanner with its TGC sliders left near the middle; the electronic noise (-65 dB) then reaches
#: the display only in the deepest centimetres. SIMUS density 0.7 per wavelength^2: about 9e4
#: scatterers over the 15 cm fan, about 140 s of one core per image (the fast mode: 0.03 s).
PHYSICS = Physics(tgc_db_per_cm=1.5, noise_db=-65.0, scatterers_per_wavelength2=0.7)
#: Extra electronic noise (dB) by patient habitus: more depth of fat, more noise.
HABITUS_NOISE_DB = {"slim": 0.0, "average": 4.0, "obese": 8.0}


@dataclass(frozen=True)
class Vessel:
    centre: tuple[float, float, float]   # (x, y, z)
    direction: tuple[float, float, float]
    radius: float
    half_length: float
    wall: float                            # bright wall thickness (0: a hepatic vein)


@dataclass(frozen=True)
class LiverPatient:
    skin: float        # depths below the skin (m) of the layer ends
    fat: float
    muscle: float
    capsule: float     # capsule depth at theta = 0
    capsule_tilt: float     # k (m per rad)
    capsule_wave: tuple[float, float, float]   # q (m), w (1/rad), phi
    capsule_thickness: float
    dome_centre: tuple[float, float, float]    # (x, y, z)
    dome_axes: tuple[float, float, float]      # (A, C, B) along (x, y, z)
    diaphragm: float   # thickness t (m)
    vessels: tuple[Vessel, ...]
    habitus: str
    gain_db: float     # overall echogenicity offset of the parenchyma (fatty liver brighter)
    texture_seed: int
    sweep: float       # elevation span (m) of the patient's images


def draw_patient(rng: np.random.Generator, transducer: Transducer = ABDOMEN) -> LiverPatient:
    """Draw one patient's abdomen: wall layers, capsule, diaphragm dome and a few vessels."""
    habitus = str(rng.choice(list(HABITUS_NOISE_DB), p=[0.4, 0.4, 0.2]))
    fat_scale = {"slim": 0.6, "average": 1.0, "obese": 1.8}[habitus]
    skin = rng.uniform(1.2e-3, 2.0e-3)
    fat = skin + fat_scale * rng.uniform(5e-3, 12e-3)
    muscle = fat + rng.uniform(5e-3, 10e-3)
    capsule = muscle + rng.uniform(1e-3, 4e-3)
    tilt = rng.uniform(-0.006, 0.006)
    wave = (rng.uniform(0.0, 1.5e-3), rng.uniform(2.0, 6.0), rng.uniform(0, 2 * math.pi))
    # diaphragm dome: its deepest point 11-14.5 cm below the chord, off centre by 2-6 cm
    A, B, C = rng.uniform(0.12, 0.18), rng.uniform(0.05, 0.09), rng.uniform(0.08, 0.12)
    bottom = rng.uniform(0.11, 0.145)
    dome_centre = (float(rng.choice([-1, 1])) * rng.uniform(0.02, 0.06), rng.uniform(-0.02, 0.02), bottom - B)
    vessels = []
    for k in range(int(rng.integers(3, 6))):
        # an axis through a point of the liver, mostly across the image plane
        a = rng.uniform(capsule + 0.02, bottom - 0.03)
        th = rng.uniform(-0.75, 0.75) * transducer.half_opening
        r = transducer.radius + a
        x, z = r * math.sin(th), r * math.cos(th) - transducer.apothem
        d = np.array([rng.uniform(-0.6, 0.6), 1.0, rng.uniform(-0.6, 0.6)])
        d /= np.linalg.norm(d)
        portal = k % 2 == 1
        vessels.append(Vessel((x, rng.uniform(-0.01, 0.01), z), tuple(float(v) for v in d),
                              rng.uniform(0.004, 0.010), rng.uniform(0.02, 0.05),
                              rng.uniform(0.8e-3, 1.4e-3) if portal else 0.0))
    return LiverPatient(skin, fat, muscle, capsule, tilt, wave, rng.uniform(1.0e-3, 1.8e-3), dome_centre,
                        (A, C, B), rng.uniform(2.5e-3, 4.0e-3), tuple(vessels), habitus,
                        rng.uniform(-2.0, 2.0), int(rng.integers(2 ** 31)), rng.uniform(0.02, 0.035))


def frame_positions(patient: LiverPatient, n: int) -> np.ndarray:
    """Elevations (m) of ``n`` images evenly covering the patient's sweep."""
    if n == 1:
        return np.zeros(1)
    return np.linspace(-patient.sweep / 2, patient.sweep / 2, n)


def _axial_lateral(transducer: Transducer, x: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    zc = z + transducer.apothem
    return np.hypot(x, zc) - transducer.radius, np.arctan2(x, zc)


def tissue_map(p: LiverPatient, y: float, x: np.ndarray, z: np.ndarray,
               transducer: Transducer = ABDOMEN) -> np.ndarray:
    """Tissue-class index at points (x, z) of the plane at elevation y (module docstring)."""
    x, z = np.broadcast_arrays(np.asarray(x, float), np.asarray(z, float))
    a, th = _axial_lateral(transducer, x, z)
    out = np.full(x.shape, T["liver"], dtype=np.intp)
    q, w, phi = p.capsule_wave
    cap = p.capsule + p.capsule_tilt * th + q * np.sin(w * th + phi)
    out[a < cap + p.capsule_thickness] = T["capsule"]
    out[a < cap] = T["muscle"]
    out[a < p.muscle] = T["muscle"]
    out[a < p.fat] = T["fat"]
    out[a < p.skin] = T["skin"]
    liver = out == T["liver"]
    (xd, yd, zd), (A, C, B) = p.dome_centre, p.dome_axes
    rho = np.sqrt(((x - xd) / A) ** 2 + ((y - yd) / C) ** 2 + ((z - zd) / B) ** 2)
    shell = 1.0 + p.diaphragm / B
    inside = liver & (rho < 1.0)
    for v in p.vessels:
        c, d = np.asarray(v.centre), np.asarray(v.direction)
        rel = (x - c[0], y - c[1], z - c[2])
        s = rel[0] * d[0] + rel[1] * d[1] + rel[2] * d[2]
        dist = np.sqrt(np.maximum(rel[0] ** 2 + rel[1] ** 2 + rel[2] ** 2 - s ** 2, 0.0))
        along = np.abs(s) <= v.half_length
        if v.wall:
            out[inside & along & (dist <= v.radius + v.wall)] = T["vessel_wall"]
        out[inside & along & (dist <= v.radius)] = T["vessel"]
    out[liver & (rho >= 1.0)] = T["diaphragm"]
    out[liver & (rho > shell)] = T["lung"]
    return out


class LiverScene(Scene):
    """A plane of one patient: tissue map, echogenicities with the patient's parenchyma offset."""

    def __init__(self, patient: LiverPatient, y: float, transducer: Transducer = ABDOMEN):
        table = [Tissue(t.name, t.label, t.echo_db + (patient.gain_db if t.name == "liver" else 0.0), t.texture)
                 for t in TISSUES]
        field = SmoothField(np.random.default_rng(patient.texture_seed), std=1.5, wavelengths=(0.006, 0.03), dims=3)
        super().__init__(lambda xx, zz: tissue_map(patient, y, xx, zz, transducer), table,
                         lambda xx, zz: field(xx, zz, np.full_like(xx, y)))


def scene(patient: LiverPatient, y: float, transducer: Transducer = ABDOMEN) -> LiverScene:
    return LiverScene(patient, y, transducer)
