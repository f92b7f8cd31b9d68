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


@pytest.fixture(scope="session")
def pocket():
    """The real default encoder (offline), loaded once per test session."""
    from modalchorus.encoders import create_encoder

    return create_encoder("pocket", device="cpu")


@pytest.fixture()
def small_manifest(tmp_path: Path, data_dir: Path) -> Path:
    """A JSONL manifest of 6 real COCO-mini photos with 2 captions each."""
    import json

    records = json.loads((data_dir / "coco_mini_captions" / "captions.json").read_text())[:6]
    path = tmp_path / "manifest.jsonl"
    with path.open("w") as f:
        for rec in records:
            image = str(data_dir / "coco_mini_captions" / rec["image"])
            for caption in rec["captions"][:2]:
                f.write(json.dumps({"image": image, "caption": caption}) + "\n")
    return path
