"""Networks ``f_theta: R^d -> R^2`` for the Modal Fusion Map.

The default is a small MLP (:func:`make_mlp`), cheap enough to place ~10^5 points per second
on two CPU cores. Any ``torch.nn.Module`` mapping ``(batch, d)`` float32 tensors to
``(batch, 2)`` can be used instead (``ModalFusionMap(network=...)``).

Saving and loading (safetensors + JSON, no pickle) needs to rebuild the module: the default MLP
is described by :class:`MLPSpec`; a custom module must be rebuilt by the caller and passed to
:meth:`~modalchorus.projection.mfm.ModalFusionMap.load`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "MLPSpec", "make_mlp"]

#: Activation names accepted by :func:`make_mlp`.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}


@dataclass(frozen=True)
class MLPSpec:
    """Architecture of the default network, stored in the saved JSON.

    Attributes
    ----------
    in_dim : int
    hidden : tuple of int
        Widths of the hidden layers.
    out_dim : int
    activation : str
        A key of :data:`ACTIVATIONS`.
    """

    in_dim: int
    hidden: tuple[int, ...]
    out_dim: int = 2
    activation: str = "relu"

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> MLPSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(
            int(d["in_dim"]),
            tuple(int(h) for h in d["hidden"]),
            int(d["out_dim"]),
            str(d["activation"]),
        )

    def build(self, generator: torch.Generator | None = None) -> nn.Sequential:
        """The module (see :func:`make_mlp`)."""
        return make_mlp(self.in_dim, self.hidden, self.out_dim, self.activation, generator)


def make_mlp(
    in_dim: int,
    hidden: Sequence[int] = (256, 128),
    out_dim: int = 2,
    activation: str = "relu",
    generator: torch.Generator | None = None,
) -> nn.Sequential:
    """A plain MLP ``Linear -> act -> ... -> Linear(out_dim)``.

    Weights and biases are drawn uniformly from ``(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (the
    distribution of ``nn.Linear``'s default initialisation), but from ``generator``: the
    network is reproducible and the global RNG is never touched.

    Parameters
    ----------
    in_dim : int
        Input dimension ``d``.
    hidden : sequence of int
        Hidden widths (may be empty: a linear map).
    out_dim : int
        Output dimension (2 for a map).
    activation : str
        One of :data:`ACTIVATIONS`.
    generator : torch.Generator, optional
        Source of the initial weights.

    Returns
    -------
    torch.nn.Sequential
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}: use one of {sorted(ACTIVATIONS)}")
    widths = [int(in_dim), *(int(h) for h in hidden), int(out_dim)]
    if any(w < 1 for w in widths):
        raise ValueError(f"layer widths must be positive, got {widths}")
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        lin = torch.nn.utils.skip_init(nn.Linear, a, b)  # no draw from the global RNG
        bound = 1.0 / a**0.5
        with torch.no_grad():
            # Same distribution as nn.Linear's default init, from our generator.
            lin.weight.uniform_(-bound, bound, generator=generator)
            lin.bias.uniform_(-bound, bound, generator=generator)
        layers.append(lin)
        if i < len(widths) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)
