"""Dataset loaders: image folders, manifests, COCO captions, CIFAR-10, and named datasets.

Every loader returns a :class:`~modalchorus.data.types.Dataset` of
:class:`~modalchorus.data.types.ImageRecord` with stable ids, sha256 content hashes
and lazy ``load`` callables; unusable entries are listed in ``Dataset.skipped``
rather than raised, and a source without any usable image raises
:class:`EmptyDatasetError`. The decoder's pixel limit is
``modalchorus.data.images.MAX_IMAGE_PIXELS`` (set it on that module).
"""

from modalchorus.data._manifest_formats import MANIFEST_SUFFIXES
from modalchorus.data.captions_json import load_captions_json
from modalchorus.data.cifar import load_cifar10
from modalchorus.data.coco import load_coco_captions
from modalchorus.data.errors import EmptyDatasetError, ImageDecodeError
from modalchorus.data.folder import load_image_folder
from modalchorus.data.images import (
    IMAGE_EXTENSIONS,
    check_image_bytes,
    decode_image,
    load_image_file,
)
from modalchorus.data.manifest import load_manifest
from modalchorus.data.registry import DATA_DIR_ENV, list_datasets, load_dataset
from modalchorus.data.types import Dataset, ImageRecord, SkippedItem, TextRecord, sha256_bytes

__all__ = [
    "DATA_DIR_ENV",
    "IMAGE_EXTENSIONS",
    "MANIFEST_SUFFIXES",
    "Dataset",
    "EmptyDatasetError",
    "ImageDecodeError",
    "ImageRecord",
    "SkippedItem",
    "TextRecord",
    "check_image_bytes",
    "decode_image",
    "list_datasets",
    "load_captions_json",
    "load_cifar10",
    "load_coco_captions",
    "load_dataset",
    "load_image_file",
    "load_image_folder",
    "load_manifest",
    "sha256_bytes",
]
