"""Augmentation: user images and texts added to the workspace and placed in the current map.

Uploaded images are validated (size, decodable, pixel count) before anything is written;
accepted bytes are stored content-addressed under ``<workspace>/uploads/<sha256>.<ext>``
and every accepted image or text becomes an item of the workspace dataset
:data:`~modalchorus.server.views.UPLOADS` (``"uploads"``). The new items are embedded with
the server's encoder and placed in the view's Modal Fusion Map by the fitted network's
``transform`` (no re-fit): see :func:`~modalchorus.server.projections.stored_layout`,
which shows the ``uploads`` items in every dataset's view.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from modalchorus.data.errors import ImageDecodeError
from modalchorus.data.images import decode_image
from modalchorus.data.types import Dataset, ImageRecord, TextRecord, sha256_bytes
from modalchorus.embedding import embed_dataset
from modalchorus.encoders import Encoder
from modalchorus.server.schemas import MAX_FILENAME_LENGTH
from modalchorus.server.views import UPLOADS, is_upload
from modalchorus.store import (
    UnknownDatasetError,
    UnknownEncoderError,
    UnknownItemError,
    Workspace,
    text_hash,
)

logger = logging.getLogger(__name__)

#: Largest accepted upload, in bytes.
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
#: Largest accepted image, in pixels (width x height).
MAX_UPLOAD_PIXELS = 40_000_000
#: Most files (or texts) one request may add.
MAX_ITEMS_PER_REQUEST = 64
#: How much of an overlong file name messages show, in characters.
_SHOWN_NAME = 40
#: Folder of the stored uploads, inside the workspace folder.
UPLOAD_DIR = "uploads"
#: Image formats accepted, with the suffix their files are stored under.
FORMATS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "GIF": "gif", "BMP": "bmp"}

# One augmentation at a time: each rewrites the ``uploads`` dataset from what is stored.
_lock = threading.Lock()


class UploadError(ValueError):
    """An uploaded file was refused; the message names the file and the problem.

    Parameters
    ----------
    filename : str
        The file's name as uploaded.
    reason : str
        What is wrong with it.
    too_large : bool
        The file is over :data:`MAX_UPLOAD_BYTES` (answered with 413, else 422).
    """

    def __init__(self, filename: str, reason: str, *, too_large: bool = False) -> None:
        super().__init__(f"{filename}: {reason}")
        self.filename = filename
        self.reason = reason
        self.too_large = too_large


@dataclass(frozen=True)
class ValidImage:
    """An uploaded image that decodes fully.

    Attributes
    ----------
    filename : str
        As uploaded (for messages and the item's ``source``).
    data : bytes
        The file's bytes, stored unchanged.
    sha256 : str
        Hex digest of ``data``: the content hash and the stored file's name.
    suffix : str
        File suffix of the format, e.g. ``"png"``.
    """

    filename: str
    data: bytes
    sha256: str
    suffix: str

    @property
    def record_id(self) -> str:
        """Id of the image record (the item id is ``f"uploads/{record_id}"``)."""
        return f"{self.sha256}.{self.suffix}"


def check_image(filename: str, data: bytes, max_pixels: int = MAX_UPLOAD_PIXELS) -> ValidImage:
    """Validate one uploaded image: size, format, ``verify`` and a full decode.

    Parameters
    ----------
    filename : str
        The name it was uploaded under.
    data : bytes
        Its content.
    max_pixels : int
        Pixel limit (width x height); Pillow's decompression-bomb guard applies too.

    Returns
    -------
    ValidImage

    Raises
    ------
    UploadError
        A file name over :data:`MAX_FILENAME_LENGTH` characters; empty, over
        :data:`MAX_UPLOAD_BYTES`, not an image, an unsupported format, corrupt or
        truncated, or over the pixel limit.
    """
    if len(filename) > MAX_FILENAME_LENGTH:
        raise UploadError(
            f"{filename[:_SHOWN_NAME]}...",
            f"the file name is {len(filename):,} characters long, at most "
            f"{MAX_FILENAME_LENGTH} are accepted",
        )
    if not data:
        raise UploadError(filename, "the file is empty")
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadError(
            filename, f"the file is over the limit of {MAX_UPLOAD_BYTES:,} bytes", too_large=True
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                fmt = image.format or ""
                width, height = image.size
                if fmt in FORMATS and width * height <= max_pixels:
                    image.verify()  # checksums and structure, before the full decode below
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # as decode_image says it (Pillow's own text names its limit, not ours)
        reason = f"too many pixels, over the limit of {max_pixels:,} (possible decompression bomb)"
        raise UploadError(filename, reason) from None
    except UnidentifiedImageError:
        raise UploadError(filename, "not an image (no known image format)") from None
    except Exception as exc:  # Pillow raises many types on bad image data
        raise UploadError(filename, f"corrupt or truncated image data ({exc})") from None
    if fmt not in FORMATS:
        raise UploadError(
            filename, f"unsupported image format {fmt}; use one of {', '.join(FORMATS)}"
        )
    try:
        decode_image(data, filename, max_pixels=max_pixels)
    except ImageDecodeError as exc:
        raise UploadError(filename, exc.reason) from None
    return ValidImage(filename, data, sha256_bytes(data), FORMATS[fmt])


def check_images(files: Sequence[tuple[str, bytes]]) -> list[ValidImage]:
    """Validate every file (see :func:`check_image`); raises on the first bad one."""
    if not files:
        raise UploadError("files", "no file was uploaded")
    if len(files) > MAX_ITEMS_PER_REQUEST:
        raise UploadError(
            "files", f"{len(files)} files, at most {MAX_ITEMS_PER_REQUEST} per request"
        )
    return [check_image(name, data) for name, data in files]


def upload_dir(workspace: Workspace) -> Path:
    """Where uploaded images are stored: ``<workspace>/uploads``."""
    return Path(workspace.path) / UPLOAD_DIR


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _file_loader(path: Path) -> Callable[[], Image.Image]:
    def load() -> Image.Image:
        return decode_image(path.read_bytes(), str(path), max_pixels=MAX_UPLOAD_PIXELS)

    return load


def text_record_id(text: str) -> str:
    """Id of an added text's record: the first 16 hex digits of its content hash."""
    return text_hash(text)[:16]


def _stored_dataset(workspace: Workspace, folder: Path) -> Dataset:
    """The ``uploads`` dataset as stored (records load their images from ``folder``)."""
    try:
        workspace.dataset(UPLOADS)
    except UnknownDatasetError:
        return Dataset(name=UPLOADS, images=[])
    items = workspace.items(dataset=UPLOADS)
    images, texts = [], []
    for row in items.itertuples(index=False):
        if row.kind == "image":
            record_id = row.id.removeprefix(f"{UPLOADS}/")
            images.append(
                ImageRecord(
                    id=record_id,
                    content_hash=row.content_hash,
                    load=_file_loader(folder / record_id),
                    source=str(folder / record_id),
                )
            )
        else:
            texts.append(TextRecord(id=row.id.removeprefix(f"{UPLOADS}/text/"), text=row.text))
    return Dataset(name=UPLOADS, images=images, texts=texts)


@dataclass(frozen=True)
class Added:
    """Items one request added (or found already present), in request order.

    Attributes
    ----------
    ids : list[str]
        Item ids, one per uploaded file or text (repeats collapse to one id).
    names : list[str]
        File names or texts, as given.
    kinds : list[str]
        ``"image"`` or ``"text"``.
    new : list[bool]
        False for content that was already an item.
    """

    ids: list[str]
    names: list[str]
    kinds: list[str]
    new: list[bool]


def add_items(
    workspace: Workspace,
    encoder: Encoder,
    images: Sequence[ValidImage] = (),
    texts: Sequence[str] = (),
) -> Added:
    """Store validated images and texts as ``uploads`` items and embed them.

    Image files are written first (content-addressed, atomically), then the items are
    added to the dataset and every ``uploads`` item without an ``encoder`` embedding is
    embedded (:func:`~modalchorus.embedding.embed_dataset`: cached content is reused).
    If that fails, the items and files this call added are removed again.

    Parameters
    ----------
    workspace : Workspace
    encoder : Encoder
        Embeds the new items (its ``id`` is the embedding version written).
    images : Sequence[ValidImage]
        From :func:`check_images`.
    texts : Sequence[str]
        Stripped, non-empty texts.

    Returns
    -------
    Added
    """
    folder = upload_dir(workspace)
    with _lock:
        dataset = _stored_dataset(workspace, folder)
        have_images = {r.id for r in dataset.images}
        have_texts = {r.id for r in dataset.texts}
        ids, names, kinds, new, created = [], [], [], [], []
        for image in images:
            path = folder / image.record_id
            ids.append(f"{UPLOADS}/{image.record_id}")
            names.append(image.filename)
            kinds.append("image")
            new.append(image.record_id not in have_images)
            if image.record_id in have_images:
                continue
            if not path.exists():
                write_atomic(path, image.data)
                created.append(path)
            have_images.add(image.record_id)
            dataset.images.append(
                ImageRecord(
                    id=image.record_id,
                    content_hash=image.sha256,
                    load=_file_loader(path),
                    source=str(path),  # alignment's tower scopes reopen images by path
                )
            )
        for text in texts:
            record_id = text_record_id(text)
            ids.append(f"{UPLOADS}/text/{record_id}")
            names.append(text)
            kinds.append("text")
            new.append(record_id not in have_texts)
            if record_id not in have_texts:
                have_texts.add(record_id)
                dataset.texts.append(TextRecord(id=record_id, text=text))
        try:
            report = embed_dataset(workspace, dataset, encoder)
        except BaseException:
            # The items are stored before they are encoded: take back the ones this call
            # added, or every later request would retry (and fail on) them.
            _take_back(workspace, [i for i, is_new in zip(ids, new, strict=True) if is_new])
            for path in created:
                path.unlink(missing_ok=True)
            raise
    logger.info(
        "augment: %d images, %d texts (%d new items); encoded %d images, %d texts",
        len(images),
        len(texts),
        sum(new),
        report.images_encoded,
        report.texts_encoded,
    )
    return Added(ids=ids, names=names, kinds=kinds, new=new)


def _upload_ids(workspace: Workspace) -> set[str]:
    """Ids of the stored ``uploads`` items (none before the first upload)."""
    try:
        return set(workspace.items(dataset=UPLOADS)["id"])
    except UnknownDatasetError:
        return set()


def _take_back(workspace: Workspace, item_ids: list[str]) -> None:
    """Remove those of ``item_ids`` that are stored (after a failed :func:`add_items`)."""
    stored = _upload_ids(workspace)
    if stored_ids := [i for i in dict.fromkeys(item_ids) if i in stored]:
        try:
            workspace.remove_items(stored_ids)
        except Exception:  # keep the original error; the items stay, without embeddings
            logger.exception("augment: could not remove %d items after a failure", len(stored_ids))


def embed_uploads(workspace: Workspace, encoder: Encoder) -> int:
    """Embed the ``uploads`` items that have no ``encoder`` embedding yet.

    Used when another embedding version becomes current (undo / redo): items uploaded
    under one version get vectors of the other too. Cached content is not re-encoded.

    Returns
    -------
    int
        How many items lacked an embedding.
    """
    with _lock:
        try:
            items = workspace.items(dataset=UPLOADS)
        except UnknownDatasetError:
            return 0
        if items.empty:
            return 0
        try:
            have = set(workspace.get_embeddings(encoder.id, dataset=UPLOADS)[0])
        except UnknownEncoderError:
            have = set()
        missing = int((~items["id"].isin(have)).sum())
        if missing:
            embed_dataset(workspace, _stored_dataset(workspace, upload_dir(workspace)), encoder)
    return missing


class NotAnUploadError(ValueError):
    """Only items of the ``uploads`` dataset can be removed through the server."""


def remove_upload(
    workspace: Workspace, item_id: str, before: Callable[[], None] | None = None
) -> list[str]:
    """Remove an uploaded image or added text (:meth:`Workspace.remove_items`).

    An image's stored file is deleted once the removal is committed. ``before`` is called
    once ``item_id`` is known to be an upload, just before the removal (it may raise to
    refuse it).

    Returns
    -------
    list[str]
        The removed item ids.

    Raises
    ------
    NotAnUploadError
        ``item_id`` is not an ``uploads`` item (datasets are managed from the CLI).
    UnknownItemError, ItemInUseError
        From the store; nothing is removed.
    """
    if not is_upload(item_id):
        if item_id not in set(workspace.items()["id"]):
            raise UnknownItemError(f"unknown item id {item_id!r}")
        raise NotAnUploadError(
            f"{item_id!r} belongs to a dataset; only items added through Augment "
            f"(dataset {UPLOADS!r}) can be removed here"
        )
    with _lock:
        # Checked here, so the 404 names the id (the store's says "1 of 1 item ids ...").
        if item_id not in _upload_ids(workspace):
            raise UnknownItemError(
                f"unknown item id {item_id!r} (no uploaded image or added text has it)"
            )
        if before is not None:
            before()
        removed = workspace.remove_items([item_id])
        # Images are stored as uploads/<sha256>.<ext>; texts (uploads/text/...) have no file.
        path = upload_dir(workspace) / item_id.removeprefix(f"{UPLOADS}/")
        if path.parent == upload_dir(workspace) and path.is_file():
            path.unlink()
    logger.info("augment: removed %s", item_id)
    return removed
