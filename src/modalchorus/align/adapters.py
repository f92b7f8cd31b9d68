"""The ``adapter`` scope: a residual linear map per modality on the embeddings.

``z = normalise(x + W x + b)``, with ``W`` and ``b`` initialised at zero so an untrained
adapter is the identity. It needs no raw inputs, so it works on any stored embeddings.
"""

from __future__ import annotations

import torch
from torch import nn

from modalchorus.encoders.base import l2_normalise

MODALITIES = ("image", "text")


class ResidualAdapter(nn.Module):
    """``x -> normalise(x + W x + b)``; the identity at initialisation.

    Parameters
    ----------
    dim : int
        Embedding dimension ``d``.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, dim)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Shape (n, d) -> (n, d), unit rows."""
        return l2_normalise(x + self.linear(x))


class ModalityAdapters(nn.Module):
    """One :class:`ResidualAdapter` per modality.

    Parameters
    ----------
    dim : int
        Embedding dimension ``d``.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.image = ResidualAdapter(dim)
        self.text = ResidualAdapter(dim)

    def forward(self, x: torch.Tensor, is_image: torch.Tensor) -> torch.Tensor:
        """Adapt rows of mixed modality.

        Parameters
        ----------
        x : torch.Tensor, shape (n, d)
        is_image : torch.Tensor, shape (n,), bool

        Returns
        -------
        torch.Tensor, shape (n, d)
        """
        return torch.where(is_image[:, None], self.image(x), self.text(x))

    def adapt(self, x: torch.Tensor, modality: str) -> torch.Tensor:
        """Adapt rows of one modality (``"image"`` or ``"text"``). Shape (n, d) -> (n, d)."""
        if modality not in MODALITIES:
            raise ValueError(f"unknown modality {modality!r}: use 'image' or 'text'")
        return getattr(self, modality)(x)
