"""Validation and planning for embedding writes (pure functions, no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class EmbeddingBatch:
    """A validated ``put_embeddings`` call.

    Attributes
    ----------
    encoder_id : str
    item_ids : list[str]
        Length n, unique.
    content_hashes : list[str]
        Length n.
    vectors : np.ndarray
        Shape (n, d), float32, C-contiguous, all finite.
    """

    encoder_id: str
    item_ids: list[str]
    content_hashes: list[str]
    vectors: np.ndarray

    @property
    def dim(self) -> int:
        """Embedding dimension ``d``."""
        return int(self.vectors.shape[1])


def check_strings(name: str, values: Sequence[str]) -> list[str]:
    """``values`` as a list, after checking every entry is a non-empty string.

    Raises
    ------
    ValueError
        ``values`` is a single string, or an entry is not a non-empty string.
    """
    if isinstance(values, str):
        raise ValueError(f"{name} must be a sequence of strings, not a single string")
    out = list(values)
    for i, value in enumerate(out):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name}[{i}] must be a non-empty string, got {value!r}")
    return out


def validate_embeddings(
    encoder_id: str,
    item_ids: Sequence[str],
    content_hashes: Sequence[str],
    vectors: np.ndarray,
) -> EmbeddingBatch:
    """Check a ``put_embeddings`` call before anything is written.

    Parameters
    ----------
    encoder_id : str
        Non-empty encoder id.
    item_ids : Sequence[str]
        Length n, unique, non-empty strings.
    content_hashes : Sequence[str]
        Length n, non-empty strings.
    vectors : np.ndarray
        Shape (n, d), floating point, finite; cast to float32.

    Returns
    -------
    EmbeddingBatch

    Raises
    ------
    ValueError
        Naming the problem: bad ids, length mismatch, wrong ndim or dtype, NaN/inf, one
        content hash with different vectors.
    """
    if not isinstance(encoder_id, str) or not encoder_id:
        raise ValueError(f"encoder_id must be a non-empty string, got {encoder_id!r}")
    ids = check_strings("item_ids", item_ids)
    hashes = check_strings("content_hashes", content_hashes)
    try:
        array = np.asarray(vectors)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(f"vectors must be a 2-D array with shape (n, d): {exc}") from None
    if array.dtype.kind != "f":
        raise ValueError(f"vectors must be a floating-point array, got dtype {array.dtype}")
    if array.ndim != 2:
        raise ValueError(f"vectors must be 2-D with shape (n, d), got shape {array.shape}")
    if not (len(ids) == len(hashes) == array.shape[0]):
        raise ValueError(
            f"length mismatch: {len(ids)} item_ids, {len(hashes)} content_hashes, "
            f"{array.shape[0]} vectors"
        )
    if array.shape[1] < 1:
        raise ValueError(f"vectors must have at least one dimension, got shape {array.shape}")
    if len(set(ids)) != len(ids):
        dup = first_duplicate(ids)
        raise ValueError(f"item_ids must be unique; {dup!r} appears more than once")
    array = finite_float32("vectors", array, ids)
    _check_one_vector_per_hash(ids, hashes, array)
    return EmbeddingBatch(encoder_id, ids, hashes, array)


def finite_float32(what: str, array: np.ndarray, ids: list[str]) -> np.ndarray:
    """``array`` (floating, shape (n, d)) as C-contiguous float32, every row finite.

    Raises ``ValueError`` naming the first bad row and its item: NaN or inf in the input,
    or else finite values beyond float32's range (they would be stored as inf).
    """
    with np.errstate(over="ignore"):  # overflow becomes inf, reported just below
        out = np.ascontiguousarray(array, dtype=np.float32)
    finite = np.isfinite(out).all(axis=1)
    if finite.all():
        return out
    bad = np.flatnonzero(~finite)
    in_input = bad[~np.isfinite(array[bad]).all(axis=1)]
    problem = "NaN or inf" if in_input.size else "values beyond float32's range (max ~3.4e38)"
    bad = in_input if in_input.size else bad
    first = int(bad[0])
    raise ValueError(
        f"{what} contain {problem} in {bad.size} row(s), first row {first} (item {ids[first]!r})"
    )


def _check_one_vector_per_hash(ids: list[str], hashes: list[str], vectors: np.ndarray) -> None:
    """Items with the same content hash share one cached vector, so they must agree.

    A tolerance of 1e-4 of the row norm allows for batch-dependent float rounding.
    """
    _, first, group = np.unique(np.asarray(hashes), return_index=True, return_inverse=True)
    if first.size == len(hashes):
        return
    reference = vectors[first[group]]
    gap = np.linalg.norm(vectors - reference, axis=1)
    scale = np.maximum(np.linalg.norm(reference, axis=1), 1e-12)
    bad = np.flatnonzero(gap > 1e-4 * scale)
    if bad.size:
        row, other = int(bad[0]), int(first[group[bad[0]]])
        raise ValueError(
            f"items {ids[other]!r} and {ids[row]!r} have the same content hash "
            f"{hashes[row]!r} but different vectors"
        )


def first_duplicate(values: list[str]) -> str:
    """The first value of ``values`` that repeats an earlier one (there must be one)."""
    seen: set[str] = set()
    for value in values:
        if value in seen:
            return value
        seen.add(value)
    raise AssertionError("no duplicate")


def check_dim(encoder_id: str, stored_dim: int | None, dim: int) -> None:
    """Raise ``ValueError`` when ``dim`` differs from the encoder's stored dimension."""
    if stored_dim is not None and stored_dim != dim:
        raise ValueError(
            f"dimension mismatch for encoder {encoder_id!r}: the workspace stores "
            f"{stored_dim}-d vectors for it, got {dim}-d"
        )


def last_occurrence(keys: list[str]) -> np.ndarray:
    """Positions of the last occurrence of each distinct key, in first-seen key order.

    Returns
    -------
    np.ndarray
        Shape (u,), int64.
    """
    last: dict[str, int] = {}
    for i, key in enumerate(keys):
        last[key] = i
    return np.fromiter(last.values(), dtype=np.int64, count=len(last))


def positions(values: Sequence[str] | pa.Array, value_set: pa.Array) -> np.ndarray:
    """Position of each value in ``value_set`` (vectorised hash lookup), -1 where absent.

    Parameters
    ----------
    values : Sequence[str] | pa.Array
        Shape (n,).
    value_set : pa.Array
        Shape (m,), unique strings.

    Returns
    -------
    np.ndarray
        Shape (n,), int64.
    """
    if isinstance(values, pa.Array | pa.ChunkedArray):
        arr = values
    else:
        arr = pa.array(values, pa.string())
    if len(value_set) == 0:
        return np.full(len(arr), -1, dtype=np.int64)
    pos = pc.index_in(arr, value_set=value_set)
    return pc.fill_null(pos, -1).to_numpy(zero_copy_only=False).astype(np.int64)
