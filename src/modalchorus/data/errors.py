"""Exceptions raised by the dataset loaders."""

from __future__ import annotations


class ImageDecodeError(ValueError):
    """An image could not be decoded into a usable RGB picture.

    Raised for corrupt or truncated data, data that is not an image at all, and
    images larger than the pixel limit (a guard against decompression bombs).

    Parameters
    ----------
    source : str
        Where the bytes came from (a file path or another human-readable origin).
    reason : str
        Why the image is unusable, in a few words.
    """

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"cannot decode image {source}: {reason}")
        self.source = source
        self.reason = reason


class EmptyDatasetError(ValueError):
    """A dataset source yielded no usable image.

    Parameters
    ----------
    source : str
        The dataset source (folder, file or registered name).
    n_skipped : int
        How many entries were found but skipped.
    first_reason : str | None
        The reason the first skipped entry was skipped, if any.
    """

    def __init__(self, source: str, n_skipped: int = 0, first_reason: str | None = None) -> None:
        message = f"no usable images in {source}"
        if n_skipped:
            message += f" ({n_skipped} entries skipped; first: {first_reason})"
        super().__init__(message.replace("\n", " "))
        self.source = source
        self.n_skipped = n_skipped
        self.first_reason = first_reason
