"""Report figures, tables and provenance on tiny synthetic arrays and files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sonodiff.errors import InputError
from sonodiff.report import figures as F
from sonodiff.report import provenance as P
from sonodiff.report.tables_html import render_table_file, table_to_html


def _png_size(path):
    with Image.open(path) as img:
        assert img.format == "PNG"
        return img.size


def test_colorize_labels_background_black_sector_grey_structures_distinct():
    lab = np.array([[0, 1], [2, 3]])
    rgb = F.colorize_labels(lab, sector_id=3)
    assert rgb.shape == (2, 2, 3)
    assert (rgb[0, 0] == 0).all()
    np.testing.assert_allclose(rgb[1, 1], F.SECTOR_GREY)
    assert not np.allclose(rgb[0, 1], rgb[1, 0])


def test_depth_profile_recovers_a_known_ramp_and_ignores_outside_sector():
    h, w = 16, 8
    depth = np.repeat(np.linspace(0, 1, h)[:, None], w, axis=1)
    img = 1.0 - depth                       # brightness falls linearly with depth
    mask = np.ones((h, w), bool)
    mask[:, :2] = False
    img_out = img.copy()
    img_out[:, :2] = 5.0                    # would spoil the profile if the mask were ignored
    centers, mean, std = F.depth_profile(np.stack([img_out, img_out]), depth, mask, bins=4)
    assert centers.shape == mean.shape == std.shape == (4,)
    assert np.all(np.diff(mean) < 0)        # darker with depth
    assert mean.max() <= 1.0 and np.allclose(std, 0)
    # the mean of each bin equals 1 - mean depth of the pixels in it
    edges = np.linspace(0, 1, 5)
    for k in range(4):
        sel = (depth >= edges[k]) & ((depth < edges[k + 1]) if k < 3 else (depth <= 1))
        assert mean[k] == pytest.approx(1 - depth[sel].mean())


def test_depth_profile_spread_across_images():
    depth = np.repeat(np.linspace(0, 1, 8)[:, None], 4, axis=1)
    imgs = np.stack([np.full((8, 4), 0.2), np.full((8, 4), 0.6)])
    _, mean, std = F.depth_profile(imgs, depth, bins=2)
    np.testing.assert_allclose(mean, 0.4)
    np.testing.assert_allclose(std, 0.2)


def test_renderers_write_pngs(tmp_path):
    rng = np.random.default_rng(0)
    imgs = [rng.random((8, 8)) for _ in range(5)]
    labs = [rng.integers(0, 4, (8, 8)) for _ in range(5)]
    p = F.render_sample_grid(imgs, tmp_path / "grid.png", "t", labels=labs, sector_id=3)
    assert _png_size(p)[0] > 100
    p = F.render_qualitative_grid([[F.colorize_labels(labs[0]), imgs[0], imgs[1], imgs[2]]] * 2,
                                  ["label map", "baseline", "B-maps", "real"], tmp_path / "q.png")
    w_q, h_q = _png_size(p)
    assert w_q > h_q                        # 4 columns, 2 rows
    snaps = {"baseline": rng.standard_normal((3, 8, 8)), "bmaps": rng.standard_normal((3, 8, 8))}
    p = F.render_reverse_figure(snaps, [99, 50, 0], tmp_path / "r.png", label_map=labs[0])
    assert _png_size(p)[0] > 100
    logs = {"baseline": pd.DataFrame({"step": [10, 20], "loss": [1.0, 0.5], "mse": [0.9, 0.4]}),
            "B-maps": pd.DataFrame({"step": [10, 20], "loss": [1.1, 0.6], "mse": [1.0, 0.5]})}
    assert _png_size(F.render_training_curves(logs, tmp_path / "c.png"))[0] > 100
    prof = F.depth_profile(np.stack(imgs), np.repeat(np.linspace(0, 1, 8)[:, None], 8, 1), bins=4)
    assert _png_size(F.render_depth_profile({"real": prof, "bmaps": prof}, tmp_path / "d.png"))[0] > 100


def test_renderers_reject_empty_and_mismatched_input(tmp_path):
    with pytest.raises(InputError):
        F.render_image_grid([], tmp_path / "x.png")
    with pytest.raises(ValueError):
        F.render_reverse_figure({"a": np.zeros((2, 4, 4))}, [3, 2, 1], tmp_path / "x.png")
    with pytest.raises(InputError):
        F.render_training_curves({"a": pd.DataFrame({"step": [1], "other": [2]})}, tmp_path / "x.png")
    assert not list(tmp_path.iterdir())     # nothing partial left behind


def test_benchmark_table_sums_wall_time_per_stage(tmp_path):
    cols = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    (tmp_path / "train" / "a").mkdir(parents=True)
    (tmp_path / "train" / "a" / "x.tsv").write_text(cols + "10.5\t0:00:10\t100\t1\t1\t1\t0\t0\t0\t9\n")
    (tmp_path / "train" / "b.tsv").write_text(cols + "4.5\t0:00:04\t300\t1\t1\t1\t0\t0\t0\t4\n")
    (tmp_path / "sample").mkdir()
    (tmp_path / "sample" / "c.tsv").write_text(cols + "2\t0:00:02\t50\t1\t1\t1\t0\t0\t0\t1\n")
    (tmp_path / "sample" / "broken.tsv").write_text("")
    t = P.benchmark_table(tmp_path).set_index("stage")
    assert t.loc["train", "jobs"] == 2 and t.loc["train", "wall_s"] == pytest.approx(15.0)
    assert t.loc["train", "max_job_s"] == pytest.approx(10.5) and t.loc["train", "max_rss_mb"] == 300
    assert t.loc["total", "wall_s"] == pytest.approx(17.0) and t.loc["total", "jobs"] == 3
    assert P.benchmark_table(tmp_path / "missing").empty


def test_provenance_lists_versions_device_config_and_stages(tmp_path):
    cfg = {"seed": 3, "device": "cpu", "train": {"steps": 7}}
    prov = P.write_provenance(cfg, tmp_path / "none", tmp_path / "p.html", tmp_path / "p.json")
    data = json.loads((tmp_path / "p.json").read_text())
    assert data["config"]["train"]["steps"] == 7
    assert data["software"]["python"] and data["software"]["snakemake"] != "not installed"
    assert data["device"]["requested"] == "cpu" and data["device"]["resolved"] == "cpu"
    page = (tmp_path / "p.html").read_text()
    for needle in ("Wall time per stage", "torch", "monai", "snakemake", "sonodiff", "steps: 7"):
        assert needle in page
    assert prov["stages"] == []


def test_table_html_shows_every_cell_and_marks_published(tmp_path):
    df = pd.DataFrame({"dataset": ["camus"], "variant": ["bmaps"], "fid64": [1.23456],
                       "fid64_ci": ["[1.1, 1.4]"], "fid64_published": [0.5], "lpips": [np.nan]})
    page = table_to_html(df, "FID <1>")
    assert "FID &lt;1&gt;" in page and "1.235" in page and "[1.1, 1.4]" in page and "n/a" in page
    assert page.count("published") >= 3     # header + cell classes
    df.to_csv(tmp_path / "t.csv", index=False)
    out = render_table_file(tmp_path / "t.csv", tmp_path / "t.html", "T")
    assert "fid64_published" in out.read_text()
    with pytest.raises(InputError):
        render_table_file(tmp_path / "absent.csv", tmp_path / "u.html", "U")
    assert not (tmp_path / "u.html").exists()
