"""The report's front page: the verdict reads each paired interval the right way round, every
dataset gets its rows with patient counts, and the depth-profile figures are embedded."""

from __future__ import annotations

import numpy as np
from PIL import Image

from sonodiff.io import write_json
from sonodiff.report.front_page import verdict, verdict_table, write_front_page


def fig(value, ci, patients=6, images=12):
    return {"value": value, "ci": ci, "status": "ok", "n": [images, 4], "n_clusters": [patients, patients]}


def differences(dataset):
    rows = [{"metric": "depth profile", "region": "sector", "quantity": "L1 synthetic vs real",
             **fig(-0.01, [-0.02, -0.005])}]
    return {"dataset": dataset, "reference": "baseline", "sign": "variant minus baseline", "counts": {},
            "variants": {"bmaps": {"fid": {"64": fig(2.0, [1.0, 3.0])}, "kid": {"64": fig(0.1, [-0.1, 0.3])},
                                   "paired": {"ssim": {"mean": fig(0.02, [0.01, 0.03])}},
                                   "physics": {"rows": rows}}}}


def test_verdict_reads_the_interval_and_the_direction():
    assert verdict(fig(-1, [-2, -0.5]), True, "baseline", "bmaps") == "bmaps better"      # lower is better
    assert verdict(fig(-1, [-2, -0.5]), False, "baseline", "bmaps") == "baseline better"  # higher is better
    assert verdict(fig(1, [0.5, 2]), False, "real", "synthetic_bmaps") == "synthetic_bmaps better"
    assert verdict(fig(0.1, [-1, 1]), True, "a", "b").startswith("not resolved")
    assert verdict(fig(0.1, None), True, "a", "b").startswith("no interval")
    assert verdict({"status": "n/a", "reason": "x"}, True, "a", "b") == "n/a"
    assert verdict(fig(-1, [-2, -0.5], patients=2), True, "a", "b") == "none: 2 patients (< 5)"


def test_verdict_table_rows_counts_and_segmentation():
    seg = {"cam": [("synthetic_bmaps - real", "Dice (%), mean over structures",
                    {"value": -2.0, "ci": [-4.0, -1.0], "status": "ok", "n_patients": 5, "n": [20, 20]}, False)]}
    table = verdict_table([differences("thy"), differences("cam")], seg)
    rows = [labels for labels, _ in table.rows]
    assert [r[0] for r in rows] == ["cam"] * 5 + ["thy"] * 4        # datasets in order, Dice only where given
    by_name = {(r[0], r[2]): r for r in rows}
    assert by_name[("cam", "FID, bias-corrected (64 dims)")][3:] == ["6 patients, 12 images", "baseline better"]
    assert by_name[("cam", "KID (64 dims)")][4].startswith("not resolved")
    assert by_name[("cam", "SSIM, mean over pairs")][4] == "bmaps better"
    assert by_name[("cam", "depth-profile L1")][4] == "bmaps better"
    assert by_name[("cam", "Dice (%), mean over structures")][3:] == ["5 patients, 20 images", "real better"]


def test_front_page_embeds_the_figures(tmp_path):
    png = tmp_path / "depth.png"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(png)
    write_json(tmp_path / "thy.json", differences("thy"))
    tables = {f: tmp_path / f"verdict.{f}" for f in ("csv", "md", "tex")}
    write_front_page([tmp_path / "thy.json"], {"thy": png}, tmp_path / "front.html", tables)
    page = (tmp_path / "front.html").read_text()
    assert "<h2>Verdict</h2>" in page and page.count("data:image/png;base64,") == 1
    assert "bmaps better" in page and "<table>" in page
    assert all(p.is_file() for p in tables.values())
