"""ModalChorus: visual probing and alignment of multi-modal (image-text) embeddings."""

from modalchorus.encoders import Encoder, create_encoder, list_encoders

__all__ = ["Encoder", "create_encoder", "list_encoders"]
__version__ = "0.1.0"
