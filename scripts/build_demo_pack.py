"""Build the compact offline demo pack committed under ``src/modalchorus/assets/demo``.

* ``cifar10/``: the first 200 test images of each CIFAR-10 class (2,000 PNGs, 32x32) and
  ``manifest.csv`` (image, label, source index);
* ``coco-mini/``: the 159 COCO-mini photos, re-encoded at most 192 px, and
  ``captions.jsonl`` (one row per caption);
* each source's README (provenance and licence) copied as ``ATTRIBUTION.md``.

The demo workspace is built from these files with the project's own manifest loader.

    python scripts/build_demo_pack.py --data-dir ../shared/datasets
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
from pathlib import Path

from PIL import Image

from modalchorus.data import load_cifar10

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "src" / "modalchorus" / "assets" / "demo"
PER_CLASS = 200
COCO_MAX_SIDE = 192


def build_cifar(data_dir: Path, out: Path) -> int:
    dataset = load_cifar10(data_dir / "cifar10")
    (out / "images").mkdir(parents=True)
    taken: dict[str, int] = {}
    rows = []
    for record in dataset.images:  # test-set order, so "first 200 per class" is stable
        if taken.get(record.label, 0) >= PER_CLASS:
            continue
        taken[record.label] = taken.get(record.label, 0) + 1
        index = record.id.rsplit("/", 1)[-1]
        name = f"images/{index}.png"
        record.load().save(out / name, optimize=True)
        rows.append({"image": name, "label": record.label, "cifar_index": int(index)})
    with (out / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["image", "label", "cifar_index"])
        writer.writeheader()
        writer.writerows(rows)
    shutil.copy(data_dir / "cifar10" / "README.md", out / "ATTRIBUTION.md")
    return len(rows)


def build_coco(data_dir: Path, out: Path) -> int:
    source = data_dir / "coco_mini_captions"
    records = json.loads((source / "captions.json").read_text())
    (out / "images").mkdir(parents=True)
    with (out / "captions.jsonl").open("w") as f:
        for rec in records:
            image = Image.open(source / rec["image"]).convert("RGB")
            image.thumbnail((COCO_MAX_SIDE, COCO_MAX_SIDE), Image.Resampling.LANCZOS)
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=85, optimize=True)
            name = f"images/{Path(rec['image']).name}"
            (out / name).write_bytes(buffer.getvalue())
            for caption in rec["captions"]:
                row = {
                    "image": name,
                    "caption": caption,
                    "split": rec["coco_split"],
                    "license": rec.get("license"),
                    "flickr_url": rec.get("flickr_url"),
                }
                f.write(json.dumps(row) + "\n")
    shutil.copy(source / "README.md", out / "ATTRIBUTION.md")
    return len(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "datasets")
    args = parser.parse_args()
    if OUT.exists():
        shutil.rmtree(OUT)
    n_cifar = build_cifar(args.data_dir, OUT / "cifar10")
    n_coco = build_coco(args.data_dir, OUT / "coco-mini")
    size = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(json.dumps({"cifar10": n_cifar, "coco-mini": n_coco, "bytes": size}))


if __name__ == "__main__":
    main()
