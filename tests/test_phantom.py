"""Physics-simulated phantoms: layouts, labels, anatomy, B-mode physics, determinism."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from sonodiff.errors import InputError
from sonodiff.phantom import CARDIAC, NECK, Physics, Simulator, simulate_camus, simulate_phantom, simulate_segthy
from sonodiff.phantom import cardiac, neck, raw_layout
from sonodiff.phantom.tissue import Scene, Tissue

SIZE = 32


def read(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def camus_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("camus")
    simulate_camus(root, patients=3, mode="fast", size=SIZE, seed=5, progress=False)
    return root


#: Volume ids of the SegThy phantom with 3 volunteers and 2 sweeps each (scan, volunteer, sweep, side).
SEGTHY_IDS = ["001_P1_1_left", "002_P1_1_right", "003_P2_1_left", "004_P2_1_right", "005_P3_1_left",
              "006_P3_1_right"]


@pytest.fixture(scope="module")
def segthy_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("segthy")
    simulate_segthy(root, patients=3, mode="fast", size=SIZE, slices=6, seed=3, slice_axis=2, sweeps=2,
                    progress=False)
    return root


class Homogeneous(Scene):
    """One tissue everywhere (0 dB), no texture: the speckle and depth tests' medium."""

    def __init__(self):
        super().__init__(lambda x, z: np.zeros(np.shape(x), dtype=np.intp), [Tissue("t", 0, 0.0, False)])


# ---------------------------------------------------------------------------------------- CAMUS


def test_camus_layout_files_shapes_labels(camus_root):
    ids = [f"patient{i:04d}" for i in (1, 2, 3)]
    sector = CARDIAC.sector_mask(SIZE)
    for pid in ids:
        folder = camus_root / "database_nifti" / pid
        for view in ("2CH", "4CH"):
            info = dict(line.split(": ", 1) for line in (folder / f"Info_{view}.cfg").read_text().splitlines())
            assert list(info) == ["ED", "ES", "NbFrame", "Sex", "Age", "ImageQuality", "EF", "FrameRate"]
            assert int(info["ED"]) == 1 < int(info["ES"]) <= int(info["NbFrame"])
            assert info["Sex"] in ("F", "M") and info["ImageQuality"] in ("Good", "Medium", "Poor")
            assert 15 <= int(info["EF"]) <= 85
            for phase in ("ED", "ES"):
                image = read(folder / f"{pid}_{view}_{phase}.nii.gz")
                gt = read(folder / f"{pid}_{view}_{phase}_gt.nii.gz")
                assert image.shape == gt.shape == (SIZE, SIZE)
                assert image.dtype == gt.dtype == np.uint8
                assert set(np.unique(gt)) == {0, 1, 2, 3}
                assert not image[~sector].any() and not gt[~sector].any()
                assert (image[sector] > 0).mean() > 0.95
    # the fan apex is at the top centre: the first rows are inside the sector only at the centre
    first = np.nonzero(sector.any(1))[0][0]
    assert first <= 2 and set(np.nonzero(sector[first])[0]) <= {SIZE // 2 - 1, SIZE // 2}
    assert sector[-1].sum() > SIZE // 4


def test_camus_split_files(camus_root):
    split = {}
    for name in ("training", "validation", "testing"):
        split[name] = (camus_root / "database_split" / f"subgroup_{name}.txt").read_text().split()
        assert split[name], name
    everything = sum(split.values(), [])
    assert sorted(everything) == ["patient0001", "patient0002", "patient0003"]


def test_camus_es_cavity_smaller_and_walls(camus_root):
    for folder in sorted((camus_root / "database_nifti").iterdir()):
        for view in ("2CH", "4CH"):
            ed = read(folder / f"{folder.name}_{view}_ED_gt.nii.gz")
            es = read(folder / f"{folder.name}_{view}_ES_gt.nii.gz")
            assert (es == 1).sum() < (ed == 1).sum()
            for gt in (ed, es):
                # myocardium caps the cavity at the apex; the atrium lies below the cavity
                rows1, rows2, rows3 = (np.nonzero((gt == k).any(1))[0] for k in (1, 2, 3))
                assert rows2.min() < rows1.min()
                assert rows3.max() > rows1.max()


def test_camus_cavity_dark_myocardium_brighter(camus_root):
    folder = camus_root / "database_nifti" / "patient0001"
    image = read(folder / "patient0001_4CH_ED.nii.gz").astype(float)
    gt = read(folder / "patient0001_4CH_ED_gt.nii.gz")
    assert image[gt == 2].mean() > image[gt == 1].mean() + 30


def test_cardiac_es_geometry_and_ef():
    for p in range(5):
        patient = cardiac.draw_patient(np.random.default_rng([9, p]))
        for view in cardiac.VIEWS:
            ed, es = patient.shapes[(view, "ED")], patient.shapes[(view, "ES")]
            assert cardiac.area_length_volume(es) < cardiac.area_length_volume(ed)
            assert es.lv.wall > ed.lv.wall
            assert es.la.a_u > ed.la.a_u
            # myocardial area kept: (L+t)(W+t) - LW equal at ED and ES
            m = [(s.lv.length + s.lv.wall) * (s.lv.half_width + s.lv.wall) - s.lv.length * s.lv.half_width
                 for s in (ed, es)]
            assert m[1] == pytest.approx(m[0], rel=1e-9)
        assert patient.shapes[("4CH", "ED")].rv is not None and patient.shapes[("2CH", "ED")].rv is None
        assert 15 <= patient.ef <= 85


# ---------------------------------------------------------------------------------------- SegThy


def test_segthy_layout_and_labels(segthy_root):
    base = segthy_root / "US_volunteer_dataset" / "ground_truth_data"
    assert sorted(p.name for p in (base / "US").iterdir()) == [f"{i}_US.nii" for i in SEGTHY_IDS]
    assert sorted(p.name for p in (base / "US_thyroid_label").iterdir()) == [f"{i}.nii" for i in SEGTHY_IDS]
    assert sorted(p.name for p in base.iterdir()) == ["US", "US_thyroid_label"]
    with_thyroid = without = 0
    for volume_id in SEGTHY_IDS:
        image_path, label_path = raw_layout.segthy_paths(segthy_root, volume_id)
        assert image_path.read_bytes()[:4] == (348).to_bytes(4, "little")   # uncompressed NIfTI-1, as released
        image, gt = read(image_path), read(label_path)
        assert image.shape == gt.shape == (SIZE, SIZE, 6)
        assert set(np.unique(gt)) <= {0, 1, 2, 3, 4, 5}
        assert {2, 3, 4, 5} <= set(np.unique(gt))
        for k in range(6):
            if (gt[:, :, k] == 1).any():
                with_thyroid += 1
            else:
                without += 1
        # carotid/jugular left (2, 3) on the image's right, right (4, 5) on its left
        cols = np.nonzero(gt == 2)[1].mean(), np.nonzero(gt == 4)[1].mean()
        assert cols[0] > SIZE / 2 > cols[1]
    assert with_thyroid and without, "some slices must lack thyroid so that the slicer drops them"


def test_segthy_volume_ids_number_scans_and_alternate_sides():
    assert [raw_layout.segthy_volume_id(1, s, 3) for s in range(3)] == \
        ["004_P2_1_left", "005_P2_1_right", "006_P2_2_left"]
    assert raw_layout.segthy_volume_id(11, 0, 1) == "012_P12_1_left"


def test_segthy_sweeps_of_a_volunteer_share_the_neck(segthy_root):
    """Two sweeps of P1: the same anatomy in interleaved planes (labels overlap, not equal), own speckle."""
    (img1, lab1), (img2, lab2), (_, other) = (
        tuple(read(p) for p in raw_layout.segthy_paths(segthy_root, i)) for i in SEGTHY_IDS[:3])
    assert not np.array_equal(img1, img2) and not np.array_equal(lab1, lab2)

    def dice(a, b):
        return 2 * np.sum(a & b) / (np.sum(a) + np.sum(b))

    same = dice(lab1 == 1, lab2 == 1)
    assert same > 0.8 and same > dice(lab1 == 1, other == 1)


def test_segthy_trachea_is_dark_air_and_probe_on_top(segthy_root):
    image_path, label_path = raw_layout.segthy_paths(segthy_root, SEGTHY_IDS[0])
    image, gt = read(image_path).astype(float), read(label_path)
    centre = slice(SIZE // 2 - 2, SIZE // 2 + 2)
    deep = slice(SIZE * 3 // 4, SIZE)
    # below the trachea: acoustic shadow, label 0, much darker than the tissue beside it
    assert not gt[deep, centre].any()
    assert image[deep, centre].mean() < 0.5 * image[deep, :4].mean()
    # the skin line (probe side) is at row 0
    assert image[0].mean() > image[SIZE // 8].mean()


def test_segthy_slice_axis_moves_only_the_stacking(tmp_path):
    volumes = {}
    for axis in (0, 1):
        root = tmp_path / f"axis{axis}"
        simulate_segthy(root, patients=3, mode="fast", size=16, slices=3, seed=8, slice_axis=axis, sweeps=1,
                        progress=False)
        image_path, label_path = raw_layout.segthy_paths(root, "001_P1_1_left")
        volumes[axis] = (read(image_path), read(label_path))
    for k in range(3):
        for i in (0, 1):
            a = volumes[0][i][k]
            b = volumes[1][i][:, k, :]
            assert a.shape == (16, 16)
            np.testing.assert_array_equal(a, b)


def test_neck_thyroid_ends_along_elevation():
    patient = neck.draw_patient(np.random.default_rng(0))
    x, z = NECK.image_points(48)
    ys = neck.slice_positions(patient, 12)
    has = [(neck.scene(patient, float(y)).labels(x, z) == 1).any() for y in ys]
    assert has[len(has) // 2] and not has[0] and not has[-1]


# ---------------------------------------------------------------------------------------- physics


@pytest.mark.parametrize("transducer", [CARDIAC, NECK], ids=["sector", "linear"])
def test_fast_mode_speckle_is_rayleigh(transducer):
    """Fully developed speckle: the envelope of circular Gaussian I/Q is Rayleigh, SNR = 1.91."""
    sim = Simulator(transducer, "fast", SIZE)
    iq = sim.iq(Homogeneous(), np.random.default_rng(0))
    n = iq.shape[0]
    band = np.abs(iq[n // 3: 2 * n // 3, iq.shape[1] // 6: -iq.shape[1] // 6])
    band = band / np.sqrt(np.mean(band ** 2, axis=1, keepdims=True))   # remove the depth trend
    snr = band.mean() / band.std()
    assert snr == pytest.approx(math.sqrt(math.pi / (4 - math.pi)), abs=0.12)
    # speckle has a grain: neighbouring grid nodes are correlated (not white noise)
    env = band - band.mean()
    rho_axial = (env[1:] * env[:-1]).mean() / env.var()
    rho_lateral = (env[:, 1:] * env[:, :-1]).mean() / env.var()
    assert max(rho_axial, rho_lateral) > 0.3


@pytest.mark.parametrize("transducer", [CARDIAC, NECK], ids=["sector", "linear"])
def test_images_darker_with_depth(transducer):
    """Attenuation (no TGC): the mean grey level falls with depth in a homogeneous medium."""
    sim = Simulator(transducer, "fast", 64)
    image = np.mean([sim.image(Homogeneous(), np.random.default_rng(k)) for k in range(3)], axis=0)
    inside = transducer.sector_mask(64)
    means = [image[r0:r0 + 8][inside[r0:r0 + 8]].mean() for r0 in range(8, 64, 8)]
    assert means[-1] < means[0] - 15
    assert np.all(np.diff(means[1:]) < 3)
    # with time-gain compensation the trend flattens
    tgc_db_per_cm = 2 * transducer.attenuation * transducer.fc / 1e6
    tgc = Simulator(transducer, "fast", 64, Physics(tgc_db_per_cm=tgc_db_per_cm))
    flat = np.mean([tgc.image(Homogeneous(), np.random.default_rng(k)) for k in range(3)], axis=0)
    flat_means = [flat[r0:r0 + 8][inside[r0:r0 + 8]].mean() for r0 in range(8, 64, 8)]
    assert flat_means[-1] - flat_means[0] > means[-1] - means[0] + 10


def test_psf_bank_unit_kernels_and_losses():
    sim = Simulator(NECK, "fast", SIZE)
    model = sim.model
    for h in model.kernels:
        assert np.sum(np.abs(h) ** 2) == pytest.approx(1.0)
        peak = np.unravel_index(np.argmax(np.abs(h)), h.shape)
        assert abs(peak[0] - model.half_rows) <= 2 and abs(peak[1] - model.half_cols) <= 2
    assert model.gains[-1] < model.gains[0]


def test_simus_mode_tiny_image():
    """Full pymust SIMUS + DAS on a tiny sector: a dark cyst is darker than its surroundings."""
    transducer = CARDIAC.with_(depth=0.03, n_lateral=48)
    sim = Simulator(transducer, "simus", SIZE, Physics(scatterers_per_wavelength2=0.5))
    assert sim.model.n_scatterers < 2000

    class Cyst(Scene):
        def __init__(self):
            def tissue(x, z):
                return (np.hypot(x, z - 0.018) < 0.006).astype(np.intp)
            super().__init__(tissue, [Tissue("t", 0, 0.0, False), Tissue("cyst", 1, -40.0, False)])

    scene = Cyst()
    image = sim.image(scene, np.random.default_rng(0)).astype(float)
    x, z = transducer.image_points(SIZE)
    labels = scene.labels(x, z)
    inside = transducer.sector_mask(SIZE)
    assert not image[~inside].any()
    assert image[inside & (labels == 1)].mean() < image[inside & (labels == 0) & (z > 0.008)].mean() - 20
    assert image[inside].std() > 10   # speckle


# ---------------------------------------------------------------------------------------- determinism


def test_same_seed_same_bytes_other_seed_differs(camus_root, tmp_path):
    again = tmp_path / "again"
    simulate_camus(again, patients=3, mode="fast", size=SIZE, seed=5, progress=False)
    assert tree_bytes(again) == tree_bytes(camus_root)
    other = tmp_path / "other"
    simulate_camus(other, patients=3, mode="fast", size=SIZE, seed=6, progress=False)
    a, b = tree_bytes(camus_root), tree_bytes(other)
    assert a.keys() == b.keys()
    key = "database_nifti/patient0001/patient0001_2CH_ED.nii.gz"
    assert a[key] != b[key] and a[key.replace(".nii", "_gt.nii")] != b[key.replace(".nii", "_gt.nii")]


def test_segthy_same_seed_same_bytes(segthy_root, tmp_path):
    simulate_segthy(tmp_path, patients=3, mode="fast", size=SIZE, slices=6, seed=3, slice_axis=2, sweeps=2,
                    progress=False)
    assert tree_bytes(tmp_path) == tree_bytes(segthy_root)


def test_more_patients_keep_the_first_ones(camus_root, tmp_path):
    simulate_camus(tmp_path, patients=4, mode="fast", size=SIZE, seed=5, progress=False)
    for p in camus_root.glob("database_nifti/*/*"):
        assert (tmp_path / p.relative_to(camus_root)).read_bytes() == p.read_bytes()


# ---------------------------------------------------------------------------------------- config entry


def _cfg(default_config, dataset, **simulate):
    from sonodiff.config import resolve

    cfg = resolve(default_config, dataset)
    cfg["data"]["source"]["simulate"].update(simulate)
    return cfg


def test_simulate_phantom_from_config(segthy_config, tmp_path):
    cfg = _cfg(segthy_config, "phantom_segthy", patients=3, size=16, slices=2)
    assert cfg["data"]["source"]["simulate"]["sweeps"] == 2
    out = simulate_phantom(cfg, tmp_path / "raw" / "phantom_segthy", progress=False)
    assert sorted(p.name for p in (out / "US_volunteer_dataset" / "ground_truth_data" / "US").iterdir()) == \
        [f"{i}_US.nii" for i in SEGTHY_IDS]
    axis = cfg["data"]["slice_axis"]
    assert read(raw_layout.segthy_paths(out, SEGTHY_IDS[0])[0]).shape[axis] == 2
    assert not [p for p in (tmp_path / "raw").iterdir() if p.name.startswith(".")]


def test_simulate_phantom_wrong_format_is_one_line_error(default_config, tmp_path):
    cfg = _cfg(default_config, "phantom_camus", patients=3, size=16)
    cfg["data"]["format"] = "segthy"
    with pytest.raises(InputError, match=r"^config key datasets\.phantom_camus\.format: "):
        simulate_phantom(cfg, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_failed_simulation_leaves_no_partial_output(default_config, tmp_path, monkeypatch):
    import sonodiff.phantom.simulate as simulate

    def boom(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(simulate.raw_layout, "write_camus_split", boom)
    cfg = _cfg(default_config, "phantom_camus", patients=3, size=16)
    with pytest.raises(RuntimeError):
        simulate_phantom(cfg, tmp_path / "out", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_split_patients_fractions():
    ids = [f"p{i}" for i in range(10)]
    split = raw_layout.split_patients(ids, {"train": 0.6, "val": 0.2, "test": 0.2}, np.random.default_rng(0))
    assert [len(split[k]) for k in ("train", "val", "test")] == [6, 2, 2]
    assert sorted(sum(split.values(), [])) == sorted(ids)
    small = raw_layout.split_patients(ids[:3], {"train": 0.9, "val": 0.05, "test": 0.05}, np.random.default_rng(0))
    assert [len(small[k]) for k in ("train", "val", "test")] == [1, 1, 1]


@pytest.mark.slow
def test_simus_mode_dataset(tmp_path):
    """A whole (small) SegThy phantom through full SIMUS: layout as in fast mode."""
    simulate_segthy(tmp_path, patients=3, mode="simus", size=24, slices=1, seed=0, sweeps=1, progress=False)
    image, gt = (read(p) for p in raw_layout.segthy_paths(tmp_path, "002_P2_1_left"))
    assert image.shape == gt.shape == (24, 24, 1)
    assert image.std() > 10 and 1 in np.unique(gt)
