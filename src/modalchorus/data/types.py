"""Plain records shared by all dataset loaders."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image


@dataclass(frozen=True)
class ImageRecord:
    """One image of a dataset, with its label and captions.

    Attributes
    ----------
    id : str
        Stable id, unique within the dataset (derived from the file's relative path
        or the sample index, never from load order).
    content_hash : str
        sha256 hex digest of the image's bytes (file bytes, or raw pixels for
        array-backed datasets). Key of the embedding cache.
    load : Callable[[], PIL.Image.Image]
        Returns the decoded RGB image.
    label : str | None
        Class name, when the dataset has classes.
    captions : tuple[str, ...]
        Human captions, possibly empty.
    split : str | None
        Official split ("train", "test", ...) when the dataset defines one.
    source : str
        Human-readable origin (file path or "<pickle>#index"), for messages only.
    """

    id: str
    content_hash: str
    load: Callable[[], Image.Image] = field(repr=False, compare=False)
    label: str | None = None
    captions: tuple[str, ...] = ()
    split: str | None = None
    source: str = ""


@dataclass(frozen=True)
class TextRecord:
    """A text of a dataset that describes no particular image (a class prompt, a concept).

    Attributes
    ----------
    id : str
        Stable id, unique among the dataset's texts.
    text : str
    label : str | None
        The class the text names, for class prompts.
    """

    id: str
    text: str
    label: str | None = None


@dataclass(frozen=True)
class SkippedItem:
    """An entry a loader could not use, and why."""

    id: str
    reason: str


@dataclass
class Dataset:
    """A loaded dataset: images (with labels/captions) plus what was skipped.

    Attributes
    ----------
    name : str
    images : list[ImageRecord]
    classes : list[str] | None
        Ordered class names for classification datasets, else None.
    skipped : list[SkippedItem]
        Unreadable images, empty or undecodable captions, etc.
    texts : list[TextRecord]
        Free texts (class prompts, concepts), stored as text items with no image.
    """

    name: str
    images: list[ImageRecord]
    classes: list[str] | None = None
    skipped: list[SkippedItem] = field(default_factory=list)
    texts: list[TextRecord] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
