"""Embedding a dataset into a real workspace: cache hits, re-embedding only what changed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from modalchorus.data import load_manifest
from modalchorus.embedding import embed_dataset
from modalchorus.store import Workspace


def test_second_embed_is_all_cache_hits(tmp_path, pocket, small_manifest) -> None:
    ws = Workspace.create(tmp_path / "ws")
    dataset = load_manifest(small_manifest, caption_column="caption", name="mini")
    first = embed_dataset(ws, dataset, pocket)
    assert (first.images_encoded, first.texts_encoded, first.cache_hits) == (6, 12, 0)
    ids, vectors = ws.get_embeddings(pocket.id)
    assert len(ids) == 18 and vectors.shape == (18, 384)

    second = embed_dataset(ws, dataset, pocket)
    assert (second.images_encoded, second.texts_encoded, second.cache_hits) == (0, 0, 18)
    _, again = ws.get_embeddings(pocket.id, ids)
    np.testing.assert_array_equal(vectors, again)

    # The stored vectors are the encoder's: recompute one image and one caption directly.
    items = ws.items(dataset="mini").set_index("id")
    text_id = next(i for i in ids if "#" in i)
    direct = pocket.encode_texts([items.loc[text_id, "text"]])[0]
    np.testing.assert_allclose(vectors[ids.index(text_id)], direct, atol=1e-5)


def test_changed_caption_is_the_only_new_encoding(tmp_path, pocket, small_manifest) -> None:
    ws = Workspace.create(tmp_path / "ws")
    embed_dataset(ws, load_manifest(small_manifest, caption_column="caption", name="mini"), pocket)
    rows = [json.loads(line) for line in small_manifest.read_text().splitlines()]
    rows[0]["caption"] = "An entirely new caption about a red bicycle."
    edited = small_manifest.with_name("edited.jsonl")
    edited.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = embed_dataset(ws, load_manifest(edited, caption_column="caption", name="mini"), pocket)
    assert (report.images_encoded, report.texts_encoded) == (0, 1)


def test_images_are_decoded_a_batch_at_a_time(tmp_path, pocket, small_manifest, monkeypatch):
    """Decoded images are held a batch (or a pixel budget) at a time, with the same vectors."""
    import modalchorus.embedding as embedding

    dataset = load_manifest(small_manifest, caption_column="caption", name="mini")
    whole = Workspace.create(tmp_path / "whole")
    embed_dataset(whole, dataset, pocket)
    batches: list[int] = []

    class Counting:
        id, dim = pocket.id, pocket.dim

        def encode_images(self, images, batch_size=64):
            batches.append(len(images))
            return pocket.encode_images(images, batch_size=batch_size)

        def encode_texts(self, texts):
            return pocket.encode_texts(texts)

    monkeypatch.setattr(embedding, "MAX_PIXELS_IN_FLIGHT", 1)  # every image fills the budget
    chunked = Workspace.create(tmp_path / "chunked")
    report = embed_dataset(chunked, dataset, Counting())
    assert report.images_encoded == 6 and batches == [1] * 6
    ids, vectors = chunked.get_embeddings(pocket.id)
    np.testing.assert_allclose(vectors, whole.get_embeddings(pocket.id, ids)[1], atol=1e-5)
    batches.clear()
    monkeypatch.setattr(embedding, "MAX_PIXELS_IN_FLIGHT", 10**9)
    steps: list[tuple[float, str]] = []
    ws = Workspace.create(tmp_path / "fours")
    embed_dataset(ws, dataset, Counting(), batch_size=4, progress=lambda *a: steps.append(a))
    assert batches == [4, 2]
    assert steps == [
        (0.9 * 4 / 6, "encoded 4 of 6 images"),
        (0.9, "encoded 6 of 6 images"),
        (1.0, "encoded 6 images and 12 texts"),
    ]


def test_an_interrupted_embed_stores_nothing(tmp_path, pocket, small_manifest) -> None:
    """Ctrl-C while encoding (here: during the texts, after every image) leaves the
    workspace as it was, never items without vectors; the next embed does the whole job."""
    dataset = load_manifest(small_manifest, caption_column="caption", name="mini")

    class Interrupted:
        id, dim = pocket.id, pocket.dim

        def encode_images(self, images, batch_size=64):
            return pocket.encode_images(images, batch_size=batch_size)

        def encode_texts(self, texts):
            raise KeyboardInterrupt

    ws = Workspace.create(tmp_path / "ws")
    with pytest.raises(KeyboardInterrupt):
        embed_dataset(ws, dataset, Interrupted())
    assert ws.datasets() == [] and ws.items().empty and ws.embedded_encoders() == []
    assert ws.summary()["last_commit"] is None

    report = embed_dataset(ws, dataset, pocket)
    assert (report.images_encoded, report.texts_encoded) == (6, 12)
    assert len(ws.get_embeddings(pocket.id, dataset="mini")[0]) == len(ws.items()) == 18
    assert ws.summary()["last_commit"]["seq"] == 1  # items and vectors: one commit
