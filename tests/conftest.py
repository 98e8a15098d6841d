"""Shared test fixtures. Tests build their own tiny data; nothing downloads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Two cores: keep torch from oversubscribing them when several tests or helpers run.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def trust_weights(monkeypatch, key: str, path) -> None:
    """Make ``path``'s SHA-256 the expected one of metric weights ``key`` for this test (random
    test weights under a real name: without it they are refused, as a wrong file must be)."""
    import dataclasses

    from sonodiff.metrics import weights

    monkeypatch.setitem(weights.WEIGHTS, key,
                        dataclasses.replace(weights.WEIGHTS[key], sha256=weights.file_sha256(path)))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


#: The SegThy phantom (volunteers with several 3D sweeps in SegThy's real layout) as a dataset
#: block: the demo's config leaves it out to finish in its 10 minutes, the tests add it.
PHANTOM_SEGTHY = {
    "format": "segthy",
    "source": {"simulate": {"phantom": "segthy", "patients": 4, "sweeps": 2, "mode": "fast", "size": 64,
                            "slices": 6, "seed": 2}},
    "slice_axis": 2, "img_size": 32,
    "labels": {"background": 0, "thyroid": 1, "carotid": [2, 4], "jugular": [3, 5]},
    "required_label": "thyroid", "probe": "linear",
}


@pytest.fixture(scope="session")
def segthy_config(default_config):
    """The default config with the SegThy phantom as dataset ``phantom_segthy``."""
    import copy

    from sonodiff.config import validate_config

    cfg = copy.deepcopy(default_config)
    cfg["datasets"]["phantom_segthy"] = copy.deepcopy(PHANTOM_SEGTHY)
    return validate_config(cfg)


@pytest.fixture(scope="session")
def default_config():
    from sonodiff.config import load_config

    return load_config(ROOT / "config" / "config.yaml")


SNAKEMAKE = str(Path(__import__("sys").executable).with_name("snakemake"))


def run_snakemake(workdir: Path, *args: str, configfile: Path | None = None, timeout: int = 1800):
    """Run this repository's Snakefile with ``workdir`` as working directory."""
    import subprocess

    cmd = [SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(configfile or ROOT / "config" / "config.yaml"), *args]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


TEST_CONFIG = ROOT / "config" / "test.yaml"
#: The tests that share the session's tiny DAG run (``dag_run``) and the one SLURM cluster
#: (node-id prefixes): under pytest-xdist one worker runs them all, first (:func:`pytest_xdist_make_scheduler`).
DAG_TESTS = ("tests/test_slurm.py::", "tests/test_workflow.py::test_tiny_dag_runs")


@pytest.hookimpl(optionalhook=True)  # without xdist (-p no:xdist) the hook does not exist
def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist's scheduling for ``make test -n N``: the :data:`DAG_TESTS` are one work unit
    (the DAG runs once, one cluster is up at a time), sent out first since it is the longest
    chain; every other test is its own unit. (xdist 3.8's ``--dist loadgroup`` marks groups by
    renaming node ids, which pytest 9 no longer lets it do.)"""
    from xdist.scheduler import LoadScopeScheduling

    class DagTestsFirst(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "dag" if nodeid.startswith(DAG_TESTS) else nodeid

    return DagTestsFirst(config, log)
DEMO_CONFIG = ROOT / "config" / "config.yaml"


def _whole_dag(workdir: Path, configfile: Path) -> Path:
    proc = run_snakemake(workdir, "--cores", "2", configfile=configfile, timeout=2400)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-8000:]
    return workdir


@pytest.fixture(scope="session")
def dag_run(tmp_path_factory):
    """The whole DAG on the tiny test config (every rule, both variants, both model kinds, every
    table), run once per test session in a scratch folder."""
    return _whole_dag(tmp_path_factory.mktemp("dag"), TEST_CONFIG)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """The whole DAG on the default config (the user's demo, what `make run` runs), run once."""
    return _whole_dag(tmp_path_factory.mktemp("demo"), DEMO_CONFIG)
