"""Embed a dataset into a workspace: the cache-aware pipeline behind ``modalchorus embed``.

Items whose (encoder id, content hash) is already cached are never re-encoded; identical
content inside one dataset is encoded once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from modalchorus.data import Dataset
from modalchorus.data.types import ImageRecord
from modalchorus.encoders import Encoder
from modalchorus.store import AddResult, Workspace
from modalchorus.store.items import build_item_rows
from modalchorus.store.thumbnails import DEFAULT_THUMBNAIL_SIZE

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


def encode_image_records(
    encoder: Encoder,
    records: Sequence[ImageRecord],
    batch_size: int = 64,
    progress: Callable[[float, str], None] | None = None,
) -> np.ndarray:
    """Encode the images of ``records``, decoding one batch at a time.

    A folder of photos would not fit in memory decoded at once: a batch holds at most
    ``batch_size`` images and :data:`MAX_PIXELS_IN_FLIGHT` pixels.

    Parameters
    ----------
    encoder : Encoder
    records : sequence of ImageRecord
        At least one.
    batch_size : int
        Images per encoder batch.
    progress : callable, optional
        ``progress(fraction, "encoded i of n images")`` after each batch.

    Returns
    -------
    ndarray, shape (len(records), encoder.dim)
    """
    chunks, batch, pixels = [], [], 0
    for done, record in enumerate(records, start=1):
        image = record.load()
        batch.append(image)
        pixels += image.width * image.height
        if len(batch) == batch_size or pixels >= MAX_PIXELS_IN_FLIGHT or done == len(records):
            chunks.append(encoder.encode_images(batch, batch_size=batch_size))
            batch, pixels = [], 0
            if progress is not None:
                progress(done / len(records), f"encoded {done} of {len(records)} images")
    return np.concatenate(chunks)


def embed_dataset(
    workspace: Workspace,
    dataset: Dataset,
    encoder: Encoder,
    batch_size: int = 64,
    progress: Callable[[float, str], None] | None = None,
) -> EmbedReport:
    """Add ``dataset`` to ``workspace`` and store ``encoder``'s embeddings of all its items.

    Everything is encoded first, then the items and their embeddings are stored in one
    atomic write: if encoding fails, the process dies or Ctrl-C stops it, the workspace
    holds nothing new, never items without vectors. Data that is stored and embedded
    already writes nothing.

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
    # The ids and content hashes add_dataset will store, known before anything is stored
    # (the thumbnail size only enters the rows' fingerprints, which are not used here).
    item_rows = build_item_rows(dataset, DEFAULT_THUMBNAIL_SIZE)
    items = item_rows.table.select(["id", "kind", "text", "content_hash"]).to_pandas()
    is_image = (items["kind"] == "image").to_numpy()
    records = [r for r, keep in zip(item_rows.records, is_image, strict=True) if keep]
    images = items[is_image].reset_index(drop=True)
    texts = items[~is_image].reset_index(drop=True)
    cached = workspace.cached_vectors(encoder.id, items["content_hash"].tolist())

    def encode_images(rows: list[int]) -> np.ndarray:
        # Images take most of the time; the texts get the last tenth.
        return encode_image_records(
            encoder,
            [records[r] for r in rows],
            batch_size,
            lambda fraction, message: report(0.9 * fraction, message),
        )

    def encode_texts(rows: list[int]) -> np.ndarray:
        return encoder.encode_texts([texts["text"][r] for r in rows])

    image_vectors, n_images = _encode_missing(images, cached, encode_images, encoder.dim)
    text_vectors, n_texts = _encode_missing(texts, cached, encode_texts, encoder.dim)
    report(1.0, f"encoded {n_images} images and {n_texts} texts")
    added = workspace.add_dataset(
        dataset,
        embeddings=(
            encoder.id,
            images["id"].tolist() + texts["id"].tolist(),
            images["content_hash"].tolist() + texts["content_hash"].tolist(),
            np.concatenate([image_vectors, text_vectors]),
        ),
    )
    hits = len(items) - n_images - n_texts
    LOG.info(
        "%s: encoded %d images, %d texts; %d cache hits", dataset.name, n_images, n_texts, hits
    )
    return EmbedReport(
        dataset.name, encoder.id, added, n_images, n_texts, hits, time.perf_counter() - start
    )
