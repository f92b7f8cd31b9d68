"""Dual encoders: the `Encoder` protocol and the registry."""

from modalchorus.encoders.base import Encoder
from modalchorus.encoders.registry import (
    UnknownEncoderError,
    create_encoder,
    list_encoders,
    register_encoder,
)

__all__ = [
    "Encoder",
    "UnknownEncoderError",
    "create_encoder",
    "list_encoders",
    "register_encoder",
]
