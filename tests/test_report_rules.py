"""The report stage's rule files: every caption they name exists and every script is thin."""

from __future__ import annotations

import re

import pytest

RULE_FILES = ("workflow/rules/report.smk", "workflow/rules/report_helpers.smk")
SCRIPTS = ("report_figures", "report_tables", "provenance", "paper_figures", "reverse_figure")


def test_every_caption_exists(repo_root):
    text = "".join((repo_root / f).read_text() for f in RULE_FILES)
    captions = set(re.findall(r'caption="\.\./report/([\w.]+)"', text))
    captions |= set(re.findall(r'"([\w.]+\.rst)"', text))
    captions |= {f"table_{t}.rst" for t in ("fid", "paired", "physics", "segmentation")}
    assert {"bmaps.rst", "forward.rst", "reverse.rst", "qualitative.rst", "samples.rst"} <= captions
    missing = [c for c in captions if not (repo_root / "workflow" / "report" / c).is_file()]
    assert not missing
    assert (repo_root / "workflow" / "report" / "workflow.rst").is_file()
    assert 'report: "report/workflow.rst"' in (repo_root / "workflow" / "Snakefile").read_text()


@pytest.mark.parametrize("name", SCRIPTS)
def test_scripts_are_thin(repo_root, name):
    src = (repo_root / "workflow" / "scripts" / f"{name}.py").read_text()
    assert len(src.splitlines()) <= 30 and "run_rule(snakemake, main)" in src
