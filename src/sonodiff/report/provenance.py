"""Provenance of a run: the resolved config, software versions, the device, and the wall time of
every stage, gathered from the rules' benchmark files.

Snakemake writes one benchmark TSV per job at ``<benchmarks>/<rule>/<wildcards>.tsv`` with the
columns ``s, h:m:s, max_rss, max_vms, max_uss, max_pss, io_in, io_out, mean_load, cpu_time``.
The stage of a file is the first folder below ``<benchmarks>`` (the rule's name). Per stage we
report the number of jobs, the total wall time :math:`\\sum_j s_j`, the longest job
:math:`\\max_j s_j`, the total CPU time and the largest resident memory :math:`\\max_j
\\mathrm{max\\_rss}_j` (MB).
"""

from __future__ import annotations

import datetime as _dt
import html
import importlib.metadata
import os
import platform
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd
import yaml

from sonodiff.errors import InputError
from sonodiff.io import write_json, write_text

#: Distributions whose versions the report lists (those not installed are listed as such).
PACKAGES = ("sonodiff", "snakemake", "torch", "torchvision", "monai", "numpy", "scipy", "pandas",
            "pymust", "torchio", "SimpleITK", "scikit-image", "torchmetrics", "pytorch-fid",
            "lpips", "matplotlib")


def software_versions(packages: Iterable[str] = PACKAGES) -> dict[str, str]:
    """Python's version and the installed version of each distribution (``"not installed"``)."""
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def device_info(requested: str = "auto") -> dict[str, Any]:
    """The device the config asks for and what this machine offers (torch imported lazily)."""
    info: dict[str, Any] = {
        "requested": requested,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    try:
        import torch

        from sonodiff.device import resolve_device
    except ImportError:  # the report env may lack torch; the versions table says so
        info["resolved"] = requested
        return info
    info["cuda_available"] = bool(torch.cuda.is_available())
    info["cuda_version"] = torch.version.cuda
    if info["cuda_available"]:
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    try:
        info["resolved"] = resolve_device(requested).type
    except InputError as err:  # e.g. cuda asked for on a machine without a GPU
        info["resolved"] = f"none ({err.reason})"
    return info


def benchmark_table(benchmark_dir: str | Path) -> pd.DataFrame:
    """Wall time per stage from every ``*.tsv`` under ``benchmark_dir`` (module docstring).

    Columns: ``stage, jobs, wall_s, max_job_s, cpu_s, max_rss_mb``; one extra row ``total``.
    An absent or empty folder gives an empty table with those columns.
    """
    columns = ["stage", "jobs", "wall_s", "max_job_s", "cpu_s", "max_rss_mb"]
    root = Path(benchmark_dir)
    rows = []
    for tsv in sorted(root.rglob("*.tsv")) if root.is_dir() else []:
        try:
            df = pd.read_csv(tsv, sep="\t")
        except (OSError, ValueError, pd.errors.EmptyDataError):
            continue
        if "s" not in df.columns or df.empty:
            continue
        rel = tsv.relative_to(root)
        stage = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        for _, rec in df.iterrows():  # one line per repeat when --benchmark-repeats > 1
            rows.append({
                "stage": stage,
                "s": float(rec["s"]),
                "cpu": float(pd.to_numeric(rec.get("cpu_time", float("nan")), errors="coerce")),
                "rss": float(pd.to_numeric(rec.get("max_rss", float("nan")), errors="coerce")),
            })
    if not rows:
        return pd.DataFrame(columns=columns)
    raw = pd.DataFrame(rows)
    table = raw.groupby("stage", sort=True).agg(
        jobs=("s", "size"), wall_s=("s", "sum"), max_job_s=("s", "max"),
        cpu_s=("cpu", "sum"), max_rss_mb=("rss", "max")).reset_index()
    total = {"stage": "total", "jobs": int(table["jobs"].sum()), "wall_s": table["wall_s"].sum(),
             "max_job_s": table["max_job_s"].max(), "cpu_s": table["cpu_s"].sum(),
             "max_rss_mb": table["max_rss_mb"].max()}
    table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
    return table[columns].round({"wall_s": 2, "max_job_s": 2, "cpu_s": 2, "max_rss_mb": 1})


def collect_provenance(config: Mapping[str, Any], benchmark_dir: str | Path) -> dict[str, Any]:
    """Everything the provenance page shows, as a JSON-serialisable dict."""
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv) if sys.argv and sys.argv[0] else None,
        "config": dict(config),
        "software": software_versions(),
        "device": device_info(str(config.get("device", "auto"))),
        "stages": benchmark_table(benchmark_dir).to_dict(orient="records"),
    }


_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #111; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; }
th { background: #eee; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f6f6f6; padding: 0.8em; border: 1px solid #ddd; overflow-x: auto; font-size: 0.85em; }
"""


def _kv_table(items: Mapping[str, Any]) -> str:
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                   for k, v in items.items())
    return f"<table>{rows}</table>"


def render_provenance_html(prov: Mapping[str, Any]) -> str:
    """A standalone HTML page (no scripts, no external resources) for the report."""
    stages = pd.DataFrame(prov["stages"])
    if stages.empty:
        stage_html = "<p>No benchmark files found.</p>"
    else:
        stage_html = stages.to_html(index=False, border=0, na_rep="n/a", float_format=lambda v: f"{v:.2f}")
    device = dict(prov["device"])
    if "gpus" in device:
        device["gpus"] = ", ".join(device["gpus"])
    config_yaml = yaml.safe_dump(prov["config"], sort_keys=False, default_flow_style=None)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>Provenance</title><style>{_CSS}</style></head><body>"
        "<h1>Provenance of this run</h1>"
        f"<p>Report written {html.escape(str(prov['created']))}.</p>"
        "<h2>Wall time per stage</h2>"
        "<p>From the rules' benchmark files (seconds; <code>max_rss_mb</code> is the largest "
        "resident memory of one job).</p>"
        f"{stage_html}"
        "<h2>Device</h2>"
        f"{_kv_table(device)}"
        "<h2>Software</h2>"
        f"{_kv_table(prov['software'])}"
        "<h2>Resolved config</h2>"
        "<p>The validated config with every default filled in.</p>"
        f"<pre>{html.escape(config_yaml)}</pre>"
        "</body></html>\n"
    )


def write_provenance(config: Mapping[str, Any], benchmark_dir: str | Path,
                     html_path: str | Path, json_path: str | Path) -> dict[str, Any]:
    """Collect the provenance and write it as an HTML page and as JSON."""
    prov = collect_provenance(config, benchmark_dir)
    write_json(json_path, prov)
    write_text(html_path, render_provenance_html(prov))
    return prov
