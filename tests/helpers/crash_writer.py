"""Writer process for the store's crash-safety tests; the test SIGKILLs it mid-write.

Usage::

    python crash_writer.py WORKSPACE MODE

Modes
-----
hook-put
    One ``put_embeddings`` on encoder ``enc-a`` that overwrites every existing item's
    vector and adds 500 new items. ``head.write_head`` is wrapped so that, once all Lance
    data is written and the head rows are updated inside the still-open SQLite
    transaction, the process prints ``LANCE_WRITTEN`` and sleeps: the kill lands right
    before the commit point, deterministically.
hook-add
    Same, for ``add_dataset`` of a new synthetic dataset ``crashset``.
hook-align
    Same, for an adapter ``run_alignment`` with the intents in the JSON file given as a
    third argument (the run's single commit is where it hangs).
hook-projection
    Same, for a ``put_projection`` that replaces projection ``PROJECTION`` (which the
    workspace must hold) with reversed ids, new coordinates and new model files.
bulk
    A loop of large ``put_embeddings`` calls (``BULK_BATCH`` vectors each) on ``enc-a``,
    printing ``WRITING i`` before and ``COMMITTED i`` after call ``i``, and
    ``LANCE_ADD <table>`` each time a Lance table write starts; the test kills it a
    moment after such a line, i.e. while Lance is writing a batch's data files.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from modalchorus.data.types import Dataset, ImageRecord
from modalchorus.store import Workspace, head, upserts

BULK_BATCH = 100_000
BULK_BATCHES = 50
ENCODER = "enc-a"
PROJECTION = "mfm:crash:enc-a"


def bulk_ids(batch: int) -> list[str]:
    """Item ids of bulk batch ``batch``."""
    return [f"bulk/{batch}/{j}" for j in range(BULK_BATCH)]


def bulk_hashes(batch: int) -> list[str]:
    """Content hashes of bulk batch ``batch``."""
    return [f"bulk-{batch}-{j}" for j in range(BULK_BATCH)]


def bulk_vectors(batch: int, dim: int) -> np.ndarray:
    """Vectors of bulk batch ``batch``, shape (BULK_BATCH, dim), deterministic."""
    return np.random.default_rng(1000 + batch).random((BULK_BATCH, dim), dtype=np.float32)


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def hang_before_commit() -> None:
    """Make the next write stop right before its SQLite COMMIT."""
    original = head.write_head

    def write_head_then_hang(conn, versions, op):  # type: ignore[no-untyped-def]
        seq = original(conn, versions, op)
        say("LANCE_WRITTEN " + ",".join(f"{k}={v}" for k, v in sorted(versions.items())))
        time.sleep(600)
        return seq

    head.write_head = write_head_then_hang


def announce_lance_writes() -> None:
    """Print ``LANCE_ADD <table>`` when each Lance table write of a put starts."""
    original = upserts._upsert

    def upsert(table, key, rows, replaces):  # type: ignore[no-untyped-def]
        say(f"LANCE_ADD {table.name}")
        return original(table, key, rows, replaces)

    upserts._upsert = upsert


def synthetic_dataset(n: int = 50) -> Dataset:
    records = []
    for i in range(n):
        pixels = np.full((24, 24, 3), i * 5 % 256, dtype=np.uint8)
        image = Image.fromarray(pixels)
        records.append(
            ImageRecord(
                id=f"img{i}",
                content_hash=hashlib.sha256(pixels.tobytes()).hexdigest(),
                load=lambda image=image: image,
                label="grey",
                captions=(f"a grey square number {i}",),
            )
        )
    return Dataset("crashset", records, classes=["grey"])


def main() -> None:
    path, mode = sys.argv[1], sys.argv[2]
    ws = Workspace.open(path)
    if mode == "hook-put":
        ids, vectors = ws.get_embeddings(ENCODER)
        ids = ids + [f"crash/{j}" for j in range(500)]
        rng = np.random.default_rng(99)
        new = rng.random((len(ids), vectors.shape[1]), dtype=np.float32)
        hashes = [f"crash-hash-{j}" for j in range(len(ids))]
        hang_before_commit()
        say("STARTED")
        ws.put_embeddings(ENCODER, ids, hashes, new)
    elif mode == "hook-add":
        dataset = synthetic_dataset()
        hang_before_commit()
        say("STARTED")
        ws.add_dataset(dataset)
    elif mode == "hook-projection":
        ids, coords = ws.get_projection(PROJECTION)
        files = {"mfm.safetensors": b"\x01" * 100_000, "crash.json": b'{"crash": true}'}
        hang_before_commit()
        say("STARTED")
        ws.put_projection(
            PROJECTION,
            ENCODER,
            ids[::-1],
            coords + 1000.0,
            method="crash",
            params={"crash": True},
            metrics={},
            model_files=files,
        )
    elif mode == "bulk":
        dim = ws.summary()["encoders"][ENCODER]["dim"]
        announce_lance_writes()
        for batch in range(BULK_BATCHES):
            ids, hashes, vectors = bulk_ids(batch), bulk_hashes(batch), bulk_vectors(batch, dim)
            say(f"WRITING {batch}")
            ws.put_embeddings(ENCODER, ids, hashes, vectors)
            say(f"COMMITTED {batch}")
    elif mode == "hook-align":
        import json

        from modalchorus.align import intent_from_dict, run_alignment

        intents = [intent_from_dict(spec) for spec in json.loads(Path(sys.argv[3]).read_text())]
        hang_before_commit()
        say("STARTED")
        run_alignment(ws, intents, encoder_id=ws.embedded_encoders()[0])
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    say("FINISHED")


if __name__ == "__main__":
    main()
