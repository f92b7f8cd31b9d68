"""Projection heads that join the EfficientNet-Lite0 and MiniLM towers into one space.

Text side:  ``t = normalise(u + A u)`` with ``u`` the MiniLM sentence vector (384-d).
Image side: the "label bridge" puts an image in MiniLM space without training: its ImageNet
class distribution ``p = softmax(logits / T)`` times the MiniLM embeddings ``E`` of the 1000
class prompts gives ``b = p E``, a pseudo-sentence describing the image. The image embedding
is ``normalise(head_text(b) + B f)`` where ``f`` is the 1280-d pooled image feature and ``B``
a learned residual (initialised at zero, so an untrained head is the pure bridge).
"""

from __future__ import annotations

import torch
from torch import nn

from modalchorus.encoders.base import l2_normalise


class PocketHeads(nn.Module):
    """Trainable joint-space heads.

    Parameters
    ----------
    class_text_embeddings : torch.Tensor, shape (1000, 384)
        L2-normalised MiniLM embeddings of the ImageNet class prompts (the bridge matrix).
    feature_dim : int
        Image feature size (1280 for EfficientNet-Lite0).
    text_dim : int
        MiniLM size and joint-space size (384).
    bridge_temperature : float
        Initial softmax temperature of the bridge.
    """

    def __init__(
        self,
        class_text_embeddings: torch.Tensor,
        feature_dim: int = 1280,
        text_dim: int = 384,
        bridge_temperature: float = 1.5,
    ) -> None:
        super().__init__()
        self.register_buffer("class_text_embeddings", class_text_embeddings.float().clone())
        self.log_bridge_temperature = nn.Parameter(torch.tensor(bridge_temperature).log())
        self.text_residual = nn.Linear(text_dim, text_dim)
        self.image_residual = nn.Linear(feature_dim, text_dim)
        self.logit_scale = nn.Parameter(torch.tensor(10.0).log())
        for layer in (self.text_residual, self.image_residual):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def embed_text(self, sentence: torch.Tensor) -> torch.Tensor:
        """(B, 384) raw MiniLM vectors -> (B, 384) unit joint-space embeddings."""
        u = l2_normalise(sentence)
        return l2_normalise(u + self.text_residual(u))

    def embed_image(self, features: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """(B, 1280) features and (B, 1000) ImageNet logits -> (B, 384) unit embeddings."""
        p = torch.softmax(logits / self.log_bridge_temperature.exp(), dim=-1)
        bridge = self.embed_text(p @ self.class_text_embeddings)
        return l2_normalise(bridge + self.image_residual(features))
