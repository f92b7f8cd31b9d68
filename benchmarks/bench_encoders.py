"""Encoder throughput: the project's pipeline vs the bare tower forward pass, same run.

* images/s through ``PocketEncoder.encode_images`` (decode + preprocess + tower + heads)
  vs the bare EfficientNet-Lite0 forward on pre-made tensors;
* texts/s through ``encode_texts`` (tokenise + tower + head) vs the bare MiniLM forward on
  pre-tokenised batches;
* wall time of a fully cached re-embed of the same data into a workspace.

    python benchmarks/bench_encoders.py [--images 512] [--texts 2048]

Writes ``benchmarks/results/encoders.json``; copy the figures into RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

from modalchorus.data import load_dataset
from modalchorus.embedding import embed_dataset
from modalchorus.encoders import create_encoder
from modalchorus.encoders.preprocess import images_to_tensor
from modalchorus.store import Workspace

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def cpu_model() -> str:
    """The CPU's model name (Linux), else the platform's machine type."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


def best_of_interleaved(fns, repeats: int) -> list[float]:
    """Smallest wall time of each function over ``repeats`` rounds, after one warm-up each.

    The functions alternate within each round, so a burst of load from another process
    hits both sides of a ratio instead of one.
    """
    for fn in fns:
        fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--texts", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    encoder = create_encoder("pocket", device="cpu")
    flickr = load_dataset("flickr8k", data_dir=args.data_dir)
    records = flickr.images[: args.images]
    images = [r.load() for r in records]  # decoded once: both paths start from PIL images
    texts = [c for r in flickr.images for c in r.captions][: args.texts]
    batch = 64

    tensors = [
        images_to_tensor(images[i : i + batch], encoder.image_size)
        for i in range(0, len(images), batch)
    ]

    def bare_images() -> None:
        with torch.inference_mode():
            for x in tensors:
                encoder.image_tower(x)

    tokens = [
        encoder.text_tower.tokenize(texts[i : i + 256], "cpu") for i in range(0, len(texts), 256)
    ]

    def bare_texts() -> None:
        with torch.inference_mode():
            for t in tokens:
                encoder.text_tower(**t)

    t_img_pipe, t_img_bare = best_of_interleaved(
        [lambda: encoder.encode_images(images, batch_size=batch, progress=False), bare_images],
        args.repeats,
    )
    t_txt_pipe, t_txt_bare = best_of_interleaved(
        [lambda: encoder.encode_texts(texts, progress=False), bare_texts], args.repeats
    )

    subset = load_dataset("flickr8k", data_dir=args.data_dir)
    subset.images = records
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.create(Path(tmp) / "ws")
        first = embed_dataset(ws, subset, encoder)
        cached = embed_dataset(ws, subset, encoder)

    result = {
        "date": date.today().isoformat(),
        "machine": f"{cpu_model()}, {torch.get_num_threads()} torch threads",
        "encoder": encoder.id,
        "images": len(images),
        "texts": len(texts),
        "images_per_s_pipeline": len(images) / t_img_pipe,
        "images_per_s_bare_tower": len(images) / t_img_bare,
        "image_ratio": t_img_bare / t_img_pipe,
        "texts_per_s_pipeline": len(texts) / t_txt_pipe,
        "texts_per_s_bare_tower": len(texts) / t_txt_bare,
        "text_ratio": t_txt_bare / t_txt_pipe,
        "first_embed_s": first.seconds,
        "cached_reembed_s": cached.seconds,
        "cached_reembed_items": cached.cache_hits,
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "encoders.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
