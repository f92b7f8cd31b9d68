"""``HEAD`` as ``GET`` without the body (RFC 9110 §9.3.2), for every route.

FastAPI's routes answer only the methods they declare, so ``HEAD /api/sets`` matched no
route but ``/api``'s catch-all, which said the resource does not exist (404).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HeadAsGet"]


class HeadAsGet:
    """ASGI middleware: run a ``HEAD`` request as ``GET`` and send its status and headers
    (``content-length`` included) with an empty body.

    Parameters
    ----------
    app : ASGIApp
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        done = False

        async def receive_until_done() -> Message:
            # Once the (empty) body is sent, a streaming response (e.g. job events) sees
            # the client as gone and stops instead of running on unheard.
            if done:
                return {"type": "http.disconnect"}
            return await receive()

        async def send_headers_only(message: Message) -> None:
            nonlocal done
            if message["type"] != "http.response.body":
                await send(message)
            elif not done:
                done = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await self.app({**scope, "method": "GET"}, receive_until_done, send_headers_only)
