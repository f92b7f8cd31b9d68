"""The built-in demo workspace, made offline from the demo pack in ``assets/demo``.

The pack holds 2,000 CIFAR-10 test images (200 per class, with labels) and the 159
COCO-mini photos with their 795 captions; ``scripts/build_demo_pack.py`` makes it from
the shared datasets. It is read with the project's own manifest loader.
"""

from __future__ import annotations

from pathlib import Path

from modalchorus.data import Dataset, load_manifest
from modalchorus.embedding import EmbedReport, embed_dataset
from modalchorus.encoders import Encoder
from modalchorus.store import Workspace
from modalchorus.tasks.classification import with_class_prompts

DEMO_PACK = Path(__file__).resolve().parent / "assets" / "demo"
DEMO_CLASSIFICATION = "cifar10-demo"
DEMO_RETRIEVAL = "coco-mini"


def demo_datasets() -> list[Dataset]:
    """The demo pack's two datasets: labelled CIFAR-10 images (+ class prompts) and COCO photos."""
    cifar = with_class_prompts(
        load_manifest(
            DEMO_PACK / "cifar10" / "manifest.csv", label_column="label", name=DEMO_CLASSIFICATION
        )
    )
    coco = load_manifest(
        DEMO_PACK / "coco-mini" / "captions.jsonl",
        caption_column="caption",
        split_column="split",
        name=DEMO_RETRIEVAL,
    )
    return [cifar, coco]


def build_demo_workspace(path: str | Path, encoder: Encoder) -> tuple[Workspace, list[EmbedReport]]:
    """Open (or create) the demo workspace at ``path`` and make sure it is fully embedded.

    Cheap when already built: every item is a cache hit.
    """
    workspace = Workspace.open_or_create(path)
    reports = [embed_dataset(workspace, ds, encoder) for ds in demo_datasets()]
    return workspace, reports
