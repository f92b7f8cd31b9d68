"""Run the app with uvicorn (``modalchorus serve`` and ``modalchorus demo``)."""

from __future__ import annotations

import errno
import logging
import os
import socket
from collections.abc import Callable, Sequence

import uvicorn

from modalchorus.encoders import Encoder
from modalchorus.server.app import create_app

logger = logging.getLogger(__name__)

#: Loopback only by default: the API can write to the workspace.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``(host, port)`` for the server (port 0 picks a free one).

    Raises
    ------
    OSError
        The address cannot be used (e.g. the port is taken), with a message that says
        what to do.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):  # the port: taken or privileged
            advice = "choose another port with --port (0 picks a free one)"
        else:  # e.g. EADDRNOTAVAIL: the host is no address of this machine
            advice = "give --host an address of this machine, e.g. 127.0.0.1 or 0.0.0.0"
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; {advice}") from None
    return sock


def serve(
    workspace_path: str | os.PathLike[str],
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    encoder: Encoder | None = None,
    warm: Sequence[str] = (),
    log_level: str = "warning",
    announce: Callable[[str], None] | None = None,
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
    announce : callable, optional
        Called with the server's URL (the real port) once the address is bound.

    Raises
    ------
    OSError
        The address cannot be used (:func:`listen`); nothing was started.
    """
    sock = listen(host, port)
    with sock:  # closed however the server ends, also when the app cannot be built
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{sock.getsockname()[1]}"
        app = create_app(workspace_path, encoder, warm=warm, preload_encoder=encoder is None)
        logger.info("serving %s at %s", workspace_path, url)
        if announce is not None:
            announce(url)
        uvicorn.Server(uvicorn.Config(app, log_level=log_level)).run(sockets=[sock])
