"""Embed a dataset into a workspace: the cache-aware pipeline behind ``modalchorus embed``.

Items whose (encoder id, content hash) is already cached are never re-encoded; identical
content inside one dataset is encoded once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from modalchorus.data import Dataset
from modalchorus.encoders import Encoder
from modalchorus.store import AddResult, Workspace, image_item_id

LOG = logging.getLogger(__name__)

#: Decoded pixels held at once while encoding images: a batch of photos, or a few very
#: large images (each up to the loaders' 40-megapixel limit) at a time.
MAX_PIXELS_IN_FLIGHT = 50_000_000


@dataclass(frozen=True)
class EmbedReport:
    """What :func:`embed_dataset` did."""

    dataset: str
    encoder: str
    added: AddResult
    images_encoded: int
    texts_encoded: int
    cache_hits: int
    seconds: float


def _encode_missing(
    frame: pd.DataFrame, cached: dict[str, np.ndarray], encode, dim: int
) -> tuple[np.ndarray, int]:
    """Vectors for every row of ``frame``: cached ones reused, the rest encoded once each.

    Returns the (n, dim) array and how many distinct contents were encoded.
    """
    hashes = frame["content_hash"].tolist()
    todo: dict[str, int] = {}  # content hash -> first row needing it
    for row, h in enumerate(hashes):
        if h not in cached and h not in todo:
            todo[h] = row
    fresh = dict(zip(todo, encode(list(todo.values())), strict=True)) if todo else {}
    vectors = np.empty((len(hashes), dim), dtype=np.float32)
    for row, h in enumerate(hashes):
        vectors[row] = cached[h] if h in cached else fresh[h]
    return vectors, len(todo)


def embed_dataset(
    workspace: Workspace,
    dataset: Dataset,
    encoder: Encoder,
    batch_size: int = 64,
    progress: Callable[[float, str], None] | None = None,
) -> EmbedReport:
    """Add ``dataset`` to ``workspace`` and store ``encoder``'s embeddings of all its items.

    The items and the embeddings are two atomic writes: if encoding fails or the process
    dies, the workspace holds the items (or nothing new) but never partial embeddings.

    Parameters
    ----------
    workspace : Workspace
    dataset : Dataset
    encoder : Encoder
    batch_size : int
        Images per encoder batch.
    progress : callable, optional
        ``progress(fraction, message)`` after each image batch and after the texts.

    Returns
    -------
    EmbedReport
    """
    report = progress or (lambda fraction, message: None)
    start = time.perf_counter()
    added = workspace.add_dataset(dataset)
    items = workspace.items(dataset=dataset.name)
    records = {image_item_id(dataset.name, r.id): r for r in dataset.images}
    images = items[items["kind"] == "image"].reset_index(drop=True)
    texts = items[items["kind"] == "text"].reset_index(drop=True)
    cached = workspace.cached_vectors(encoder.id, items["content_hash"].tolist())

    def encode_images(rows: list[int]) -> np.ndarray:
        # Decode a batch at a time (a folder of photos would not fit in memory at once).
        chunks, batch, pixels = [], [], 0
        for done, r in enumerate(rows, start=1):
            image = records[images["id"][r]].load()
            batch.append(image)
            pixels += image.width * image.height
            if len(batch) == batch_size or pixels >= MAX_PIXELS_IN_FLIGHT or done == len(rows):
                chunks.append(encoder.encode_images(batch, batch_size=batch_size))
                batch, pixels = [], 0
                # Images take most of the time; the texts get the last tenth.
                report(0.9 * done / len(rows), f"encoded {done} of {len(rows)} images")
        return np.concatenate(chunks)

    def encode_texts(rows: list[int]) -> np.ndarray:
        return encoder.encode_texts([texts["text"][r] for r in rows])

    image_vectors, n_images = _encode_missing(images, cached, encode_images, encoder.dim)
    text_vectors, n_texts = _encode_missing(texts, cached, encode_texts, encoder.dim)
    report(1.0, f"encoded {n_images} images and {n_texts} texts")
    workspace.put_embeddings(
        encoder.id,
        images["id"].tolist() + texts["id"].tolist(),
        images["content_hash"].tolist() + texts["content_hash"].tolist(),
        np.concatenate([image_vectors, text_vectors]),
    )
    hits = len(items) - n_images - n_texts
    LOG.info(
        "%s: encoded %d images, %d texts; %d cache hits", dataset.name, n_images, n_texts, hits
    )
    return EmbedReport(
        dataset.name, encoder.id, added, n_images, n_texts, hits, time.perf_counter() - start
    )
