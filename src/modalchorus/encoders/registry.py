"""Encoder registry: ``list_encoders()`` and ``create_encoder(name)``, as in open_clip."""

from __future__ import annotations

from collections.abc import Callable

from modalchorus.encoders.base import Encoder


class UnknownEncoderError(ValueError):
    """Raised for an encoder name no registered factory accepts."""


def _create_pocket(spec: str, device: str | None) -> Encoder:
    from modalchorus.encoders.pocket import PocketEncoder

    return PocketEncoder.from_spec(spec, device=device)


def _create_hf(spec: str, device: str | None) -> Encoder:
    from modalchorus.encoders.hf_clip import HFClipEncoder

    return HFClipEncoder(spec, device=device)


def _create_aligned(spec: str, device: str | None) -> Encoder:
    from modalchorus.align.state import load_aligned_encoder

    return load_aligned_encoder(spec, device=device)


# name or prefix -> (factory(spec, device), one-line description)
_FACTORIES: dict[str, tuple[Callable[[str, str | None], Encoder], str]] = {
    "pocket": (
        _create_pocket,
        "offline default: EfficientNet-Lite0 + all-MiniLM-L6-v2 joined by trained heads; "
        "'pocket:<export dir>' loads an exported aligned variant",
    ),
    "hf": (_create_hf, "'hf:<model id or local dir>': transformers CLIPModel + processor"),
    "aligned": (
        _create_aligned,
        "'aligned:<dir>': an alignment run exported by `modalchorus align --export` "
        "(its base encoder + tuned weights)",
    ),
}


def list_encoders() -> dict[str, str]:
    """Return ``{name: description}`` for every registered encoder family."""
    return {name: desc for name, (_, desc) in _FACTORIES.items()}


def register_encoder(
    name: str, factory: Callable[[str, str | None], Encoder], description: str
) -> None:
    """Register ``factory(spec, device)`` under ``name`` (``name`` or ``name:<spec>``)."""
    _FACTORIES[name] = (factory, description)


def create_encoder(name: str, device: str | None = None) -> Encoder:
    """Build an encoder from its name.

    Parameters
    ----------
    name : str
        ``"pocket"``, ``"pocket:<dir>"``, ``"hf:<model id or local dir>"`` or another
        registered name.
    device : str, optional
        ``"cpu"``, ``"cuda"`` or ``None``/``"auto"``.
    """
    family, _, spec = name.partition(":")
    if family not in _FACTORIES:
        known = ", ".join(sorted(_FACTORIES))
        raise UnknownEncoderError(f"unknown encoder {name!r}; known encoders: {known}")
    if family in ("hf", "aligned") and not spec:
        what = "a model: use 'hf:<model id or local dir>'" if family == "hf" else "a folder"
        raise UnknownEncoderError(f"encoder {family!r} needs {what}")
    factory, _ = _FACTORIES[family]
    return factory(spec, device)
