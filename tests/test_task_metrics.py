"""Task metrics of workspace datasets that are only partly labelled, or have no images left."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from modalchorus.align import SetSet, run_alignment
from modalchorus.data import load_dataset
from modalchorus.embedding import embed_dataset
from modalchorus.evaluation import evaluate_zero_shot, workspace_task_metrics
from modalchorus.store import Workspace
from modalchorus.tasks import class_prompts, zero_shot_report
from modalchorus.tasks.classification import class_embeddings, with_class_prompts

N_IMAGES = 40


@pytest.fixture(scope="module")
def built(tmp_path_factory, data_dir, pocket) -> Path:
    """CIFAR images with class prompts, two images left without a label (as a manifest may)."""
    path = tmp_path_factory.mktemp("tasks") / "ws"
    dataset = with_class_prompts(load_dataset("cifar10", data_dir=data_dir, limit=N_IMAGES))
    images = [replace(r, label=None) if i < 2 else r for i, r in enumerate(dataset.images)]
    dataset = replace(dataset, images=images)
    with Workspace.create(path) as workspace:
        workspace.add_dataset(dataset)
        embed_dataset(workspace, dataset, pocket)
    return path


@pytest.fixture()
def ws(built: Path, tmp_path: Path) -> Workspace:
    """A copy of the built workspace (tests write to it)."""
    shutil.copytree(built, tmp_path / "ws")
    with Workspace.open(tmp_path / "ws") as workspace:
        yield workspace


def test_unlabelled_images_are_left_out_of_zero_shot(ws: Workspace, pocket) -> None:
    report = workspace_task_metrics(ws, pocket.id, "cifar10")
    classes = ws.dataset("cifar10").classes
    images = ws.items(dataset="cifar10", kind="image")
    labelled = images[images["label"].notna()]
    assert report["task"] == "zero-shot classification"
    assert report["n"] == len(labelled) == N_IMAGES - 2
    assert np.array(report["confusion"]).sum() == N_IMAGES - 2
    # The same figures as a direct computation over the labelled images alone.
    texts = ws.items(dataset="cifar10", kind="text")
    _, prompts = ws.get_embeddings(pocket.id, texts["id"].tolist())
    order = np.concatenate([np.flatnonzero(texts["label"].to_numpy() == c) for c in classes])
    centroids = class_embeddings(prompts[order], len(classes))
    _, vectors = ws.get_embeddings(pocket.id, labelled["id"].tolist())
    labels = np.array([classes.index(c) for c in labelled["label"]])
    expected = zero_shot_report(vectors, centroids, labels, classes)
    assert report["accuracy"] == pytest.approx(expected["accuracy"])
    assert report["confusion"] == expected["confusion"]


def test_a_dataset_with_prompts_and_no_images_has_no_task(ws: Workspace, pocket) -> None:
    ws.remove_items(ws.items(dataset="cifar10", kind="image")["id"].tolist())
    assert workspace_task_metrics(ws, pocket.id, "cifar10") == {"task": None, "dataset": "cifar10"}


def test_an_alignment_run_completes_on_a_dataset_without_images(ws: Workspace, pocket) -> None:
    ws.remove_items(ws.items(dataset="cifar10", kind="image")["id"].tolist())
    texts = ws.items(dataset="cifar10", kind="text")
    cats = ws.create_set("cat prompts", texts[texts["label"] == "cat"]["id"].tolist())
    dogs = ws.create_set("dog prompts", texts[texts["label"] == "dog"]["id"].tolist())
    run = run_alignment(
        ws, [SetSet(cats.id, dogs.id, mode="separate")], encoder_id=pocket.id, scope="adapter"
    )
    assert (
        run.metrics_before["cifar10"]
        == run.metrics_after["cifar10"]
        == {
            "task": None,
            "dataset": "cifar10",
        }
    )
    assert ws.active_run(pocket.id).id == run.id


def test_eval_encoder_encodes_in_batches_with_progress(data_dir, pocket) -> None:
    dataset = load_dataset("cifar10", data_dir=data_dir, limit=70)
    reports: list[tuple[float, str]] = []
    report = evaluate_zero_shot(pocket, dataset, progress=lambda f, m: reports.append((f, m)))
    assert reports == [(64 / 70, "encoded 64 of 70 images"), (1.0, "encoded 70 of 70 images")]
    # The same as encoding every image at once.
    classes = class_embeddings(pocket.encode_texts(class_prompts(dataset.classes)), 10)
    images = pocket.encode_images([r.load() for r in dataset.images])
    labels = np.array([dataset.classes.index(r.label) for r in dataset.images])
    expected = zero_shot_report(images, classes, labels, dataset.classes)
    assert report["confusion"] == expected["confusion"] and report["n"] == 70
