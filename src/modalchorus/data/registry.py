"""Named datasets and path dispatch: one entry point, :func:`load_dataset`."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modalchorus.data._manifest_formats import MANIFEST_SUFFIXES
from modalchorus.data.captions_json import load_captions_json
from modalchorus.data.cifar import load_cifar10
from modalchorus.data.coco import load_coco_captions
from modalchorus.data.folder import load_image_folder
from modalchorus.data.manifest import load_manifest
from modalchorus.data.types import Dataset

__all__ = ["DATA_DIR_ENV", "list_datasets", "load_dataset"]

#: Environment variable naming the folder that holds the named datasets.
DATA_DIR_ENV = "MODALCHORUS_DATA_DIR"


@dataclass(frozen=True)
class _NamedDataset:
    folder: str
    description: str
    load: Callable[..., Dataset]


def _load_cifar10(folder: Path, **options: Any) -> Dataset:
    return load_cifar10(folder, **options)


def _load_coco_mini(folder: Path, **options: Any) -> Dataset:
    options.setdefault("name", "coco-mini")
    options.setdefault("split_field", "coco_split")
    return load_captions_json(folder / "captions.json", **options)


def _load_flickr8k(folder: Path, **options: Any) -> Dataset:
    options.setdefault("name", "flickr8k")
    options.setdefault("split_field", "flickr8k_split")
    return load_captions_json(folder / "captions.json", **options)


_NAMED: dict[str, _NamedDataset] = {
    "cifar10": _NamedDataset(
        "cifar10", "CIFAR-10 (python pickle); options: split='test'|'train', limit", _load_cifar10
    ),
    "coco-mini": _NamedDataset(
        "coco_mini_captions", "159 COCO photos x 5 captions; split = coco_split", _load_coco_mini
    ),
    "flickr8k": _NamedDataset(
        "flickr8k_1k", "1,000 Flickr8k photos x 5 captions; split = flickr8k_split", _load_flickr8k
    ),
}


def list_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`, sorted.

    Returns
    -------
    list[str]
        ``["cifar10", "coco-mini", "flickr8k"]``.
    """
    return sorted(_NAMED)


def load_dataset(
    name_or_path: str | os.PathLike[str], data_dir: str | Path | None = None, **options: Any
) -> Dataset:
    """Load a named dataset, or a dataset at a path.

    Names (see :func:`list_datasets`) live in sub-folders of ``data_dir``:
    ``cifar10`` in ``cifar10/``, ``coco-mini`` in ``coco_mini_captions/``,
    ``flickr8k`` in ``flickr8k_1k/``. Anything else is taken as a path:

    * a directory: :func:`~modalchorus.data.folder.load_image_folder`;
    * ``.csv``, ``.jsonl``, ``.ndjson``, ``.parquet``, ``.pq``:
      :func:`~modalchorus.data.manifest.load_manifest`;
    * ``.json`` holding an object (COCO captions format):
      :func:`~modalchorus.data.coco.load_coco_captions`, images from option
      ``images_dir`` or the JSON's folder;
    * ``.json`` holding a list of ``{"image": ..., "captions": [...]}`` records:
      :func:`~modalchorus.data.captions_json.load_captions_json`, image paths relative to
      option ``images_dir`` or the JSON's folder.

    Parameters
    ----------
    name_or_path : str | os.PathLike
        A registered name or a path.
    data_dir : str | pathlib.Path | None, default None
        Folder of the named datasets; defaults to ``$MODALCHORUS_DATA_DIR``.
        Not used for paths.
    **options
        Passed to the loader (e.g. ``split`` for ``cifar10``; ``caption_column``,
        ``label_column`` for manifests). ``limit`` (any source) keeps the first
        ``limit`` images and their captions; free texts such as class prompts stay.
        Loaders stop there, so later images are neither decoded nor reported (a
        labelled manifest or captions list is read whole: its classes need it).

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        If the name is unknown and no such path exists (the message lists the
        names), the file type is not supported, or a named dataset is requested
        without ``data_dir`` or ``$MODALCHORUS_DATA_DIR``.
    FileNotFoundError
        If a named dataset's folder is missing under the data directory.
    EmptyDatasetError
        If the source holds no usable image.
    """
    key = os.fspath(name_or_path)
    named = _NAMED.get(key.lower()) if isinstance(name_or_path, str) else None
    limit = options.get("limit")  # every loader stops at it (or reads all; cut below)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive integer, got {limit!r}")
    # Absolute paths: image sources stay readable from any working directory.
    if named is not None:
        folder = _data_dir(key, data_dir).resolve() / named.folder
        if not folder.is_dir():
            raise FileNotFoundError(f"dataset {key!r} not found: expected folder {folder}")
        dataset = named.load(folder, **options)
    elif (path := Path(key).expanduser()).exists():
        dataset = _load_path(path.resolve(), **options)
    else:
        raise ValueError(
            f"unknown dataset {key!r}: not a registered name ({', '.join(list_datasets())}) "
            "and no such file or directory"
        )
    if limit is not None:
        dataset.images = dataset.images[:limit]
    return dataset


def _data_dir(name: str, data_dir: str | Path | None) -> Path:
    """The named datasets' folder, from the argument or the environment."""
    if data_dir is not None:
        return Path(data_dir)
    from_env = os.environ.get(DATA_DIR_ENV)
    if from_env:
        return Path(from_env)
    raise ValueError(
        f"dataset {name!r} needs a data directory: pass --data-dir (data_dir=... in Python) "
        f"or set {DATA_DIR_ENV}"
    )


def _load_path(path: Path, **options: Any) -> Dataset:
    """Pick a loader for a file or folder."""
    if path.is_dir():
        return load_image_folder(path, **options)
    suffix = path.suffix.lower()
    if suffix in MANIFEST_SUFFIXES:
        return load_manifest(path, **options)
    if suffix == ".json":
        options.setdefault("name", path.stem)  # as for manifests: files in one folder differ
        if _json_starts_with(path) == "[":
            if "images_dir" in options:  # one option name for both JSON formats
                options["images_root"] = options.pop("images_dir")
            return load_captions_json(path, **options)
        images_dir = options.pop("images_dir", path.parent)
        return load_coco_captions(path, images_dir, **options)
    supported = ", ".join(sorted(MANIFEST_SUFFIXES | {".json"}))
    raise ValueError(f"unsupported dataset file {path}: expected a folder or one of {supported}")


def _json_starts_with(path: Path) -> str:
    """First non-blank character of a JSON file (after any byte-order mark)."""
    with path.open("rb") as f:
        head = f.read(4096).removeprefix(b"\xef\xbb\xbf").lstrip()
    return head[:1].decode("ascii", "replace")
