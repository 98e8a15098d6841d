"""Shared test fixtures. Tests build their own tiny data; nothing downloads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Two cores: keep torch from oversubscribing them when several tests or helpers run.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


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
#: The pytest-xdist group of the tests that share the session's tiny DAG run (``dag_run``) and the
#: one SLURM cluster: one worker runs them all, so the DAG runs once and one cluster is up at a time.
DAG_GROUP = "dag"


def pytest_collection_modifyitems(config, items):
    """The longest chain first: the ``DAG_GROUP`` tests go to a worker before the unit tests."""
    def in_dag_group(item) -> bool:
        return any(m.args[:1] == (DAG_GROUP,) for m in item.iter_markers("xdist_group"))

    items.sort(key=lambda item: not in_dag_group(item))
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
