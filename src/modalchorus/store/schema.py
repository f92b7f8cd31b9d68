"""On-disk schema of a workspace: SQLite catalog tables and Lance table layouts.

A workspace directory holds::

    workspace.sqlite          catalog: marker + schema version, head pointer, commit log,
                              dataset metadata, encoder registry, projection metadata,
                              sets and their members, intents, alignment runs with
                              their weights and the active run per encoder family
                              (SQLite, WAL mode)
    lance/                    LanceDB database with the bulk tables:
      items.lance             one row per item (image or caption text), thumbnails inline
      cache_<key>.lance       per encoder: content_hash -> vector (the embedding cache)
      embeddings_<key>.lance  per encoder: item_id -> content_hash (which vector an item has)
      projection_coords.lance every projection's (item_id, x, y) rows, keyed by projection
      projection_files.lance  model files of projections (e.g. a fitted MFM), keyed likewise

``<key>`` is the first 16 hex digits of sha256(encoder id), recorded in the ``encoders``
table, because encoder ids contain characters table names may not (``hf:org/model``).
Projection rows are keyed by the full sha256 hex of the projection name (recorded in
the ``projections`` table), so Lance filter expressions never need escaping.

Schema evolution
----------------
Tables added to the catalog without changing any existing table (``ADDED_DDL``: projections,
sets, intents and alignment runs) do not bump :data:`SCHEMA_VERSION`: older code ignores them, and
:func:`modalchorus.store.catalog.upgrade` creates them when a workspace written before
they existed is opened. Incompatible changes bump the version and need a migration.
"""

from __future__ import annotations

import hashlib

import pyarrow as pa

#: Version of the catalog + table layout below. Bump and migrate on incompatible change.
SCHEMA_VERSION = 1

#: SQLite ``application_id`` ("MCHO") marking the catalog as a ModalChorus workspace.
APPLICATION_ID = 0x4D43484F

CATALOG_FILE = "workspace.sqlite"
LANCE_DIR = "lance"

#: Item kinds the store writes.
KINDS = ("image", "text")

ITEMS_TABLE = "items"
PROJECTION_COORDS_TABLE = "projection_coords"
PROJECTION_FILES_TABLE = "projection_files"

CATALOG_DDL = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- The commit pointer: the Lance version of every table that readers must see.
CREATE TABLE head (
    table_name TEXT PRIMARY KEY,
    version    INTEGER NOT NULL
);
-- Append-only log of committed writes (audit / debugging).
CREATE TABLE commits (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    op         TEXT NOT NULL,
    tables     TEXT NOT NULL          -- JSON {table_name: version} written by this commit
);
CREATE TABLE datasets (
    name       TEXT PRIMARY KEY,
    classes    TEXT,                  -- JSON list of class names, or NULL
    skipped    TEXT NOT NULL,         -- JSON list of {"id", "reason"}
    n_images   INTEGER NOT NULL,
    n_texts    INTEGER NOT NULL,
    added_at   TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE encoders (
    encoder_id TEXT PRIMARY KEY,
    table_key  TEXT NOT NULL UNIQUE,
    dim        INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"""

#: Catalog tables added after version 1 shipped (created on open when missing).
ADDED_TABLES = (
    "projections",
    "sets",
    "set_items",
    "intents",
    "alignment_runs",
    "alignment_run_files",
    "alignment_active",
)

ADDED_DDL = """
CREATE TABLE IF NOT EXISTS projections (
    name        TEXT PRIMARY KEY,
    key         TEXT NOT NULL UNIQUE,  -- sha256 hex of name: the rows' key in Lance tables
    encoder_id  TEXT NOT NULL,
    method      TEXT NOT NULL,
    params      TEXT NOT NULL,         -- JSON object
    metrics     TEXT NOT NULL,         -- JSON object
    n_items     INTEGER NOT NULL,
    model_files TEXT NOT NULL,         -- JSON list of file names in projection_files
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sets (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    color       TEXT,
    description TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS set_items (
    set_id   INTEGER NOT NULL REFERENCES sets(id),
    position INTEGER NOT NULL,
    item_id  TEXT NOT NULL,
    PRIMARY KEY (set_id, position)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS intents (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    spec       TEXT NOT NULL,          -- JSON object (see modalchorus.align.intents)
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alignment_runs (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    parent_run_id     INTEGER REFERENCES alignment_runs(id),  -- NULL: tuned from the base
    base_encoder_id   TEXT NOT NULL,
    parent_encoder_id TEXT NOT NULL,
    encoder_id        TEXT NOT NULL UNIQUE,  -- the embedding version this run produced
    scope             TEXT NOT NULL,
    intents           TEXT NOT NULL,         -- JSON list of intent objects
    params            TEXT NOT NULL,         -- JSON object
    metrics_before    TEXT NOT NULL,         -- JSON {dataset: task metrics}
    metrics_after     TEXT NOT NULL,
    moved             TEXT NOT NULL,         -- JSON list of {item_id, dataset, distance}
    seconds           REAL NOT NULL,
    created_at        TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alignment_run_files (
    run_id   INTEGER NOT NULL REFERENCES alignment_runs(id),
    filename TEXT NOT NULL,
    data     BLOB NOT NULL,
    PRIMARY KEY (run_id, filename)
) WITHOUT ROWID;
-- Which run's version is current, per encoder family (no row: the base encoder).
CREATE TABLE IF NOT EXISTS alignment_active (
    base_encoder_id TEXT PRIMARY KEY,
    run_id          INTEGER REFERENCES alignment_runs(id)
)
"""

ITEMS_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("label", pa.string()),
        pa.field("split", pa.string()),
        pa.field("text", pa.string()),
        pa.field("image_id", pa.string()),
        pa.field("content_hash", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("ordinal", pa.int64(), nullable=False),  # image's position in the dataset
        pa.field("caption_index", pa.int32()),  # j of a caption text, null for images
        pa.field("fingerprint", pa.string(), nullable=False),  # hash of all fields above
        pa.field("thumbnail_size", pa.int32()),  # longest side asked for, null for texts
        pa.field("thumbnail", pa.binary()),  # JPEG bytes for images, null for texts
    ]
)

#: Columns ``Workspace.items`` returns (in this order) unless thumbnails are asked for.
ITEM_PUBLIC_COLUMNS = (
    "id",
    "kind",
    "dataset",
    "label",
    "split",
    "text",
    "image_id",
    "content_hash",
    "source",
)

EMBEDDINGS_SCHEMA = pa.schema(
    [
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("content_hash", pa.string(), nullable=False),
    ]
)

PROJECTION_COORDS_SCHEMA = pa.schema(
    [
        pa.field("projection", pa.string(), nullable=False),  # projections.key
        pa.field("ordinal", pa.int64(), nullable=False),  # row in the stored order
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("x", pa.float32(), nullable=False),
        pa.field("y", pa.float32(), nullable=False),
    ]
)

PROJECTION_FILES_SCHEMA = pa.schema(
    [
        pa.field("projection", pa.string(), nullable=False),  # projections.key
        pa.field("filename", pa.string(), nullable=False),
        pa.field("data", pa.large_binary(), nullable=False),
    ]
)


def cache_schema(dim: int) -> pa.Schema:
    """Arrow schema of an encoder's vector cache table.

    Parameters
    ----------
    dim : int
        Embedding dimension ``d``.

    Returns
    -------
    pa.Schema
        ``content_hash: string``, ``vector: fixed_size_list<float32, d>``.
    """
    return pa.schema(
        [
            pa.field("content_hash", pa.string(), nullable=False),
            pa.field("vector", pa.list_(pa.field("item", pa.float32()), dim), nullable=False),
        ]
    )


def is_row_id(value: int) -> bool:
    """Whether ``value`` fits SQLite's 64-bit integers (larger ids cannot name a row)."""
    return -(2**63) <= value < 2**63


def encoder_table_key(encoder_id: str) -> str:
    """Table-name-safe key of an encoder id: first 16 hex digits of its sha256."""
    return hashlib.sha256(encoder_id.encode("utf-8")).hexdigest()[:16]


def cache_table(table_key: str) -> str:
    """Name of the Lance table holding an encoder's content_hash -> vector cache."""
    return f"cache_{table_key}"


def embeddings_table(table_key: str) -> str:
    """Name of the Lance table holding an encoder's item_id -> content_hash assignments."""
    return f"embeddings_{table_key}"


def projection_key(name: str) -> str:
    """Key of a projection's rows in the projection tables: sha256 hex of its name."""
    return hashlib.sha256(name.encode("utf-8")).hexdigest()
