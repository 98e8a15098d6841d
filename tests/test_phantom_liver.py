"""The unlabelled liver phantom: convex-array geometry, physics, anatomy, folder layout, prepare."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.contracts.manifest import read_manifest
from sonodiff.data.prepare import prepare_dataset
from sonodiff.errors import InputError
from sonodiff.phantom import ABDOMEN, Physics, Simulator, simulate_liver, simulate_phantom
from sonodiff.phantom import liver
from sonodiff.phantom.tissue import Scene, Tissue

SIZE = 48
FRAMES = 3


def read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def liver_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("liver")
    simulate_liver(root, patients=3, mode="fast", size=SIZE, frames=FRAMES, seed=4, progress=False)
    return root


def homogeneous() -> Scene:
    return Scene(lambda x, z: np.zeros(np.shape(x), dtype=np.intp), [Tissue("t", 0, 0.0, False)])


def band_means(image: np.ndarray, inside: np.ndarray, step: int) -> list[float]:
    return [float(image[r:r + step][inside[r:r + step]].mean()) for r in range(0, image.shape[0], step)
            if inside[r:r + step].any()]


# ---------------------------------------------------------------------------------------- geometry


def test_convex_fan_geometry():
    """The fan is an annulus sector about a virtual apex above the image, its top the array's arc."""
    t = ABDOMEN
    param = t.pymust_param()
    xe, ze, the, _ = param.getElementPositions()
    # pymust's elements lie on the fan's top arc (a = 0), the end elements on z = 0 at the fan's edges
    assert np.allclose(np.hypot(xe, ze + t.apothem), t.radius)
    assert np.allclose(np.abs(the).max(), t.half_opening)
    assert t.image_top == pytest.approx(0.0, abs=1e-12)
    r, th = t.radius + 1e-4, the * 0.999                 # just below each element, along its normal
    assert t.inside(r * np.sin(th), r * np.cos(th) - t.apothem).all()
    assert not t.inside(xe * 0.999, ze - 1e-4).any()      # above the array: outside
    mask = t.sector_mask(64)
    # curved top: the centre column starts deeper than the fan's first rows at the sides
    first = np.nonzero(mask.any(1))[0][0]
    assert first == 0 and not mask[0, 31:33].any()
    top_centre = np.nonzero(mask[:, 32])[0][0]
    assert top_centre >= 3
    # bottom arc: the centre column reaches the last row, the corners do not
    assert mask[-1, 32] and not mask[-1, 0] and not mask[-1, -1]
    # straight edges through the apex: left edge columns fall linearly with the row
    rows = np.arange(10, 40)
    left = np.array([np.nonzero(mask[r])[0][0] for r in rows])
    slope, icpt = np.polyfit(rows, left, 1)
    assert np.abs(left - (slope * rows + icpt)).max() <= 1.0
    apex_row = (31.5 - icpt) / slope                    # where the left edge meets the centre line
    true_row = (-t.apothem - t.image_top) / t.image_height * 64 - 0.5
    assert apex_row < 0 and apex_row == pytest.approx(true_row, abs=2.0)


def test_convex_beam_grid_round_trip():
    grid = ABDOMEN.beam_grid
    x, z = grid.points()
    rows, cols = grid.fractional_index(x, z)
    assert np.allclose(rows, np.arange(grid.shape[0])[:, None])
    assert np.allclose(cols, np.arange(grid.shape[1])[None, :])
    assert ABDOMEN.inside(x[1:-1, 1:-1], z[1:-1, 1:-1]).all()


def test_convex_needs_radius_and_fan_within_arc():
    with pytest.raises(ValueError, match="radius"):
        ABDOMEN.with_(radius=0.0)
    with pytest.raises(ValueError, match="wider"):
        ABDOMEN.with_(opening_deg=120.0)


# ---------------------------------------------------------------------------------------- physics


def test_convex_speckle_is_rayleigh():
    sim = Simulator(ABDOMEN, "fast", 32)
    iq = sim.iq(homogeneous(), np.random.default_rng(0))
    n = iq.shape[0]
    band = np.abs(iq[n // 3: 2 * n // 3, iq.shape[1] // 6: -iq.shape[1] // 6])
    band = band / np.sqrt(np.mean(band ** 2, axis=1, keepdims=True))
    assert band.mean() / band.std() == pytest.approx(math.sqrt(math.pi / (4 - math.pi)), abs=0.12)


def test_attenuation_darkens_with_depth():
    """Without TGC the mean grey level of a homogeneous medium falls steadily with depth; the
    liver phantom's partial TGC keeps the far field darker than the near field."""
    inside = ABDOMEN.sector_mask(64)
    no_tgc = Simulator(ABDOMEN, "fast", 64, Physics(tgc_db_per_cm=0.0, noise_db=liver.PHYSICS.noise_db))
    image = np.mean([no_tgc.image(homogeneous(), np.random.default_rng(k)) for k in range(3)], axis=0)
    means = band_means(image, inside, 8)
    assert means[-1] < means[0] - 60
    assert np.all(np.diff(means[1:]) < 0)
    tgc = Simulator(ABDOMEN, "fast", 64, liver.PHYSICS)
    flat = np.mean([tgc.image(homogeneous(), np.random.default_rng(k)) for k in range(3)], axis=0)
    compensated = band_means(flat, inside, 8)
    assert max(compensated[:3]) > compensated[-1] + 20
    assert compensated[-1] - compensated[0] > means[-1] - means[0] + 30


# ---------------------------------------------------------------------------------------- anatomy


def _tissues_and_images(liver_root: Path, seed: int = 4):
    x, z = ABDOMEN.image_points(SIZE)
    for p, folder in enumerate(sorted(d for d in liver_root.iterdir() if d.is_dir())):
        patient = liver.draw_patient(np.random.default_rng([seed, 0, p]))
        for k, y in enumerate(liver.frame_positions(patient, FRAMES)):
            image = read(folder / f"frame{k:02d}.png").astype(float)
            yield liver.tissue_map(patient, float(y), x, z), image


def test_vessels_darker_and_bright_lines(liver_root):
    """Anechoic vessels well below the parenchyma at the same depths; capsule and diaphragm above it."""
    T = liver.T
    inside = ABDOMEN.sector_mask(SIZE)
    gaps = {"vessel": [], "capsule": [], "diaphragm": []}
    for tissue, image in _tissues_and_images(liver_root):
        rows = np.arange(SIZE)[:, None] * np.ones((1, SIZE), int)
        parenchyma = (tissue == T["liver"]) & inside
        for name in gaps:
            where = (tissue == T[name]) & inside
            if where.sum() < 3:
                continue
            near = parenchyma & (np.abs(rows - rows[where].mean()) <= 3)
            gaps[name].append(image[where].mean() - image[near].mean())
    assert gaps["vessel"] and gaps["capsule"] and gaps["diaphragm"]
    assert np.mean(gaps["vessel"]) < -30
    assert np.mean(gaps["capsule"]) > 10 and np.mean(gaps["diaphragm"]) > 10


def test_patient_anatomy_is_plausible():
    for p in range(8):
        patient = liver.draw_patient(np.random.default_rng([0, p]))
        assert patient.skin < patient.fat < patient.muscle < patient.capsule < 0.05
        assert 3 <= len(patient.vessels) <= 5
        x, z = ABDOMEN.image_points(64)
        tissue = liver.tissue_map(patient, 0.0, x, z)
        inside = ABDOMEN.sector_mask(64)
        assert (tissue[inside] == liver.T["liver"]).mean() > 0.4
        # the wall layers sit on top: the first sector rows are skin/fat, never liver
        assert not (tissue[:2][inside[:2]] == liver.T["liver"]).any()


# ---------------------------------------------------------------------------------------- layout and determinism


def test_folder_layout_and_fan(liver_root):
    folders = sorted(p.name for p in liver_root.iterdir() if p.is_dir())
    assert folders == ["patient01", "patient02", "patient03"]
    inside = ABDOMEN.sector_mask(SIZE)
    for name in folders:
        files = sorted(p.name for p in (liver_root / name).iterdir())
        assert files == [f"frame{k:02d}.png" for k in range(FRAMES)]
        for f in files:
            with Image.open(liver_root / name / f) as img:
                assert img.mode == "L" and img.size == (SIZE, SIZE)
            image = read(liver_root / name / f)
            assert not image[~inside].any()
            assert (image[inside] > 0).mean() > 0.95
    info = json.loads((liver_root / "phantom.json").read_text())
    assert info["phantom"] == "liver" and info["probe"]["kind"] == "convex"
    assert not list(liver_root.rglob("*_gt*")), "the liver phantom has no label maps"


def test_same_seed_same_bytes(liver_root, tmp_path):
    simulate_liver(tmp_path / "again", patients=3, mode="fast", size=SIZE, frames=FRAMES, seed=4, progress=False)
    assert tree_bytes(tmp_path / "again") == tree_bytes(liver_root)
    simulate_liver(tmp_path / "other", patients=3, mode="fast", size=SIZE, frames=FRAMES, seed=5, progress=False)
    key = "patient01/frame00.png"
    assert tree_bytes(tmp_path / "other")[key] != tree_bytes(liver_root)[key]
    # frames of one patient are different planes, not copies
    assert tree_bytes(liver_root)["patient01/frame01.png"] != tree_bytes(liver_root)[key]


def test_more_patients_keep_the_first_ones(liver_root, tmp_path):
    simulate_liver(tmp_path, patients=4, mode="fast", size=SIZE, frames=FRAMES, seed=4, progress=False)
    for p in liver_root.glob("*/*.png"):
        assert (tmp_path / p.relative_to(liver_root)).read_bytes() == p.read_bytes()


# ---------------------------------------------------------------------------------------- config and prepare


def _cfg(default_config, **simulate):
    from sonodiff.config import resolve

    cfg = resolve(default_config, "phantom_liver")
    cfg["data"]["source"]["simulate"].update(simulate)
    return cfg


def test_default_config_entry_is_unlabelled(default_config):
    entry = default_config["datasets"]["phantom_liver"]
    assert entry["format"] == "folder" and entry["source"]["simulate"]["phantom"] == "liver"
    assert entry["labels"] == {"background": 0} and entry["probe"] == "convex"
    assert entry["img_size"] == 32
    cfg = _cfg(default_config)
    assert 16 <= cfg["sample"]["count"] <= 64


def test_simulate_and_prepare_unlabelled_dataset(default_config, tmp_path):
    cfg = _cfg(default_config, patients=5, size=32, slices=2)
    raw = simulate_phantom(cfg, tmp_path / "raw", progress=False)
    files = PreparedDataset.in_dir(tmp_path / "prepared")
    info = prepare_dataset(raw, files.manifest, files.info_path, files.sector_path, cfg, progress=False)
    df = read_manifest(files.manifest)
    assert len(df) == 10 and (df.label == "").all()
    assert set(df.patient_id) == {f"patient0{i}" for i in range(1, 6)}
    assert (df.groupby("patient_id")["split"].nunique() == 1).all()
    assert set(df.split) == {"train", "val", "test"}
    assert sorted(df.sample_id)[:2] == ["patient01_frame00", "patient01_frame01"]
    assert info["labels"] == {"background": 0} and info["structures"] == {} and info["sector_id"] is None
    assert info["probe"] == {"type": "convex"}
    assert not (files.folder / "labels").exists()
    # the dataset sector is the convex fan (thresholded and cleaned, so within a pixel's margin)
    sector = read(files.sector_path) > 0
    fan = ABDOMEN.sector_mask(32)
    assert (sector != fan).mean() < 0.1 and sector[fan].mean() > 0.98


def test_liver_phantom_needs_folder_format_and_matching_glob(default_config, tmp_path):
    cfg = _cfg(default_config, patients=3, size=16, slices=1)
    cfg["data"]["format"] = "camus"
    with pytest.raises(InputError, match=r"^config key datasets\.phantom_liver\.format: "):
        simulate_phantom(cfg, tmp_path / "a", progress=False)
    cfg = _cfg(default_config, patients=3, size=16, slices=1)
    cfg["data"]["image_glob"] = "**/data/*.nii*"
    with pytest.raises(InputError, match=r"^config key datasets\.phantom_liver\.image_glob: "):
        simulate_phantom(cfg, tmp_path / "b", progress=False)
    assert not (tmp_path / "b").exists()


def test_simus_mode_convex_cyst():
    """Full pymust SIMUS with a small convex array: a cyst is darker than the tissue around it."""
    n = 32
    arc = 2 * math.degrees(math.asin(ABDOMEN.pitch / 2 / ABDOMEN.radius) * (n - 1))
    transducer = ABDOMEN.with_(n_elements=n, opening_deg=arc, depth=0.03, n_lateral=48)
    sim = Simulator(transducer, "simus", 32, Physics(scatterers_per_wavelength2=0.5))
    assert sim.model.n_scatterers < 3000
    centre_z = transducer.radius + 0.015 - transducer.apothem

    def tissue(x, z):
        return (np.hypot(x, z - centre_z) < 0.005).astype(np.intp)

    scene = Scene(tissue, [Tissue("t", 0, 0.0, False), Tissue("cyst", 0, -40.0, False)])
    image = sim.image(scene, np.random.default_rng(0)).astype(float)
    x, z = transducer.image_points(32)
    inside = transducer.sector_mask(32)
    cyst = tissue(x, z) == 1
    assert not image[~inside].any()
    assert image[inside & cyst].mean() < image[inside & ~cyst].mean() - 20
    assert image[inside].std() > 10
