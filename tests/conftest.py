"""Shared fixtures: where the real datasets live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_datasets_dir() -> Path:
    env = os.environ.get("MODALCHORUS_DATA_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = shared_datasets_dir()
    if not (path / "cifar10").is_dir():
        pytest.fail(f"real datasets not found at {path}; set MODALCHORUS_DATA_DIR")
    return path
