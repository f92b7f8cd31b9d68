"""Image decoding with clear errors: corrupt data, non-images and decompression bombs.

Every loader decodes through :func:`decode_image`, so all of them agree on what an
unusable image is. :func:`check_image_bytes` is the non-raising form that loaders use
at load time to find bad files before any embedding starts.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from modalchorus.data.errors import ImageDecodeError

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_IMAGE_PIXELS",
    "check_image_bytes",
    "decode_image",
    "load_image_file",
]

#: Largest accepted image, in pixels (width x height). Larger images are refused
#: before their pixel data is decoded, which guards against decompression bombs.
#: Pillow's own limit (``PIL.Image.MAX_IMAGE_PIXELS``) applies as well.
MAX_IMAGE_PIXELS: int = 64_000_000

#: File suffixes (lower case) treated as images by the folder loader.
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"})

_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_WIDE_GREY_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})


def decode_image(
    data: bytes, source: str = "<bytes>", *, max_pixels: int | None = None
) -> Image.Image:
    """Decode image bytes into an RGB picture.

    The pixel data is fully decoded, so truncated files are caught here rather
    than later. EXIF orientation is applied; transparent images are composited
    onto white; animated images give their first frame.

    Parameters
    ----------
    data : bytes
        Encoded image (JPEG, PNG, WebP, BMP, GIF, or any format Pillow reads).
    source : str, default "<bytes>"
        Where the bytes came from, used in error messages only.
    max_pixels : int | None, default None
        Pixel limit (width x height); ``None`` means :data:`MAX_IMAGE_PIXELS`.

    Returns
    -------
    PIL.Image.Image
        A new, fully loaded image in mode ``"RGB"``.

    Raises
    ------
    ImageDecodeError
        If the data is empty, not an image, corrupt or truncated, or larger than
        the pixel limit (including Pillow's decompression-bomb checks).
    """
    limit = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    if not data:
        raise ImageDecodeError(source, "empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width * height > limit:
                    raise ImageDecodeError(
                        source,
                        f"image is {width}x{height} = {width * height:,} pixels, over the "
                        f"limit of {limit:,} (possible decompression bomb)",
                    )
                image.load()
                return to_rgb(ImageOps.exif_transpose(image) or image)
    except ImageDecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow refused to open it: its own text ("... DOS attack") names its limit, not ours
        raise ImageDecodeError(
            source, f"too many pixels, over the limit of {limit:,} (possible decompression bomb)"
        ) from exc
    except UnidentifiedImageError as exc:
        raise ImageDecodeError(source, "not a recognised image format") from exc
    except Exception as exc:  # Pillow's decoders raise many exception types on bad data.
        raise ImageDecodeError(source, f"corrupt or truncated image data ({exc})") from exc


def check_image_bytes(
    data: bytes, source: str = "<bytes>", *, max_pixels: int | None = None
) -> str | None:
    """Say why image bytes are unusable, or return ``None`` when they decode.

    Parameters
    ----------
    data : bytes
        Encoded image.
    source : str, default "<bytes>"
        Where the bytes came from (for the decoder's messages).
    max_pixels : int | None, default None
        Pixel limit; ``None`` means :data:`MAX_IMAGE_PIXELS`.

    Returns
    -------
    str | None
        The reason the image cannot be used, or ``None`` if it decodes fully.
    """
    try:
        decode_image(data, source, max_pixels=max_pixels)
    except ImageDecodeError as exc:
        return exc.reason
    return None


def load_image_file(path: str | Path, *, max_pixels: int | None = None) -> Image.Image:
    """Read and decode an image file (the lazy ``load`` of file-backed records).

    Parameters
    ----------
    path : str | pathlib.Path
        Image file.
    max_pixels : int | None, default None
        Pixel limit; ``None`` means :data:`MAX_IMAGE_PIXELS`.

    Returns
    -------
    PIL.Image.Image
        The decoded RGB image.

    Raises
    ------
    OSError
        If the file cannot be read.
    ImageDecodeError
        If its content is not a usable image.
    """
    path = Path(path)
    return decode_image(path.read_bytes(), str(path), max_pixels=max_pixels)


def to_rgb(image: Image.Image) -> Image.Image:
    """Return a new RGB copy of an image (alpha over white, 16-bit grey scaled to 8 bits).

    ``Image.convert("RGB")`` clips 16-bit grey to white and drops alpha onto black.
    """
    if image.mode in _WIDE_GREY_MODES:
        values = np.asarray(image, dtype=np.float64)
        if values.size and values.max() > 255:
            values = values / 257.0
        grey = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    has_alpha = image.mode in _ALPHA_MODES or (image.mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
