"""Imports cost only what a job uses: light rule scripts never load MONAI or torchvision.

Each rule script's top-level imports run in a fresh interpreter (``benchmarks/bench_imports.py``,
which also times them) and ``sys.modules`` is inspected afterwards.
"""

from __future__ import annotations

import importlib.util

import pytest

from conftest import ROOT

_spec = importlib.util.spec_from_file_location("bench_imports", ROOT / "benchmarks" / "bench_imports.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

#: What a network, FID/LPIPS or TensorBoard pulls in: no light job needs any of it.
NETWORK_STACK = ("monai", "torchvision", "torch._dynamo", "lpips", "pytorch_fid", "tensorboard")
#: Rules that read files, draw or tabulate, and import no torch at all.
TORCH_FREE_RULES = ("check_leakage", "make_tables", "report_tables", "provenance", "segmentation_table",
                    "report_figures", "reverse_figure", "paper_figures", "download")
#: Light rules of stages that use torch tensors (the sample plan and gathering).
LIGHT_RULES = TORCH_FREE_RULES + ("plan_samples", "gather_samples")


def loaded_after(code: str) -> list[str]:
    return bench.probe(code)["heavy"]


@pytest.mark.parametrize("rule", LIGHT_RULES)
def test_light_rule_imports_no_network_stack(rule):
    script = ROOT / "workflow" / "scripts" / f"{rule}.py"
    assert script.is_file(), f"no rule script {script}"
    heavy = loaded_after(bench.script_imports(script))
    assert not set(heavy) & set(NETWORK_STACK), f"{rule} imports {heavy}"
    if rule in TORCH_FREE_RULES:
        assert "torch" not in heavy, f"{rule} imports torch ({heavy})"


def test_the_segmenter_job_loads_monai_only_when_it_builds_the_network():
    """Also the check itself: the probe sees torch, which this job imports."""
    heavy = loaded_after(bench.script_imports(ROOT / "workflow" / "scripts" / "train_segmenter.py"))
    assert "torch" in heavy and not set(heavy) & set(NETWORK_STACK), heavy


def test_cli_help_imports_no_torch():
    heavy = loaded_after(bench.targets()["sonodiff --help"])
    assert "torch" not in heavy and "pandas" not in heavy, heavy

