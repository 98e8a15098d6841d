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
