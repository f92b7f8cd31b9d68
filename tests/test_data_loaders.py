"""Dataset loaders, on the real shared datasets and on small folders built in tmp_path."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import pickle
import shutil
import struct
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from modalchorus.data import (
    Dataset,
    EmptyDatasetError,
    ImageDecodeError,
    check_image_bytes,
    decode_image,
    list_datasets,
    load_captions_json,
    load_cifar10,
    load_coco_captions,
    load_dataset,
    load_image_folder,
    load_manifest,
)
from modalchorus.data import images as images_module

# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="session")
def coco_images(data_dir: Path) -> Path:
    return data_dir / "coco_mini_captions" / "images"


@pytest.fixture(scope="session")
def real_jpegs(coco_images: Path) -> list[Path]:
    """A few real COCO-mini JPEGs."""
    return sorted(coco_images.glob("*.jpg"))[:4]


@pytest.fixture(scope="session")
def cifar(data_dir: Path) -> Dataset:
    return load_cifar10(data_dir / "cifar10")


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def png_claiming_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` (no real pixel data)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + payload))
        return struct.pack(">I", len(payload)) + kind + payload + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


def skipped_by_id(dataset: Dataset) -> dict[str, str]:
    return {item.id: item.reason for item in dataset.skipped}


# --------------------------------------------------------------------------- image decoding


def test_decode_image_returns_rgb(real_jpegs: list[Path]) -> None:
    image = decode_image(real_jpegs[0].read_bytes(), str(real_jpegs[0]))
    assert image.mode == "RGB"
    assert max(image.size) == 256
    assert check_image_bytes(real_jpegs[0].read_bytes()) is None


def test_decode_image_composites_alpha_on_white() -> None:
    buffer = io.BytesIO()
    Image.new("RGBA", (4, 4), (255, 0, 0, 0)).save(buffer, format="PNG")
    image = decode_image(buffer.getvalue())
    assert image.mode == "RGB"
    assert image.getpixel((0, 0)) == (255, 255, 255)


def test_decode_image_rejects_truncated_jpeg(real_jpegs: list[Path]) -> None:
    data = real_jpegs[0].read_bytes()
    with pytest.raises(ImageDecodeError, match="truncated") as info:
        decode_image(data[: len(data) // 2], "half.jpg")
    assert info.value.source == "half.jpg"
    assert "half.jpg" in str(info.value)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"just some text, not an image\n", "not a recognised image format"),
    ],
)
def test_check_image_bytes_reasons(data: bytes, reason: str) -> None:
    assert check_image_bytes(data, "x") == reason


@pytest.mark.parametrize(
    "size",
    [
        (9_000, 9_000),  # over our 64 MP limit, under Pillow's: our header check
        (10_000, 10_000),  # over Pillow's warning threshold
        (100_000, 100_000),  # over Pillow's error threshold
    ],
)
def test_decode_image_refuses_huge_images(size: tuple[int, int]) -> None:
    with pytest.raises(ImageDecodeError, match="decompression bomb"):
        decode_image(png_claiming_size(*size), "bomb.png")


def test_pixel_limit_can_be_lowered(
    monkeypatch: pytest.MonkeyPatch, real_jpegs: list[Path]
) -> None:
    monkeypatch.setattr(images_module, "MAX_IMAGE_PIXELS", 1_000)
    reason = check_image_bytes(real_jpegs[0].read_bytes(), "photo.jpg")
    assert reason is not None and "over the limit of 1,000" in reason
    assert check_image_bytes(real_jpegs[0].read_bytes(), max_pixels=10**6) is None


# --------------------------------------------------------------------------- CIFAR-10


def test_cifar10_test_split(cifar: Dataset) -> None:
    assert cifar.name == "cifar10"
    assert len(cifar) == 10_000
    assert cifar.classes == [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    assert Counter(r.label for r in cifar.images) == dict.fromkeys(cifar.classes, 1000)
    assert [r.label for r in cifar.images[:5]] == ["cat", "ship", "ship", "airplane", "frog"]
    assert cifar.images[42].id == "cifar10/test/00042"
    assert {r.split for r in cifar.images} == {"test"}
    assert len({r.id for r in cifar.images}) == 10_000
    assert not cifar.skipped


def test_cifar10_pixels_and_hash(cifar: Dataset) -> None:
    record = cifar.images[0]
    image = record.load()
    assert image.size == (32, 32) and image.mode == "RGB"
    # README: image 0 is a cat whose first red values are 158, 159, 165.
    assert np.asarray(image)[0, :3, 0].tolist() == [158, 159, 165]
    assert record.content_hash == hashlib.sha256(image.tobytes()).hexdigest()
    assert cifar.images[1].content_hash != record.content_hash


def test_cifar10_ids_stable_and_limit(data_dir: Path, cifar: Dataset) -> None:
    small = load_dataset("cifar10", data_dir, limit=50)
    assert len(small) == 50
    assert [(r.id, r.content_hash) for r in small.images] == [
        (r.id, r.content_hash) for r in cifar.images[:50]
    ]
    with pytest.raises(ValueError, match="split"):
        load_cifar10(data_dir / "cifar10", split="validation")


def test_cifar10_refuses_foreign_pickle_globals(data_dir: Path, tmp_path: Path) -> None:
    batches = tmp_path / "cifar-10-batches-py"
    batches.mkdir()
    shutil.copy(data_dir / "cifar10" / "cifar-10-batches-py" / "batches.meta", batches)
    (batches / "test_batch").write_bytes(pickle.dumps({b"data": Counter()}, protocol=4))
    with pytest.raises(pickle.UnpicklingError, match="collections.Counter"):
        load_cifar10(tmp_path)
    with pytest.raises(FileNotFoundError, match="data_batch_1"):
        load_cifar10(tmp_path, split="train")


# --------------------------------------------------------------------------- captions datasets


def test_coco_mini(data_dir: Path) -> None:
    dataset = load_dataset("coco-mini", data_dir)
    assert dataset.name == "coco-mini"
    assert len(dataset) == 159
    assert all(len(r.captions) == 5 for r in dataset.images)
    assert Counter(r.split for r in dataset.images) == {"train2017": 80, "val2017": 79}
    first = dataset.images[0]
    assert first.id == "images/000000397133.jpg"
    assert first.captions[0] == "A man is in a kitchen making pizzas."
    folder = data_dir / "coco_mini_captions"
    assert first.content_hash == sha256_file(folder / first.id)
    assert first.load().mode == "RGB"


def test_flickr8k(data_dir: Path) -> None:
    dataset = load_dataset("flickr8k", data_dir)
    assert len(dataset) == 1000
    assert all(len(r.captions) == 5 for r in dataset.images)
    assert Counter(r.split for r in dataset.images) == {
        "train": 753,
        "dev": 113,
        "test": 125,
        None: 9,
    }
    assert dataset.images[0].id == "images/1000268201_693b08cb0e.jpg"


def test_coco_official_captions_file(data_dir: Path, coco_images: Path) -> None:
    annotations = data_dir / "coco_mini_captions" / "annotations" / "captions_val2017.json"
    dataset = load_coco_captions(annotations, coco_images, split="val2017")
    assert len(dataset) == 79
    assert all(len(r.captions) == 5 for r in dataset.images)
    assert {r.split for r in dataset.images} == {"val2017"}
    # Missing images are summarised once, not listed 4,921 times.
    assert len(dataset.skipped) == 1
    assert "4921 of 5000" in dataset.skipped[0].reason
    mini = {r.id.removeprefix("images/"): r for r in load_dataset("coco-mini", data_dir).images}
    for record in dataset.images:
        assert record.captions == mini[record.id].captions
        assert record.content_hash == mini[record.id].content_hash
    via_registry = load_dataset(annotations, images_dir=coco_images)
    assert [r.id for r in via_registry.images] == [r.id for r in dataset.images]


# --------------------------------------------------------------------------- image folder


@pytest.fixture
def image_folder(tmp_path: Path, real_jpegs: list[Path]) -> Path:
    root = tmp_path / "pets"
    (root / "cat").mkdir(parents=True)
    (root / "dog" / "outdoor").mkdir(parents=True)
    (root / ".cache").mkdir()
    shutil.copy(real_jpegs[0], root / "cat" / "b.jpg")
    shutil.copy(real_jpegs[1], root / "cat" / "a.JPG")
    shutil.copy(real_jpegs[2], root / "dog" / "outdoor" / "c.jpeg")
    Image.open(real_jpegs[3]).save(root / "loose.png")
    shutil.copy(real_jpegs[3], root / ".cache" / "hidden.jpg")
    data = real_jpegs[0].read_bytes()
    (root / "cat" / "broken.jpg").write_bytes(data[: len(data) // 3])
    (root / "dog" / "notes.jpg").write_text("not an image\n")
    (root / "README.txt").write_text("ignored\n")
    return root


def test_image_folder(image_folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="modalchorus.data"):
        dataset = load_image_folder(image_folder)
    assert dataset.name == "pets"
    assert [r.id for r in dataset.images] == [
        "cat/a.JPG",
        "cat/b.jpg",
        "dog/outdoor/c.jpeg",
        "loose.png",
    ]
    assert [r.label for r in dataset.images] == ["cat", "cat", "dog", None]
    assert dataset.classes == ["cat", "dog"]
    skipped = skipped_by_id(dataset)
    assert set(skipped) == {"cat/broken.jpg", "dog/notes.jpg"}
    assert "truncated" in skipped["cat/broken.jpg"]
    assert "not a recognised image format" in skipped["dog/notes.jpg"]
    assert "skipped 2 entries" in caplog.text
    record = dataset.images[1]
    assert record.content_hash == sha256_file(image_folder / "cat" / "b.jpg")
    assert record.load().mode == "RGB"
    again = load_dataset(image_folder)
    assert [(r.id, r.content_hash) for r in again.images] == [
        (r.id, r.content_hash) for r in dataset.images
    ]


def test_image_folder_without_classes(tmp_path: Path, real_jpegs: list[Path]) -> None:
    shutil.copy(real_jpegs[0], tmp_path / "x.jpg")
    dataset = load_image_folder(tmp_path, name="flat")
    assert dataset.name == "flat"
    assert dataset.classes is None
    assert dataset.images[0].label is None


def test_class_folders_are_in_natural_order(tmp_path: Path, real_jpegs: list[Path]) -> None:
    for name in ("class 10", "class 2", "Class 1", "class 1", "birds"):
        (tmp_path / name).mkdir()
        shutil.copy(real_jpegs[0], tmp_path / name / "x.jpg")
    dataset = load_image_folder(tmp_path)
    assert dataset.classes == ["birds", "Class 1", "class 1", "class 2", "class 10"]


# --------------------------------------------------------------------------- manifests


@pytest.fixture
def manifest_dir(tmp_path: Path, real_jpegs: list[Path]) -> Path:
    (tmp_path / "imgs").mkdir()
    for name, source in zip(("a.jpg", "b.jpg"), real_jpegs, strict=False):
        shutil.copy(source, tmp_path / "imgs" / name)
    return tmp_path


def test_manifest_csv(manifest_dir: Path) -> None:
    path = manifest_dir / "pairs.csv"
    path.write_bytes(
        b"image,caption,label\n"
        b"imgs/a.jpg,A first caption,cat\n"
        b'./imgs/a.jpg,"A second, quoted\ncaption",cat\n'
        b"imgs/b.jpg,Caption with bad bytes \xff\xfe here,dog\n"
        b"imgs/b.jpg,   ,dog\n"
        b"imgs/b.jpg,A fine caption for b,dog\n"
        b"imgs/missing.jpg,Nobody home,dog\n"
    )
    dataset = load_manifest(path, caption_column="caption", label_column="label")
    assert dataset.name == "pairs"
    assert [r.id for r in dataset.images] == ["imgs/a.jpg", "imgs/b.jpg"]
    a, b = dataset.images
    assert a.captions == ("A first caption", "A second, quoted\ncaption")
    assert b.captions == ("A fine caption for b",)
    assert (a.label, b.label) == ("cat", "dog")
    assert dataset.classes == ["cat", "dog"]
    assert a.content_hash == sha256_file(manifest_dir / "imgs" / "a.jpg")
    skipped = skipped_by_id(dataset)
    assert set(skipped) == {"row 3", "row 4", "imgs/missing.jpg"}
    assert "not valid UTF-8" in skipped["row 3"] and "line 5" in skipped["row 3"]
    assert "empty" in skipped["row 4"]
    assert "not found" in skipped["imgs/missing.jpg"]


def test_manifest_ids_reveal_no_folder_outside_the_manifests(
    tmp_path: Path, real_jpegs: list[Path]
) -> None:
    """Absolute paths inside the manifest's folder become relative ids; outside it, the id
    names the file but not its folders (ids are shown to every user of the server)."""
    inside, outside = tmp_path / "set" / "imgs", tmp_path / "private" / "home"
    for folder in (inside, outside):
        folder.mkdir(parents=True)
        shutil.copy(real_jpegs[0], folder / "a.jpg")
    other = tmp_path / "elsewhere"
    other.mkdir()
    shutil.copy(real_jpegs[1], other / "a.jpg")  # same file name, another folder
    path = tmp_path / "set" / "pairs.jsonl"
    rows = [inside / "a.jpg", outside / "a.jpg", other / "a.jpg", outside / "a.jpg"]
    path.write_text("".join(json.dumps({"image": str(p), "caption": "c"}) + "\n" for p in rows))
    ids = [r.id for r in load_manifest(path, caption_column="caption").images]
    assert ids[0] == "imgs/a.jpg" and len(ids) == 3
    assert all(i.startswith("external/") and i.endswith("/a.jpg") for i in ids[1:])
    assert ids[1] != ids[2] and not any(str(tmp_path) in i or "private" in i for i in ids)
    again = [r.id for r in load_manifest(path, caption_column="caption").images]
    assert again == ids  # stable across loads


def test_manifest_jsonl(manifest_dir: Path) -> None:
    path = manifest_dir / "pairs.jsonl"
    lines = [
        json.dumps({"path": "imgs/a.jpg", "text": "one"}).encode(),
        b"",
        b'{"path": "imgs/b.jpg", "text": "bad \xc3\x28 utf8"}',
        json.dumps({"path": "imgs/b.jpg", "text": ["two", "three"]}).encode(),
        b"{not json",
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    dataset = load_manifest(path, image_column="path", caption_column="text")
    assert [(r.id, r.captions) for r in dataset.images] == [
        ("imgs/a.jpg", ("one",)),
        ("imgs/b.jpg", ("two", "three")),
    ]
    assert dataset.classes is None
    skipped = skipped_by_id(dataset)
    assert "not valid UTF-8" in skipped["row 2"] and "line 3" in skipped["row 2"]
    assert "not valid JSON" in skipped["row 4"]


def test_manifest_parquet(manifest_dir: Path) -> None:
    path = manifest_dir / "pairs.parquet"
    table = pa.table(
        {
            "image": ["imgs/a.jpg", "imgs/b.jpg", "imgs/b.jpg"],
            "caption": pa.array([b"alpha", b"\xff broken", b"beta"], type=pa.binary()),
            "label": ["x", "y", "y"],
            "split": ["train", "test", "test"],
        }
    )
    pq.write_table(table, path)
    dataset = load_dataset(
        path, caption_column="caption", label_column="label", split_column="split"
    )
    assert [(r.id, r.captions, r.label, r.split) for r in dataset.images] == [
        ("imgs/a.jpg", ("alpha",), "x", "train"),
        ("imgs/b.jpg", ("beta",), "y", "test"),
    ]
    assert "not valid UTF-8" in skipped_by_id(dataset)["row 2"]


def test_manifest_missing_column(manifest_dir: Path) -> None:
    path = manifest_dir / "pairs.csv"
    path.write_text("file,caption\nimgs/a.jpg,hello\n")
    # Worded for the CLI (--image-column) and Python (image_column=) alike.
    with pytest.raises(
        ValueError,
        match=r"no column 'image' \(the image column\) in manifest .*available columns: "
        r"'file', 'caption'",
    ):
        load_manifest(path)
    with pytest.raises(ValueError, match=r"no column 'label' \(the label column\)"):
        load_manifest(path, image_column="file", label_column="label")


# --------------------------------------------------------------------------- registry and errors


def test_list_datasets() -> None:
    assert list_datasets() == ["cifar10", "coco-mini", "flickr8k"]


def test_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cifar10, coco-mini, flickr8k"):
        load_dataset("imagenet", tmp_path)


def test_named_dataset_needs_data_dir(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    monkeypatch.delenv("MODALCHORUS_DATA_DIR", raising=False)
    with pytest.raises(ValueError, match="MODALCHORUS_DATA_DIR"):
        load_dataset("coco-mini")
    monkeypatch.setenv("MODALCHORUS_DATA_DIR", str(data_dir))
    assert len(load_dataset("cifar10", limit=3)) == 3


def test_named_dataset_folder_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="flickr8k_1k"):
        load_dataset("flickr8k", tmp_path)


def test_unsupported_file(tmp_path: Path) -> None:
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="unsupported"):
        load_dataset(path)


def test_empty_dataset_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EmptyDatasetError, match="no usable images in .*empty") as info:
        load_dataset(empty)
    assert isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.jpg").write_text("nope")
    with pytest.raises(EmptyDatasetError, match="1 entries skipped"):
        load_image_folder(bad)


def test_captions_json_list(tmp_path: Path, real_jpegs: list[Path]) -> None:
    (tmp_path / "images").mkdir()
    shutil.copy(real_jpegs[0], tmp_path / "images" / "p.jpg")
    records = [
        {"image": "images/p.jpg", "captions": ["ok", ""], "part": "none", "cls": "k"},
        {"image": "images/gone.jpg", "captions": ["lost"]},
        {"captions": ["no image"]},
    ]
    path = tmp_path / "captions.json"
    path.write_text(json.dumps(records))
    dataset = load_dataset(path)
    assert len(dataset) == 1 and dataset.images[0].captions == ("ok",)
    assert {s.id for s in dataset.skipped} == {"images/p.jpg", "images/gone.jpg", "record 2"}
    labelled = load_captions_json(path, split_field="part", label_field="cls")
    assert (labelled.images[0].split, labelled.images[0].label) == (None, "k")
    assert labelled.classes == ["k"]


def test_json_image_ids_reveal_no_folder_outside_the_images_folder(
    tmp_path: Path, real_jpegs: list[Path]
) -> None:
    """Absolute image paths in a COCO file or a captions list become ids as in manifests:
    the path below the images folder, else ``external/<digest>/<name>`` (ids are shown to
    every user of the server)."""
    inside, outside = tmp_path / "photos" / "imgs", tmp_path / "private" / "home"
    for folder in (inside, outside):
        folder.mkdir(parents=True)
    shutil.copy(real_jpegs[0], inside / "a.jpg")
    shutil.copy(real_jpegs[1], outside / "b.jpg")
    paths = [inside / "a.jpg", outside / "b.jpg", outside / "gone.jpg"]
    listed = tmp_path / "meta" / "list.json"
    listed.parent.mkdir()
    listed.write_text(json.dumps([{"image": str(p), "captions": ["a photo"]} for p in paths]))
    coco = tmp_path / "meta" / "coco.json"
    coco.write_text(
        json.dumps(
            {
                "images": [{"id": n, "file_name": str(p)} for n, p in enumerate(paths)],
                "annotations": [{"id": 9, "image_id": 0, "caption": "a photo"}],
            }
        )
    )
    for path in (listed, coco):
        dataset = load_dataset(path, images_dir=tmp_path / "photos")
        ids = [r.id for r in dataset.images]
        assert ids[0] == "imgs/a.jpg" and len(ids) == 2
        assert ids[1].startswith("external/") and ids[1].endswith("/b.jpg")
        assert [r.source for r in dataset.images] == [str(p) for p in paths[:2]]
        shown = ids + [s.id for s in dataset.skipped]
        assert not any(str(tmp_path) in i or "private" in i for i in shown), shown
        again = load_dataset(path, images_dir=tmp_path / "photos")
        assert [r.id for r in again.images] == ids  # stable across loads
    listed_skips = load_dataset(listed, images_dir=tmp_path / "photos").skipped
    assert [s.id.rsplit("/", 1)[-1] for s in listed_skips] == ["gone.jpg"]


def _dot_dot_sources(tmp_path: Path, real_jpegs: list[Path]) -> list[Path]:
    """A manifest, a captions list and a COCO file in ``mine/``, each naming the same four
    images: two inside ``mine/`` (one through ``..``), two in a sibling ``other/`` folder
    (one through ``..``, one by an absolute path with ``..`` in it)."""
    mine, other = tmp_path / "mine", tmp_path / "other"
    (mine / "imgs").mkdir(parents=True)
    other.mkdir()
    shutil.copy(real_jpegs[0], mine / "imgs" / "a.jpg")
    shutil.copy(real_jpegs[1], mine / "b.jpg")
    shutil.copy(real_jpegs[2], other / "c.jpg")
    shutil.copy(real_jpegs[3], other / "d.jpg")
    refs = ["imgs/a.jpg", "imgs/../b.jpg", "../other/c.jpg", f"{mine}/imgs/../../other/d.jpg"]
    manifest = mine / "pairs.csv"
    manifest.write_text("image,caption\n" + "".join(f"{r},a photo\n" for r in refs))
    listed = mine / "list.json"
    listed.write_text(json.dumps([{"image": r, "captions": ["a photo"]} for r in refs]))
    coco = mine / "coco.json"
    document = {
        "images": [{"id": n, "file_name": r} for n, r in enumerate(refs)],
        "annotations": [{"id": 9, "image_id": 0, "caption": "a photo"}],
    }
    coco.write_text(json.dumps(document))
    return [manifest, listed, coco]


def test_dot_dot_references_get_ids_as_absolute_paths_do(
    tmp_path: Path, real_jpegs: list[Path]
) -> None:
    """``../`` in an image reference: normalised when it stays inside the source's folder,
    else ``external/<folder digest>/<file name>`` as for an absolute path outside it; never
    an id naming the folders above the source (ids are shown to every user of the server)."""
    other = tmp_path / "other"
    for source in _dot_dot_sources(tmp_path, real_jpegs):
        options = {"caption_column": "caption"} if source.suffix == ".csv" else {}
        dataset = load_dataset(source, **options)
        ids = [r.id for r in dataset.images]
        assert ids[:2] == ["imgs/a.jpg", "b.jpg"], source.name
        assert all(i.startswith("external/") for i in ids[2:]), ids
        assert [i.rsplit("/", 1)[-1] for i in ids[2:]] == ["c.jpg", "d.jpg"]
        assert ids[2].rsplit("/", 1)[0] == ids[3].rsplit("/", 1)[0]  # one folder, one digest
        assert not any(".." in i or "other" in i or str(tmp_path) in i for i in ids), ids
        sources = [r.source for r in dataset.images]
        assert sources[2:] == [str(other / "c.jpg"), str(other / "d.jpg")]
        assert not any(".." in s for s in sources), sources
        absolute = load_manifest(_manifest_of(tmp_path, other / "c.jpg"), caption_column="c")
        assert absolute.images[0].id == ids[2]  # as the same file given by an absolute path


def _manifest_of(tmp_path: Path, image: Path) -> Path:
    """A one-row manifest in ``tmp_path/mine`` naming ``image`` by its absolute path."""
    path = tmp_path / "mine" / "absolute.csv"
    path.write_text(f"image,c\n{image},a photo\n")
    return path


def _sources_with_a_corrupt_last_image(tmp_path: Path, real_jpegs: list[Path]) -> list[Path]:
    """A class folder, a manifest, a captions list and a COCO file, each naming three good
    images and then a corrupt one."""
    folder = tmp_path / "photos"
    for number, (label, jpeg) in enumerate(zip("aab", real_jpegs, strict=False)):
        (folder / label).mkdir(parents=True, exist_ok=True)
        shutil.copy(jpeg, folder / label / f"{number}.jpg")
    (folder / "c").mkdir()
    (folder / "c" / "9.jpg").write_text("not an image")  # last in path order
    refs = ["a/0.jpg", "a/1.jpg", "b/2.jpg", "c/9.jpg"]
    manifest = folder / "pairs.csv"
    manifest.write_text("image,caption\n" + "".join(f"{r},a photo\n" for r in refs))
    listed = folder / "list.json"
    listed.write_text(json.dumps([{"image": r, "captions": ["a photo"]} for r in refs]))
    coco = folder / "coco.json"
    document = {"images": [{"id": n, "file_name": r} for n, r in enumerate(refs)]}
    coco.write_text(json.dumps({**document, "annotations": []}))
    return [folder, manifest, listed, coco]


def test_a_limit_stops_reading_at_the_first_usable_images(
    tmp_path: Path, real_jpegs: list[Path]
) -> None:
    """``--limit 2`` on a large folder of photos must not decode every photo first: what
    lies after the first ``limit`` usable images is neither decoded nor reported."""
    for source in _sources_with_a_corrupt_last_image(tmp_path, real_jpegs):
        whole = load_dataset(source)
        assert len(whole.images) == 3 and [s.id for s in whole.skipped] == ["c/9.jpg"], source
        cut = load_dataset(source, limit=2)
        assert [r.id for r in cut.images] == ["a/0.jpg", "a/1.jpg"] and cut.skipped == [], source
        assert cut.classes == whole.classes  # a folder's classes are its class folders
    labelled = tmp_path / "photos" / "labelled.csv"
    labelled.write_text("image,label\na/0.jpg,x\nb/2.jpg,y\nc/9.jpg,z\n")
    cut = load_manifest(labelled, label_column="label", limit=1)  # classes need every image
    assert cut.classes == ["x", "y"] and [s.id for s in cut.skipped] == ["c/9.jpg"]


def test_images_dir_applies_to_both_json_formats(tmp_path: Path, real_jpegs: list[Path]) -> None:
    photos = tmp_path / "photos"
    (photos / "images").mkdir(parents=True)
    shutil.copy(real_jpegs[0], photos / "images" / "p.jpg")
    listed = tmp_path / "meta" / "list.json"
    listed.parent.mkdir()
    listed.write_text(json.dumps([{"image": "images/p.jpg", "captions": ["a photo"]}]))
    coco = tmp_path / "meta" / "coco.json"
    coco.write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "images/p.jpg"}],
                "annotations": [{"id": 2, "image_id": 1, "caption": "a photo"}],
            }
        )
    )
    for path in (listed, coco):
        dataset = load_dataset(path, images_dir=photos)
        assert [(r.id, r.captions) for r in dataset.images] == [("images/p.jpg", ("a photo",))]
        assert dataset.images[0].source == str(photos / "images" / "p.jpg")
