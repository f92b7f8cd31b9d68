"""Small JPEG thumbnails stored inline with image items."""

from __future__ import annotations

import io

from PIL import Image

THUMBNAIL_FORMAT = "JPEG"
THUMBNAIL_MIME = "image/jpeg"
THUMBNAIL_QUALITY = 85
MIN_THUMBNAIL_SIZE = 8
MAX_THUMBNAIL_SIZE = 1024
#: Longest side of stored thumbnails unless asked otherwise, in pixels.
DEFAULT_THUMBNAIL_SIZE = 96


def check_thumbnail_size(size: int) -> int:
    """Validate a thumbnail size (longest side, pixels) and return it as an int."""
    if isinstance(size, bool) or not isinstance(size, int):
        raise ValueError(f"thumbnail_size must be an int, got {type(size).__name__}")
    if not MIN_THUMBNAIL_SIZE <= size <= MAX_THUMBNAIL_SIZE:
        raise ValueError(
            f"thumbnail_size must be in [{MIN_THUMBNAIL_SIZE}, {MAX_THUMBNAIL_SIZE}], got {size}"
        )
    return size


def make_thumbnail(image: Image.Image, size: int) -> bytes:
    """Encode a thumbnail of ``image`` whose longest side is at most ``size`` pixels.

    Keeps the aspect ratio and never upscales (a 32x32 CIFAR image stays 32x32).

    Parameters
    ----------
    image : PIL.Image.Image
        Any mode; converted to RGB.
    size : int
        Longest side of the thumbnail, in pixels.

    Returns
    -------
    bytes
        JPEG bytes (``THUMBNAIL_MIME``).
    """
    thumb = image.convert("RGB")  # always a copy, so the caller's image is untouched
    thumb.thumbnail((size, size), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    thumb.save(buf, format=THUMBNAIL_FORMAT, quality=THUMBNAIL_QUALITY)
    return buf.getvalue()
