"""Report figures, tables and provenance on tiny synthetic arrays and files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sonodiff.errors import InputError
from sonodiff.plotting import SECTOR_GREY
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
    np.testing.assert_allclose(rgb[1, 1], SECTOR_GREY)
    assert not np.allclose(rgb[0, 1], rgb[1, 0])


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
    centers = (np.arange(8) + 0.5) / 8
    prof = (centers, np.stack(imgs)[:, :, 0].mean(0), np.stack(imgs)[:, :, 0].std(0))
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
    (tmp_path / "t.md").write_text("**Table 1** <x>\n\n| dataset | FID | FID published |\n| --- | ---: | ---: |\n"
                                   "| camus | 1.23 [1.1, 1.4] | 0.5 |\n\n- [1] n/a: no weights\n")
    out = render_table_file(tmp_path / "t.csv", tmp_path / "t.html", "T", md_path=tmp_path / "t.md")
    page = out.read_text()
    assert "fid64_published" in page and "<details>" in page
    assert "<td style=\"text-align: right;\">1.23 [1.1, 1.4]</td>" in page   # the paper layout, as a table
    assert "&lt;x&gt;" in page and "<x>" not in page                         # no raw HTML passes through
    rows = pd.DataFrame({"source": ["ours", "Stojanovski (published)"], "kind": ["ours", "published"],
                         "lv_mean": [80.0, 88.5]})
    assert table_to_html(rows, "S").count('<tr class="published">') == 1
    with pytest.raises(InputError):
        render_table_file(tmp_path / "absent.csv", tmp_path / "u.html", "U")
    assert not (tmp_path / "u.html").exists()


# ----------------------------------------------------------------------------- from the results tree

@pytest.fixture(scope="module")
def tiny_tree(tmp_path_factory, default_config):
    from report_tree import make_results_tree

    cfg = json.loads(json.dumps(default_config))
    for ds in cfg["datasets"].values():
        ds["img_size"] = 16
    cfg["diffusion"]["num_steps"] = 20
    root = tmp_path_factory.mktemp("tree")
    return cfg, make_results_tree(root, cfg)


def prepared_dataset(layout, d: str):
    from sonodiff.contracts.dataset import PreparedDataset

    return PreparedDataset(*(layout(f"dataset_{k}", dataset=d) for k in ("manifest", "info", "sector")))


def test_dataset_figures_from_the_results_tree(tiny_tree, tmp_path):
    from sonodiff.contracts.layout import Layout
    from sonodiff.contracts.manifest import read_manifest
    from sonodiff.report.dataset_figures import qualitative_rows, render_dataset_figures

    cfg, results = tiny_tree
    L = Layout(str(results))
    for d in sorted(cfg["datasets"]):           # one convex, one linear probe
        variants = ("baseline", "bmaps")
        samples = {v: L("samples_manifest", dataset=d, variant=v) for v in variants}
        outs = {k: tmp_path / d / f"{k}.png" for k in ("qualitative", "training", "depth_profile")}
        grids = {v: tmp_path / d / f"grid_{v}.png" for v in samples}
        prepared = prepared_dataset(L, d)
        render_dataset_figures(dataset=d, prepared=prepared, samples=samples,
                               train_logs={v: L("train_log", dataset=d, variant=v) for v in variants},
                               metrics={v: L("metrics_record", dataset=d, variant=v) for v in variants},
                               outputs=outs, sample_grids=grids, n_examples=2, n_grid=4)
        for p in list(outs.values()) + list(grids.values()):
            assert _png_size(p)[0] > 100
        frames = {v: read_manifest(p) for v, p in samples.items()}
        rows, cols = qualitative_rows(frames, 3, sector_id=None)
        assert cols == ["label map", "baseline", "B-maps", "real"] and len(rows) == 3
        # the row's real image is the one paired with the label map in the manifest
        key = sorted(set(frames["baseline"].query("split == 'val'")["sample_id"]))[0]
        rec = frames["baseline"].set_index("sample_id").loc[key]
        np.testing.assert_allclose(rows[0][-1], F.load_gray(rec["real_image"]))
        np.testing.assert_allclose(rows[0][1], F.load_gray(rec["image"]))
        np.testing.assert_allclose(rows[0][2], F.load_gray(frames["bmaps"].set_index("sample_id").loc[key, "image"]))


def test_depth_profile_is_drawn_from_the_metrics_records(tiny_tree, tmp_path):
    from sonodiff.contracts.layout import Layout
    from sonodiff.io import read_json, write_json
    from sonodiff.report.dataset_figures import depth_profile_of, render_depth_from_files

    _, results = tiny_tree
    record = Layout(str(results))("metrics_record", dataset="phantom_camus", variant="bmaps")
    stored = read_json(record)
    stored["physics"]["depth_profile"]["real"][0] = None          # a bin no real image reaches (JSON null)
    write_json(tmp_path / "null.json", stored)
    curves = depth_profile_of(tmp_path / "null.json")
    profile = stored["physics"]["depth_profile"]
    assert len(curves["depth"]) == len(profile["real_std"]) and np.isnan(curves["real"][0])
    np.testing.assert_allclose(curves["synthetic_std"], profile["synthetic_std"])
    out = render_depth_from_files({"bmaps": record, "other": tmp_path / "null.json"}, tmp_path / "d.png", "t")
    assert _png_size(out)[0] > 100
    old = read_json(record)
    del old["physics"]["depth_profile"]["real_std"]
    write_json(tmp_path / "old.json", old)
    with pytest.raises(InputError, match="real_std.*rerun compute_metrics"):
        render_depth_from_files({"bmaps": tmp_path / "old.json"}, tmp_path / "e.png", "t")
    assert not (tmp_path / "e.png").exists()


def test_process_and_reverse_figures_from_the_results_tree(tiny_tree, tmp_path):
    from sonodiff.config import resolve
    from sonodiff.contracts.layout import Layout
    from sonodiff.report.paper_figures import render_process_figures, render_reverse_from_files

    cfg, results = tiny_tree
    L = Layout(str(results))
    d = "phantom_camus"
    prepared = prepared_dataset(L, d)
    render_process_figures(resolve(cfg, d, "bmaps"), prepared, tmp_path / "b.png", tmp_path / "f.png")
    assert _png_size(tmp_path / "b.png")[0] > 100 and _png_size(tmp_path / "f.png")[0] > 100
    snapshots = {v: L("snapshots", dataset=d, variant=v) for v in ("baseline", "bmaps")}
    out = render_reverse_from_files(snapshots, prepared.sector_id, tmp_path / "r.png", d)
    w, h = _png_size(out)
    assert w > 1.5 * h                        # 2 rows (variants) of 1 + 4 columns


def test_reverse_figure_columns_are_the_snapshot_steps_then_x0(tmp_path):
    from sonodiff.contracts.samples import FINAL_STEP, write_snapshots
    from sonodiff.report.paper_figures import column_names, render_reverse_from_files

    assert column_names([99, 50, 0, FINAL_STEP]) == [99, 50, 0, "x_0"]
    frames = np.zeros((3, 8, 8), np.float32)
    write_snapshots(tmp_path / "a.npz", [9, 4, FINAL_STEP], frames, None)
    write_snapshots(tmp_path / "b.npz", [9, 5, FINAL_STEP], frames, np.ones((8, 8), np.int64))
    out = render_reverse_from_files({"a": tmp_path / "a.npz"}, None, tmp_path / "r.png", "d")
    assert _png_size(out)[0] > 100
    with pytest.raises(InputError, match="other variants at"):
        render_reverse_from_files({"a": tmp_path / "a.npz", "b": tmp_path / "b.npz"}, 2, tmp_path / "x.png", "d")
    assert not (tmp_path / "x.png").exists()
