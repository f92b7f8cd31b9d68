"""ModalChorus: visual probing and alignment of multi-modal (image-text) embeddings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modalchorus.encoders import Encoder, create_encoder, list_encoders

__all__ = ["Encoder", "create_encoder", "list_encoders"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Encoders import torch (~1 s); loading them on first use keeps `modalchorus --help` fast.
    if name in __all__:
        import modalchorus.encoders

        return getattr(modalchorus.encoders, name)
    raise AttributeError(f"module 'modalchorus' has no attribute {name!r}")
