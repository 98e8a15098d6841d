"""Tables 1-3: the papers' layout, published values in the right cells, CIs, n/a with reasons,
and well-formed CSV / Markdown / LaTeX."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from sonodiff.io import write_json
from sonodiff.report import published as pub
from sonodiff.report.table_writer import Cell, Table, to_latex, to_markdown
from sonodiff.report.tables import fid_table, make_tables, paired_table

NO_WEIGHTS = "FID needs pt_inception-2015-12-05-6726825d.pth, not found"


def fig(value, width=0.1):
    return {"value": value, "ci": [value - width, value + width], "status": "ok", "n": [10, 4]}


def na(reason):
    return {"value": None, "ci": None, "status": "n/a", "reason": reason}


def row(metric, region, quantity, figure):
    return {"metric": metric, "region": region, "quantity": quantity, **figure}


def result(dataset, variant, offset=0.0, fid_ok=True, labels=True):
    fid = {d: (dict(fig(1.0 + offset + int(d) / 1000), estimate=1.5 + offset) if fid_ok else na(NO_WEIGHTS))
           for d in ("64", "192", "2048")}
    kid = {d: (fig(0.01 + offset) if fid_ok else na(NO_WEIGHTS)) for d in fid}
    if fid_ok:
        fid["2048"]["warning"] = "8 real images < 2048 feature dimensions"
    paired = {m: {s: fig(0.3 + offset) for s in ("mean", "std", "range")} for m in ("lpips", "ssim", "psnr")}
    if not fid_ok:
        paired["lpips"] = {s: na("LPIPS needs alexnet-owt-7be5be79.pth") for s in ("mean", "std", "range")}
    rows = [row("depth profile", "sector", "L1 synthetic vs real", fig(0.05 + offset))]
    if labels:
        rows += [row("speckle SNR", "thyroid", q, fig(1.5)) for q in ("synthetic", "real", "synthetic - real")]
        rows += [row("intensity W1", r, "synthetic vs real", fig(0.02)) for r in ("thyroid", "sector")]
        rows += [row("gCNR", "thyroid vs sector", q, fig(0.4)) for q in ("synthetic", "real", "synthetic - real")]
    else:
        rows.append(row("speckle SNR, intensity W1, gCNR", "–", "–", na("the dataset has no label maps")))
    counts = {"synthetic_images": 40, "synthetic_patients": 2 if labels else None, "real_images": 8,
              "real_patients": 2, "pairs": 8 if labels else 0, "pair_patients": 2 if labels else 0}
    return {"dataset": dataset, "variant": variant, "counts": counts, "fid": fid, "kid": kid, "paired": paired,
            "physics": {"rows": rows}}


def difference(dataset, variant="bmaps", reference="plain"):
    fid = {d: fig(-0.5) for d in ("64", "192", "2048")}
    rows = [row("depth profile", "sector", "L1 synthetic vs real", fig(-0.01, 0.005))]
    return {"dataset": dataset, "reference": reference, "sign": "variant minus plain", "counts": {},
            "variants": {variant: {"fid": fid, "kid": {d: fig(-0.002, 0.001) for d in fid},
                                   "paired": {m: {"mean": fig(0.02)} for m in ("lpips", "ssim", "psnr")},
                                   "physics": {"rows": rows}}}}


FORMATS = {"phantom_camus": "camus", "my_thyroid": "segthy", "liver": "folder"}
B_MIN = {"bmaps": 0.97, "plain": 1.0}  # the baseline-like variant has an unusual name


@pytest.fixture
def differences():
    return {d: difference(d) for d in FORMATS}


@pytest.fixture
def results():
    return [result("phantom_camus", "plain", 0.0, fid_ok=False), result("phantom_camus", "bmaps", 0.5),
            result("my_thyroid", "plain", 1.0), result("my_thyroid", "bmaps", 1.5),
            result("liver", "plain", 2.0, labels=False), result("liver", "bmaps", 2.5, labels=False)]


def test_mapping_to_the_papers_datasets_and_variants():
    assert pub.paper_dataset("phantom_camus", "camus") == "CAMUS"
    assert pub.paper_dataset("neck", "segthy") == "Thyroid"
    assert pub.paper_dataset("liver", "folder") == "Liver"
    assert pub.paper_dataset("busi", "busi") is None
    assert pub.paper_variant(1.0) == "baseline" and pub.paper_variant(0.96) == "proposed"


def test_fid_table_layout_and_published_values(results, differences):
    table = fid_table(results, differences, FORMATS, B_MIN)
    assert table.columns[:4] == [("plain", "FID"), ("plain", "FID bias-corr."), ("plain", "KID"),
                                 ("plain", "published")]   # baseline-like variant first
    assert table.columns[-2:] == [("Δ bmaps", "FID bias-corr."), ("Δ bmaps", "KID")]
    cols = {c: i for i, c in enumerate(table.columns)}
    rows = {tuple(labels[::2]): cells for labels, cells in table.rows}   # (dataset, layer)
    assert [labels[1] for labels, _ in table.rows][::3] == ["Liver", "Thyroid", "CAMUS"]
    assert rows[("phantom_camus", "1st MP")][cols[("bmaps", "published")]].value == 0.204
    assert rows[("phantom_camus", "2nd MP")][cols[("plain", "published")]].value == 12.769
    assert rows[("my_thyroid", "2nd MP")][cols[("bmaps", "published")]].value == 2.769
    assert rows[("liver", "1st MP")][cols[("plain", "published")]].value == 20.746
    assert rows[("liver", "pool3")][cols[("plain", "published")]].value is None  # the paper has no pool3 FID
    corrected = rows[("my_thyroid", "1st MP")][cols[("bmaps", "FID bias-corr.")]]
    assert corrected.value == pytest.approx(2.564) and corrected.ci == pytest.approx([2.464, 2.664])
    plain = rows[("my_thyroid", "1st MP")][cols[("bmaps", "FID")]]
    assert plain.value == pytest.approx(3.0) and plain.ci is None   # the papers' FID, without an interval
    delta = rows[("my_thyroid", "1st MP")][cols[("Δ bmaps", "FID bias-corr.")]]
    assert delta.value == pytest.approx(-0.5) and delta.ci == pytest.approx([-0.6, -0.4])
    assert NO_WEIGHTS in rows[("phantom_camus", "1st MP")][cols[("plain", "FID")]].reason
    notes = " ".join(table.notes)
    assert "my_thyroid: 40 synthetic images of 2 patients, 8 real images of 2 patients" in notes
    assert "liver: 40 synthetic images (unconditional)" in notes
    assert "variant minus plain" in notes and "8 real images < 2048 feature dimensions" in notes


def test_paired_table_rows_and_published_values(results, differences):
    table = paired_table(results, differences, FORMATS, B_MIN)
    assert [tuple(labels) for labels, _ in table.rows][:4] == [
        ("LPIPS", "Mean"), ("LPIPS", "Std. Dev."), ("LPIPS", "Range"), ("SSIM", "Mean")]
    cols = {c: i for i, c in enumerate(table.columns)}
    rows = {tuple(labels): cells for labels, cells in table.rows}
    assert rows[("PSNR", "Range")][cols[("bmaps", "phantom_camus", "published")]].value == 10.420
    assert rows[("SSIM", "Std. Dev.")][cols[("plain", "my_thyroid", "published")]].value == 0.137
    assert rows[("LPIPS", "Mean")][cols[("plain", "liver", "published")]].value is None  # not in table 2
    assert rows[("SSIM", "Mean")][cols[("Δ bmaps", "liver", "ours")]].value == pytest.approx(0.02)
    assert rows[("SSIM", "Range")][cols[("Δ bmaps", "liver", "ours")]].value is None  # means only
    assert "my_thyroid: 8 pairs of 2 patients" in " ".join(table.notes)


def test_files_are_written_and_well_formed(results, differences, tmp_path):
    paths = []
    for res in results:
        path = tmp_path / "metrics" / res["dataset"] / f"{res['variant']}.json"
        write_json(path, res)
        paths.append(path)
    diff_paths = []
    for ds, diff in differences.items():
        diff_paths.append(tmp_path / "metrics" / ds / "differences.json")
        write_json(diff_paths[-1], diff)
    outputs = {t: {f: tmp_path / "tables" / f"{t}.{f}" for f in ("csv", "md", "tex")}
               for t in ("fid", "paired", "physics")}
    tables = make_tables(paths, diff_paths, FORMATS, B_MIN, outputs)

    fid = pd.read_csv(outputs["fid"]["csv"])
    camus = fid.set_index(["Dataset", "Layer"]).loc[("phantom_camus", "1st MP")]
    assert camus["bmaps published"] == 0.204
    assert camus["bmaps FID bias-corr."] == pytest.approx(1.564)
    assert camus["bmaps FID bias-corr. ci_low"] == pytest.approx(1.464)
    assert camus["Δ bmaps KID"] == pytest.approx(-0.002)
    assert pd.isna(camus["plain FID bias-corr."]) and NO_WEIGHTS in camus["reason"]
    assert pd.isna(fid.set_index(["Dataset", "Layer"]).loc[("liver", "1st MP"), "reason"])

    for name, table in tables.items():
        md = outputs[name]["md"].read_text()
        body = [line for line in md.splitlines() if line.startswith("| ")]
        widths = {len(re.findall(r"(?<!\\)\|", line)) for line in body}
        assert widths == {len(table.index) + len(table.columns) + 1}, name
        tex = outputs[name]["tex"].read_text()
        assert len(re.findall(r"(?<!\\)\{", tex)) == len(re.findall(r"(?<!\\)\}", tex)), name  # balanced
        rows = [line for line in tex.splitlines() if line.endswith(r"\\") and not line.startswith(("$^", "["))]
        for line in rows[1:]:
            cells = len(re.findall(r"(?<!\\)&", line)) + 1
            if r"\multicolumn" not in line and cells > 1:
                assert cells == len(table.index) + len(table.columns), (name, line)

    fid_md = outputs["fid"]["md"].read_text()
    assert "n/a [1]" in fid_md and f"[1] n/a: {NO_WEIGHTS}" in fid_md
    assert "1.564 [1.464, 1.664]" in fid_md  # ours with its CI
    paired_md = outputs["paired"]["md"].read_text()
    assert "LPIPS needs alexnet-owt-7be5be79.pth" in paired_md
    physics_md = outputs["physics"]["md"].read_text()
    assert "the dataset has no label maps" in physics_md
    assert "synthetic - real" in physics_md and "-0.010 [-0.015, -0.005]" in physics_md
    assert r"$^{1}$ n/a: FID needs pt\_inception" in outputs["fid"]["tex"].read_text()


def test_missing_value_and_na_render_differently():
    table = Table("t", "caption", ["row"], [("a",), ("b",), ("c",)],
                  rows=[(["x"], [Cell(1.0, [0.5, 1.5]), Cell(None), Cell(None, reason="why")])])
    md = to_markdown(table)
    assert "| x | 1.000 [0.500, 1.500] | – | n/a [1] |" in md and "[1] n/a: why" in md
    assert r"1.000 {\tiny [0.500, 1.500]} & -- & n/a$^{1}$" in to_latex(table)


def test_spread_cells_digits_tex_labels_and_several_tables_in_one_file(tmp_path):
    from sonodiff.report.table_writer import tex_escape, write_table

    spread = Table("s", "Dice (%)", ["source"], [("LV endo",), ("Mean",)], digits=1, scientific_below=0.0,
                   tex_labels={"LV endo": "$LV_{endo}$"},
                   rows=[(["real_x"], [Cell(85.42, [83.26, 87.64], std=5.87), Cell(0.004, std=0.7)])])
    md = to_markdown(spread)
    assert "| real_x | 85.4 ± 5.9 [83.3, 87.6] | 0.0 ± 0.7 |" in md      # fixed point: no 4.00e-03
    tex = to_latex(spread)
    assert "source & $LV_{endo}$ & Mean" in tex
    assert r"real\_x & 85.4 $\pm$ 5.9 {\tiny [83.3, 87.6]} & 0.0 $\pm$ 0.7" in tex
    assert tex_escape("a_b ± 5% <x>") == r"a\_b $\pm$ 5\% $<$x$>$"
    other = Table("t", "second", ["row"], [("a",)], rows=[(["y"], [Cell(0.001)])])
    write_table([spread, other], {"md": tmp_path / "t.md", "tex": tmp_path / "t.tex"})
    assert (tmp_path / "t.md").read_text() == md + "\n" + to_markdown(other)
    assert "1.00e-03" in to_markdown(other)                                 # the paper tables' default
    assert (tmp_path / "t.tex").read_text().count("\\begin{table}") == 2
