"""Image preprocessing with PIL + numpy (no torchvision)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from modalchorus.data.images import to_rgb

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def resize_center_crop(image: Image.Image, size: int) -> Image.Image:
    """Resize the shorter side to ``size`` (bicubic), then centre-crop to ``size`` x ``size``.

    Only the cropped square is resampled (``resize(box=...)``): resizing the whole image
    first would allocate ``size`` x (aspect ratio x ``size``) pixels, ~30 GB for a
    200,000 x 1 image.
    """
    image = to_rgb(image)
    w, h = image.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    left, top = (nw - size) // 2, (nh - size) // 2
    sx, sy = w / nw, h / nh  # the crop of the resized image, in source pixels
    box = (left * sx, top * sy, (left + size) * sx, (top + size) * sy)
    return image.resize((size, size), Image.Resampling.BICUBIC, box=box)


def images_to_tensor(images: Sequence[Image.Image], size: int) -> torch.Tensor:
    """Stack PIL images into an ImageNet-normalised batch of shape (B, 3, size, size)."""
    arrays = np.stack(
        [np.asarray(resize_center_crop(img, size), dtype=np.float32) for img in images]
    )
    arrays = (arrays / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(np.ascontiguousarray(arrays.transpose(0, 3, 1, 2)))
