"""Apical two- and four-chamber cardiac anatomy (CAMUS labels) with per-patient shapes.

Geometry (metres; x lateral, z depth, the probe at the origin). The left ventricle is described in
its own frame: u along the long axis from the endocardial apex (pointing deeper), v across it.
With the apex at (x_a, z_a) and the axis tilted by phi from the z axis,

    u = (x - x_a) sin(phi) + (z - z_a) cos(phi),     v = (x - x_a) cos(phi) - (z - z_a) sin(phi).

LV cavity (label 1): 0 <= u <= L and |v - v_c(s)| <= W f(s), s = u / L, with the bullet profile

    f(s) = sqrt(1 - (1 - s / s_c)^2)               for s <= s_c   (elliptic apical part)
    f(s) = 1 - (1 - m) ((s - s_c) / (1 - s_c))^2    for s >  s_c   (narrowing to the mitral ring, m W)

and a bent centre line v_c(s) = b W sin(pi s). Myocardium (label 2): the same shape grown by the wall
thickness t (apex at u = -t, half-width W + t), cut at the mitral plane u = L, minus the cavity.
Left atrium (label 3): an ellipse below the mitral plane (u >= L). The four-chamber view adds the
right ventricle and right atrium (blood, label 0) on the image's left, across the septum.

End systole shortens the cavity (L_es = L (1 - e_long), W_es = W (1 - e_rad)) with the apex fixed,
thickens the wall so that the myocardial area 2F[(L + t)(W + t) - L W] (F = integral of f) is kept,
and enlarges the atrium. Ejection fraction: single-plane area-length volumes V = 8 A^2 / (3 pi L),
A = 2 F L W, averaged over the two views.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from sonodiff.phantom.bmode import Physics
from sonodiff.phantom.tissue import Scene, SmoothField, Tissue, ellipse, index_of

VIEWS = ("2CH", "4CH")
PHASES = ("ED", "ES")

#: Tissue classes: label written to the ground truth, echogenicity relative to myocardium (dB).
TISSUES = [
    Tissue("tissue", 0, -9.0),
    Tissue("chest_wall", 0, -3.0),
    Tissue("fascia", 0, 4.0),
    Tissue("pericardium", 0, 6.0),
    Tissue("rv_wall", 0, -4.0),
    Tissue("rv_blood", 0, -40.0, texture=False),
    Tissue("ra_blood", 0, -40.0, texture=False),
    Tissue("la_blood", 3, -40.0, texture=False),
    Tissue("myocardium", 2, -1.0),
    Tissue("lv_blood", 1, -40.0, texture=False),
]
T = index_of(TISSUES)
LABELS = {"background": 0, "lv_cavity": 1, "myocardium": 2, "left_atrium": 3}
#: Display/noise settings. SIMUS density 0.7 per wavelength^2: about 2 scatterers per resolution
#: cell of the diverging-wave sector (receive f-number ~4), about 10 s of one core per image.
PHYSICS = Physics(scatterers_per_wavelength2=0.7)


@dataclass(frozen=True)
class Ventricle:
    length: float      # L (m)
    half_width: float  # W (m)
    wall: float        # t (m)


@dataclass(frozen=True)
class Ellipse:
    """An ellipse in the LV frame: centre u = L + along * a_u (below the mitral plane) or absolute."""

    u: float
    v: float
    a_v: float   # lateral semi-axis
    a_u: float   # semi-axis along the LV axis
    angle: float = 0.0


@dataclass(frozen=True)
class ViewShape:
    """One view's anatomy at one phase."""

    view: str
    apex: tuple[float, float]
    tilt: float
    bend: float
    waist: float          # s_c
    mitral: float         # m
    lv: Ventricle
    la: Ellipse
    rv: Ellipse | None
    ra: Ellipse | None
    chest_wall: float     # depth of the chest wall (m)
    pericardium: float    # thickness (m)


def _profile(s: np.ndarray, waist: float, mitral: float) -> np.ndarray:
    """Bullet half-width profile f(s) on s in [0, 1] (0 outside)."""
    s = np.asarray(s, dtype=np.float64)
    apical = np.sqrt(np.clip(1.0 - (1.0 - s / waist) ** 2, 0.0, None))
    basal = 1.0 - (1.0 - mitral) * ((s - waist) / (1.0 - waist)) ** 2
    f = np.where(s <= waist, apical, basal)
    return np.where((s >= 0) & (s <= 1), f, 0.0)


def profile_integral(waist: float, mitral: float) -> float:
    """F = integral_0^1 f(s) ds = s_c pi / 4 + (1 - s_c)(1 - (1 - m) / 3)."""
    return waist * math.pi / 4 + (1 - waist) * (1 - (1 - mitral) / 3)


def cavity_area(shape: ViewShape) -> float:
    """LV cavity area A = 2 F L W (m^2)."""
    return 2 * profile_integral(shape.waist, shape.mitral) * shape.lv.length * shape.lv.half_width


def area_length_volume(shape: ViewShape) -> float:
    """Single-plane area-length volume V = 8 A^2 / (3 pi L) (m^3)."""
    return 8 * cavity_area(shape) ** 2 / (3 * math.pi * shape.lv.length)


def es_wall(ed: Ventricle, length_es: float, half_width_es: float) -> float:
    """Wall thickness at ES keeping the myocardial area: solve (L'+t')(W'+t') = (L+t)(W+t) - LW + L'W'."""
    k = (ed.length + ed.wall) * (ed.half_width + ed.wall) - ed.length * ed.half_width + length_es * half_width_es
    b = length_es + half_width_es
    return (-b + math.sqrt(b * b - 4 * (length_es * half_width_es - k))) / 2


def lv_frame(shape: ViewShape, x: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ax, az = shape.apex
    c, s = math.cos(shape.tilt), math.sin(shape.tilt)
    dx, dz = x - ax, z - az
    return dx * s + dz * c, dx * c - dz * s


def tissue_map(shape: ViewShape, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Tissue-class index at each point (later rules override earlier ones)."""
    x, z = np.broadcast_arrays(np.asarray(x, float), np.asarray(z, float))
    u, v = lv_frame(shape, x, z)
    lv = shape.lv
    L, W, t = lv.length, lv.half_width, lv.wall
    out = np.full(x.shape, T["tissue"], dtype=np.intp)
    out[z <= shape.chest_wall] = T["chest_wall"]
    out[(z > shape.chest_wall - 1.2e-3) & (z <= shape.chest_wall)] = T["fascia"]

    def grown(extra: float) -> np.ndarray:
        s = (u + extra) / (L + extra)
        vc = shape.bend * W * np.sin(math.pi * np.clip(s, 0, 1))
        return (u >= -extra) & (np.abs(v - vc) <= (W + extra) * _profile(s, shape.waist, shape.mitral))

    def in_frame(e: Ellipse) -> np.ndarray:
        return ellipse(v, u, e.v, e.u, e.a_v, e.a_u, e.angle)

    out[grown(t + shape.pericardium) & (u <= L + 4e-3) & ~grown(t)] = T["pericardium"]
    if shape.rv is not None:
        wall = replace(shape.rv, a_v=shape.rv.a_v + 3.5e-3, a_u=shape.rv.a_u + 3.5e-3)
        out[in_frame(wall)] = T["rv_wall"]
        out[in_frame(shape.rv)] = T["rv_blood"]
    if shape.ra is not None:
        out[in_frame(shape.ra) & (u >= L + 2e-3)] = T["ra_blood"]
    out[in_frame(shape.la) & (u >= L)] = T["la_blood"]
    out[grown(t) & (u <= L)] = T["myocardium"]
    out[grown(0.0) & (u <= L)] = T["lv_blood"]
    return out


@dataclass(frozen=True)
class CardiacPatient:
    """Shapes of both views at both phases plus the Info_*.cfg fields."""

    shapes: dict          # (view, phase) -> ViewShape
    sex: str
    age: int
    quality: str
    ef: int
    nb_frame: int
    es_frame: int
    frame_rate: int
    texture_seed: int


QUALITY = ("Good", "Medium", "Poor")
#: Extra electronic noise (dB) per image quality.
QUALITY_NOISE_DB = {"Good": 0.0, "Medium": 4.0, "Poor": 8.0}


def draw_patient(rng: np.random.Generator) -> CardiacPatient:
    """Draw one patient's anatomy: LV size, wall, shortening, orientation, atria, views."""
    length = rng.uniform(0.068, 0.088)
    half_width = rng.uniform(0.018, 0.024)
    wall = rng.uniform(0.0075, 0.011)
    e_long = rng.uniform(0.07, 0.16)
    e_rad = rng.uniform(0.12, 0.32)
    la_len = rng.uniform(0.034, 0.046)
    la_width = rng.uniform(0.030, 0.040)
    la_growth = rng.uniform(1.08, 1.22)
    chest = rng.uniform(0.008, 0.016)
    peri = rng.uniform(1.8e-3, 3.0e-3)
    shapes = {}
    for view in VIEWS:
        four = view == "4CH"
        ed = Ventricle(length * rng.uniform(0.96, 1.04), half_width * rng.uniform(0.94, 1.06) * (1.04 if four else 1.0), wall)
        el, er = e_long * rng.uniform(0.9, 1.1), e_rad * rng.uniform(0.9, 1.1)
        l_es, w_es = ed.length * (1 - el), ed.half_width * (1 - er)
        es = Ventricle(l_es, w_es, es_wall(ed, l_es, w_es))
        apex = (rng.uniform(-0.004, 0.012) if four else rng.uniform(-0.010, 0.010),
                rng.uniform(0.022, 0.034))
        tilt = math.radians(rng.uniform(2, 14) if four else rng.uniform(-10, 10))
        common = dict(view=view, apex=apex, tilt=tilt, bend=rng.uniform(-0.12, 0.12),
                      waist=rng.uniform(0.55, 0.72), mitral=rng.uniform(0.62, 0.78),
                      chest_wall=chest, pericardium=peri)
        la_v = rng.uniform(0.0, 0.008) if four else rng.uniform(-0.005, 0.005)
        la_angle = math.radians(rng.uniform(-15, 15))
        la_scale = rng.uniform(0.92, 1.05) if four else rng.uniform(0.85, 1.0)
        rv_a, rv_b = rng.uniform(0.010, 0.015), rng.uniform(0.30, 0.38)
        ra_a, ra_b = rng.uniform(0.011, 0.015), rng.uniform(0.016, 0.021)
        for phase, lv, grow in (("ED", ed, 1.0), ("ES", es, la_growth)):
            a_u, a_v = la_len / 2 * la_scale * grow, la_width / 2 * la_scale * grow ** 0.5
            la = Ellipse(u=lv.length + 0.8 * a_u, v=la_v, a_v=a_v, a_u=a_u, angle=la_angle)
            rv = ra = None
            if four:
                shrink = 1.0 if phase == "ED" else 0.85
                rv = Ellipse(u=0.55 * ed.length, v=-(lv.half_width + lv.wall + rv_a * shrink - 2e-3),
                             a_v=rv_a * shrink, a_u=rv_b * ed.length * (1.0 if phase == "ED" else 0.92))
                ra = Ellipse(u=lv.length + 0.8 * ra_b * grow, v=la_v - (a_v + ra_a + 3e-3),
                             a_v=ra_a * grow ** 0.5, a_u=ra_b * grow)
            shapes[(view, phase)] = ViewShape(lv=lv, la=la, rv=rv, ra=ra, **common)
    efs = []
    for view in VIEWS:
        edv = area_length_volume(shapes[(view, "ED")])
        esv = area_length_volume(shapes[(view, "ES")])
        efs.append((edv - esv) / edv)
    nb_frame = int(rng.integers(14, 24))
    return CardiacPatient(
        shapes=shapes, sex=str(rng.choice(["F", "M"])), age=int(rng.integers(20, 90)),
        quality=str(rng.choice(QUALITY, p=[0.5, 0.35, 0.15])), ef=int(round(100 * float(np.mean(efs)))),
        nb_frame=nb_frame, es_frame=int(rng.integers(nb_frame // 2 + 2, nb_frame)),
        frame_rate=int(rng.choice([25, 30, 40, 50, 60])), texture_seed=int(rng.integers(2 ** 31)),
    )


def scene(patient: CardiacPatient, view: str, phase: str) -> Scene:
    """The scene of one image; the texture is shared by both phases of a view."""
    shape = patient.shapes[(view, phase)]
    tex_rng = np.random.default_rng([patient.texture_seed, VIEWS.index(view)])
    texture = SmoothField(tex_rng, std=2.0, wavelengths=(0.006, 0.03))
    return Scene(lambda x, z: tissue_map(shape, x, z), TISSUES, texture)
