"""Breast anatomy for a BUSI-like phantom: normal breasts, benign cysts and malignant carcinomas.

Coordinates in metres in the linear array's frame (:data:`~sonodiff.phantom.probe.BREAST`): x
lateral, z depth below the skin (the probe on z = 0). One image per patient, in one of the
:data:`CLASSES`. Structures, later rules overriding earlier ones:

* skin: a bright line for z < s;
* subcutaneous fat (hypoechoic) down to the gland surface z_g(x) = g + q_1 sin(w_1 x + phi_1)
  + q_2 sin(w_2 x + phi_2) (an undulating interface), crossed by Cooper ligaments: thin bright
  bands |x - (x_j + t_j (z - s) + k_j (z - s)^2)| < w_j / 2 from the skin to the gland;
* fibroglandular tissue (the 0 dB reference, brighter than fat, with a strong smooth texture)
  holding a few fat lobules (hypoechoic ellipses), down to z_r(x) (a wavy interface), then
  retromammary fat and the pectoralis muscle (hypoechoic) below z_m(x);
* the lesion (label 1; none in ``normal``), inside the gland. In its own frame (centre (x_c, z_c),
  semi-axes (a, b), rotated by psi) a point has u = ((x - x_c) cos psi + (z - z_c) sin psi) / a,
  v = (-(x - x_c) sin psi + (z - z_c) cos psi) / b, rho = sqrt(u^2 + v^2), theta = atan2(v, u),
  and is inside when rho <= R(theta) with

      R(theta) = 1 + sum_k c_k cos(k theta + phi_k) + sum_j l_j max(0, 1 - |theta - theta_j| / w_j)

  (|theta - theta_j| wrapped to [0, pi]). ``benign``: an oval wider than tall (parallel to the
  skin), a gentle lobulation (k = 2, 3, c_k <= 0.04) and no spicules: smooth and almost convex;
  anechoic (fluid, -32 dB, no texture) and attenuating little (0.1 dB/cm/MHz against the
  gland's 0.75), so the column below it is brighter than beside it (posterior enhancement).
  ``malignant``: a rounder, often taller-than-wide mass with an angular outline (k = 3..7) and 6-10
  spicules (tapering spikes of 0.35-0.75 radius): low convexity; hypoechoic (-14 dB, textured) and
  strongly attenuating (1.9 dB/cm/MHz), so the column below it is darker (posterior shadowing).

The attenuation contrast acts through :class:`~sonodiff.phantom.tissue.AttenuatedScene` (excess
round-trip loss integrated along each vertical beam line), in both simulation modes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from sonodiff.phantom.bmode import Physics
from sonodiff.phantom.probe import BREAST, Transducer
from sonodiff.phantom.tissue import AttenuatedScene, SmoothField, Tissue, ellipse, index_of

#: The BUSI classes, in the order a block of three patients is permuted.
CLASSES = ("normal", "benign", "malignant")
#: Label values of the written masks' lesion (mask 255) and of the config (``{background: 0, lesion: 1}``).
LABELS = {"background": 0, "lesion": 1}

#: Echogenicity relative to the fibroglandular tissue (dB) and attenuation (dB/cm/MHz; None: the
#: transducer's 0.75, so only the lesions change the attenuation along a beam).
TISSUES = [
    Tissue("gland", 0, 0.0),
    Tissue("skin", 0, 4.0),
    Tissue("fat", 0, -12.0),
    Tissue("ligament", 0, 4.0),
    Tissue("retro_fat", 0, -12.0),
    Tissue("muscle", 0, -7.0),
    Tissue("cyst", 1, -32.0, texture=False, attenuation=0.1),
    Tissue("carcinoma", 1, -20.0, attenuation=1.9),
]
T = index_of(TISSUES)
#: Display/noise settings: the round-trip attenuation is 2 x 0.75 dB/cm/MHz x 7.6 MHz = 11.4 dB/cm;
#: a time-gain compensation of 10 dB/cm makes up for most of it (the far field slightly darker, as
#: on a scanner) and the electronic noise (-75 dB) stays below the deepest tissue. SIMUS density 1
#: per wavelength^2: about 3.5e4 scatterers over the 38 mm x 40 mm field.
PHYSICS = Physics(gain_db=-11.0, tgc_db_per_cm=10.0, noise_db=-75.0, scatterers_per_wavelength2=1.0)


@dataclass(frozen=True)
class Lesion:
    x: float          # centre (m)
    z: float
    a: float          # semi-axes (m) before rotation: lateral, depth
    b: float
    angle: float      # psi (rad)
    harmonics: tuple[tuple[int, float, float], ...]    # (k, c_k, phi_k)
    spicules: tuple[tuple[float, float, float], ...]   # (theta_j, l_j, w_j)


@dataclass(frozen=True)
class Ligament:
    x: float          # x_j where it leaves the skin (m)
    tilt: float       # t_j (dx/dz)
    bend: float       # k_j (1/m)
    width: float      # w_j (m)


@dataclass(frozen=True)
class BreastPatient:
    cls: str
    skin: float                                  # s (m)
    gland: float                                 # g: mean gland surface depth (m)
    gland_wave: tuple[float, float, float, float, float, float]   # q_1, w_1, phi_1, q_2, w_2, phi_2
    retro: float                                 # mean depth of the gland's deep surface (m)
    retro_wave: tuple[float, float, float]       # q, w, phi
    muscle: float                                # mean depth of the pectoralis (m)
    ligaments: tuple[Ligament, ...]
    lobules: tuple[tuple[float, float, float, float, float], ...]   # fat ellipses (x, z, a, b, angle)
    lesion: Lesion | None
    gain_db: float                               # gland echogenicity offset (dB)
    texture_seed: int


def patient_classes(n: int, block_rng: Callable[[int], np.random.Generator]) -> list[str]:
    """Classes of patients 0..n-1: each block of three (patients 3b, 3b + 1, 3b + 2) is a random
    permutation (``block_rng(b)``) of :data:`CLASSES`, so the classes are balanced (counts differ
    by at most one) and a patient's class does not change when more patients are asked for."""
    out: list[str] = []
    for b in range((n + 2) // 3):
        out.extend(CLASSES[i] for i in block_rng(b).permutation(len(CLASSES)))
    return out[:n]


def _lesion(rng: np.random.Generator, cls: str, top: float) -> Lesion:
    """A benign (oval, smooth) or malignant (spiculated) lesion whose top lies below ``top``."""
    if cls == "benign":
        a, b = rng.uniform(5e-3, 7.5e-3), rng.uniform(3.2e-3, 4.8e-3)
        angle = rng.uniform(-0.25, 0.25)
        harmonics = tuple((k, rng.uniform(0.02, 0.06), rng.uniform(0, 2 * math.pi)) for k in (2, 3, 4))
        spicules: tuple[tuple[float, float, float], ...] = ()
        reach = max(a, b) * 1.1
    else:
        a, b = rng.uniform(4.0e-3, 5.5e-3), rng.uniform(4.2e-3, 6.0e-3)
        angle = rng.uniform(-0.4, 0.4)
        harmonics = tuple((k, rng.uniform(0.02, 0.06), rng.uniform(0, 2 * math.pi)) for k in range(3, 8))
        n = int(rng.integers(7, 12))
        base = np.linspace(0, 2 * math.pi, n, endpoint=False) + rng.uniform(0, 2 * math.pi)
        spicules = tuple((float(t + rng.uniform(-0.2, 0.2)), rng.uniform(0.25, 0.5), rng.uniform(0.15, 0.25))
                         for t in base)
        reach = max(a, b) * 1.75
    z = rng.uniform(max(top + reach, 0.012), max(top + reach, 0.012) + 5e-3)
    return Lesion(rng.uniform(-3e-3, 3e-3), z, a, b, angle, harmonics, spicules)


def draw_patient(rng: np.random.Generator, cls: str, transducer: Transducer = BREAST) -> BreastPatient:
    """Draw one patient's breast of class ``cls``: layer depths and waves, ligaments, fat lobules,
    and (benign, malignant) the lesion."""
    if cls not in CLASSES:
        raise ValueError(f"breast class must be one of {', '.join(CLASSES)}, not {cls!r}")
    half = transducer.image_width / 2
    skin = rng.uniform(1.2e-3, 2.0e-3)
    gland = skin + rng.uniform(3.0e-3, 6.0e-3)
    gland_wave = (rng.uniform(0.5e-3, 1.5e-3), rng.uniform(120, 250), rng.uniform(0, 2 * math.pi),
                  rng.uniform(0.2e-3, 0.8e-3), rng.uniform(300, 600), rng.uniform(0, 2 * math.pi))
    retro = rng.uniform(0.027, 0.031)
    retro_wave = (rng.uniform(0.5e-3, 1.5e-3), rng.uniform(80, 200), rng.uniform(0, 2 * math.pi))
    muscle = retro + rng.uniform(2.5e-3, 4.0e-3)
    ligaments = tuple(Ligament(rng.uniform(-half, half), rng.uniform(-0.8, 0.8), rng.uniform(-150, 150),
                               rng.uniform(0.35e-3, 0.6e-3)) for _ in range(int(rng.integers(3, 6))))
    lobules = tuple((rng.uniform(-half, half), rng.uniform(gland + 3e-3, retro - 2e-3), rng.uniform(1.5e-3, 3.0e-3),
                     rng.uniform(0.8e-3, 1.6e-3), rng.uniform(-0.4, 0.4)) for _ in range(int(rng.integers(3, 7))))
    top = gland + gland_wave[0] + gland_wave[3] + 1.5e-3
    lesion = None if cls == "normal" else _lesion(rng, cls, top)
    return BreastPatient(cls, skin, gland, gland_wave, retro, retro_wave, muscle, ligaments, lobules, lesion,
                         rng.uniform(-1.5, 1.5), int(rng.integers(2 ** 31)))


def lesion_mask(lesion: Lesion, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Points inside the lesion: rho <= R(theta) (module docstring)."""
    c, s = math.cos(lesion.angle), math.sin(lesion.angle)
    dx, dz = x - lesion.x, z - lesion.z
    u = (c * dx + s * dz) / lesion.a
    v = (-s * dx + c * dz) / lesion.b
    rho, theta = np.hypot(u, v), np.arctan2(v, u)
    radius = np.ones(np.shape(theta))
    for k, amp, phase in lesion.harmonics:
        radius += amp * np.cos(k * theta + phase)
    for centre, length, width in lesion.spicules:
        off = np.abs(np.angle(np.exp(1j * (theta - centre))))
        radius += length * np.maximum(0.0, 1.0 - off / width)
    return rho <= radius


def tissue_map(p: BreastPatient, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Tissue-class index at points (x, z) (module docstring)."""
    x, z = np.broadcast_arrays(np.asarray(x, float), np.asarray(z, float))
    out = np.full(x.shape, T["gland"], dtype=np.intp)
    q1, w1, f1, q2, w2, f2 = p.gland_wave
    surface = p.gland + q1 * np.sin(w1 * x + f1) + q2 * np.sin(w2 * x + f2)
    q, w, f = p.retro_wave
    deep = p.retro + q * np.sin(w * x + f)
    for lx, lz, la, lb, angle in p.lobules:
        out[ellipse(x, z, lx, lz, la, lb, angle)] = T["fat"]
    fat = z < surface
    out[fat] = T["fat"]
    for lig in p.ligaments:
        d = z - p.skin
        centre = lig.x + lig.tilt * d + lig.bend * d ** 2
        out[fat & (np.abs(x - centre) < lig.width / 2)] = T["ligament"]
    out[z < p.skin] = T["skin"]
    out[z > deep] = T["retro_fat"]
    out[z > p.muscle + 0.5 * (deep - p.retro)] = T["muscle"]
    if p.lesion is not None:
        out[lesion_mask(p.lesion, x, z)] = T["cyst"] if p.cls == "benign" else T["carcinoma"]
    return out


def scene(patient: BreastPatient, transducer: Transducer = BREAST) -> AttenuatedScene:
    """The patient's scene: tissue map, echogenicities (gland offset), texture and attenuation."""
    table = [Tissue(t.name, t.label, t.echo_db + (patient.gain_db if t.name == "gland" else 0.0), t.texture,
                    t.attenuation) for t in TISSUES]
    field = SmoothField(np.random.default_rng(patient.texture_seed), std=2.5, wavelengths=(0.0015, 0.008))
    return AttenuatedScene(lambda xx, zz: tissue_map(patient, xx, zz), table, field, transducer)
