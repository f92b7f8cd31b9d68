"""The ``adapter`` scope: a residual linear map per modality on the embeddings.

``z = normalise(x + W (x - c) + b)``, with ``W`` and ``b`` initialised at zero so an
untrained adapter is the identity, and ``c`` the modality's mean embedding when the run
started. It needs no raw inputs, so it works on any stored embeddings.
"""

from __future__ import annotations

import torch
from torch import nn

from modalchorus.encoders.base import l2_normalise

MODALITIES = ("image", "text")


class ResidualAdapter(nn.Module):
    """``x -> normalise(x + W (x - c) + b)``; the identity at initialisation.

    ``W`` reads the deviation from the centre ``c``: every embedding of a modality shares a
    large common component, and without the centring a change learnt from a few points
    moves every point of the modality alike instead of the points that resemble them.

    Parameters
    ----------
    dim : int
        Embedding dimension ``d``.
    rank : int | None
        None: ``W`` is a full (d, d) matrix; otherwise ``W = U V`` with ``U`` (d, rank)
        initialised at zero and ``V`` (rank, d) at random, which limits a run to a few
        random directions of change.
    centre : torch.Tensor of shape (d,), optional
        ``c``, stored with the weights; zeros if omitted.
    """

    def __init__(
        self, dim: int, rank: int | None = None, centre: torch.Tensor | None = None
    ) -> None:
        super().__init__()
        self.register_buffer(
            "centre", torch.zeros(dim) if centre is None else centre.detach().float().clone()
        )
        if rank is None:
            self.linear = nn.Sequential(nn.Linear(dim, dim))
        else:
            self.linear = nn.Sequential(nn.Linear(dim, rank, bias=False), nn.Linear(rank, dim))
        nn.init.zeros_(self.linear[-1].weight)
        nn.init.zeros_(self.linear[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Shape (n, d) -> (n, d), unit rows."""
        return l2_normalise(x + self.linear(x - self.centre))


class ModalityAdapters(nn.Module):
    """One :class:`ResidualAdapter` per modality.

    Parameters
    ----------
    dim : int
        Embedding dimension ``d``.
    rank : int | None
        See :class:`ResidualAdapter`.
    centres : dict of str to torch.Tensor of shape (d,), optional
        Centre of each modality's adapter (``"image"``, ``"text"``); zeros if omitted.
    """

    def __init__(
        self, dim: int, rank: int | None = None, centres: dict[str, torch.Tensor] | None = None
    ) -> None:
        super().__init__()
        centres = centres or {}
        self.image = ResidualAdapter(dim, rank, centres.get("image"))
        self.text = ResidualAdapter(dim, rank, centres.get("text"))

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> ModalityAdapters:
        """Rebuild (frozen, eval mode) from a ``state_dict``; dimension and rank from shapes.

        States saved before adapters had centres load with zero centres, as they were fitted.
        """
        dim = state["image.linear.0.weight"].shape[1]
        rank = (
            None
            if "image.linear.1.weight" not in state
            else state["image.linear.0.weight"].shape[0]
        )
        module = cls(dim, rank)
        state = {**module.state_dict(), **state}  # missing centres: zeros
        module.load_state_dict(state, strict=True)
        return module.requires_grad_(False).eval()

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
