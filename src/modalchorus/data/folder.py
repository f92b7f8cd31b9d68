"""Image-folder loader: class sub-folders become labels."""

from __future__ import annotations

from pathlib import Path

from modalchorus.data._common import class_order, file_loader, finish_dataset, inspect_image_file
from modalchorus.data.images import IMAGE_EXTENSIONS
from modalchorus.data.types import Dataset, ImageRecord, SkippedItem

__all__ = ["load_image_folder"]


def load_image_folder(
    root: str | Path, name: str | None = None, *, limit: int | None = None
) -> Dataset:
    """Load every image under a folder; the first sub-folder level gives the label.

    ``root/cat/001.jpg`` gets label ``"cat"``; ``root/001.jpg`` gets no label; deeper
    files (``root/cat/indoor/002.jpg``) belong to their top-level class folder.
    Files are matched by suffix (:data:`~modalchorus.data.images.IMAGE_EXTENSIONS`,
    case-insensitive); hidden files and folders are ignored. Every image is read,
    hashed and fully decoded now, so corrupt files are reported before embedding.

    Parameters
    ----------
    root : str | pathlib.Path
        Folder to scan.
    name : str | None, default None
        Dataset name; defaults to the folder's name.
    limit : int | None, default None
        Stop once this many usable images are found (the first ones, in path order):
        later entries are neither decoded nor reported.
        ``classes`` still name every class folder, so they do not depend on it.

    Returns
    -------
    Dataset
        Images sorted by relative path (their ``id``, POSIX style); ``classes``
        are the sorted class-folder names, or ``None`` when no image is in a
        sub-folder; unreadable or corrupt files are listed in ``skipped``.

    Raises
    ------
    NotADirectoryError
        If ``root`` is not a directory.
    EmptyDatasetError
        If no usable image is found.
    """
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"image folder not found: {root}")
    images: list[ImageRecord] = []
    skipped: list[SkippedItem] = []
    files = _image_files(root)
    labels = {label for path in files if (label := _label(path.relative_to(root)))}
    for path in files:
        if limit is not None and len(images) >= limit:
            break  # decoding every later file would only slow down a quick look
        relative = path.relative_to(root)
        image_id = relative.as_posix()
        label = _label(relative)
        content_hash, reason = inspect_image_file(path)
        if content_hash is None:
            skipped.append(SkippedItem(id=image_id, reason=reason or "unusable image"))
            continue
        images.append(
            ImageRecord(
                id=image_id,
                content_hash=content_hash,
                load=file_loader(path),
                label=label,
                source=str(path),
            )
        )
    dataset = Dataset(
        name=name or root.resolve().name,
        images=images,
        classes=class_order(labels) or None,
        skipped=skipped,
    )
    return finish_dataset(dataset, str(root))


def _label(relative: Path) -> str | None:
    """The class of an image at ``relative`` below the root: its top-level folder, if any."""
    return relative.parts[0] if len(relative.parts) > 1 else None


def _image_files(root: Path) -> list[Path]:
    """Image files under ``root`` (recursive, no hidden entries), sorted by relative path."""
    found = []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())
