"""Run the app with uvicorn (``modalchorus serve`` and ``modalchorus demo``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import uvicorn

from modalchorus.encoders import Encoder
from modalchorus.server.app import create_app

logger = logging.getLogger(__name__)

#: Loopback only by default: the API can write to the workspace.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def serve(
    workspace_path: str | os.PathLike[str],
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    encoder: Encoder | None = None,
    warm: Sequence[str] = (),
    log_level: str = "warning",
) -> None:
    """Serve the UI and API for a workspace until interrupted (blocks).

    Parameters
    ----------
    workspace_path : str or os.PathLike
        An existing workspace.
    host, port
        Where to listen (``127.0.0.1:8765`` by default; port 0 picks a free one).
    encoder : Encoder | None
        Encoder for typed concepts; None loads ``pocket`` when first needed.
    warm : Sequence[str]
        Datasets whose default projection starts fitting at startup if none is stored.
    log_level : str
        uvicorn's log level.
    """
    app = create_app(workspace_path, encoder, warm=warm, preload_encoder=encoder is None)
    logger.info("serving %s at http://%s:%d", workspace_path, host, port)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
