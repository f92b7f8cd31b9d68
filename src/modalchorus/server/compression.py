"""Gzip for responses, only where the client's ``Accept-Encoding`` allows it.

Starlette's ``GZipMiddleware`` looks for the substring ``gzip``, so ``gzip;q=0`` (RFC 9110:
"not acceptable") would still get compressed bodies; :func:`accepts_gzip` reads the q-values.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import Receive, Scope, Send

__all__ = ["GzipIfAccepted", "accepts_gzip"]


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` value names gzip (or x-gzip) with a q-value above 0.

    A missing q-value means 1 and a malformed one 0. ``*`` alone does not count: an
    uncompressed body is always acceptable, and Starlette would not compress it either.
    """
    best = 0.0
    for part in accept_encoding.split(","):
        coding, _, params = part.partition(";")
        if coding.strip().lower() not in ("gzip", "x-gzip"):
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        best = max(best, q)
    return best > 0


class GzipIfAccepted(GZipMiddleware):
    """``GZipMiddleware`` that honours ``gzip;q=0`` (see :func:`accepts_gzip`)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not accepts_gzip(
            Headers(scope=scope).get("accept-encoding", "")
        ):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
