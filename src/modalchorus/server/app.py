"""The app factory: API routers under ``/api``, the built web UI at ``/``."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from modalchorus.encoders import Encoder
from modalchorus.server.compression import GzipIfAccepted
from modalchorus.server.errors import install_handlers, not_found
from modalchorus.server.head import HeadAsGet
from modalchorus.server.jobs import JobManager
from modalchorus.server.projections import DEFAULT_METHOD
from modalchorus.server.redact import PathRedactor
from modalchorus.server.routers import ROUTERS
from modalchorus.server.state import EncoderProvider, ServerState
from modalchorus.server.views import ViewCache
from modalchorus.store import Workspace

logger = logging.getLogger(__name__)

#: Where ``make install`` (``npm run build`` in ``web/``) puts the built front end.
STATIC_DIR = Path(__file__).resolve().parent / "static"

_NOT_BUILT = """<!doctype html><meta charset="utf-8"><title>ModalChorus</title>
<h1>ModalChorus</h1><p>The web UI is not built. Run <code>make install</code> (or
<code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code>) and reload. The API works
without it; its schema is at <a href="/api/openapi.json">/api/openapi.json</a> (the
interactive docs come with the build).</p>"""


def create_app(
    workspace_path: str | os.PathLike[str],
    encoder: Encoder | None = None,
    *,
    static_dir: Path | None = STATIC_DIR,
    warm: Sequence[str] = (),
    preload_encoder: bool = False,
) -> FastAPI:
    """Build the web app over an existing workspace.

    Parameters
    ----------
    workspace_path : str or os.PathLike
        A workspace folder (``Workspace.open``: never created here).
    encoder : Encoder | None
        Encoder for typed concepts (the concept axis); None loads ``pocket`` on first use.
    static_dir : pathlib.Path | None
        The built front end; None (or a folder without ``index.html``) serves a page that
        says how to build it.
    warm : Sequence[str]
        Datasets whose default projection (under the concept encoder, else the first
        embedded encoder) starts fitting at startup when none is stored.
    preload_encoder : bool
        Load the concept encoder in the background at startup (else on first use).

    Returns
    -------
    fastapi.FastAPI
        The OpenAPI schema is at ``/api/openapi.json``, interactive docs at ``/api/docs``.

    Raises
    ------
    NotAWorkspaceError
        ``workspace_path`` holds no workspace.
    """
    workspace = Workspace.open(workspace_path)
    state = ServerState(
        workspace=workspace,
        views=ViewCache(workspace),
        encoder=EncoderProvider(encoder),
        jobs=JobManager(redact=PathRedactor(workspace)),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if preload_encoder and not state.encoder.loaded:
            threading.Thread(target=state.encoder.get, name="load-encoder", daemon=True).start()
        if warm:
            encoders = workspace.embedded_encoders()
            encoder_id = encoder.id if encoder is not None else (encoders or [""])[0]
            state.warm(list(warm), encoder_id, DEFAULT_METHOD)
        yield
        state.jobs.shutdown()
        workspace.close()

    app = FastAPI(
        title="ModalChorus",
        summary="Visual probing of multi-modal embeddings.",
        version="0.1.0",
        openapi_url="/api/openapi.json",
        docs_url=None,  # FastAPI's page loads Swagger UI from a CDN; the build bundles it
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.modalchorus = state
    # JS, JSON and the id column of point frames compress well; SSE is never buffered.
    app.add_middleware(GzipIfAccepted, minimum_size=1024, compresslevel=5)
    app.add_middleware(HeadAsGet)  # outermost: HEAD gets GET's headers, gzip's included
    install_handlers(app)
    for router in ROUTERS:
        app.include_router(router, prefix="/api")

    web_root = static_dir if static_dir and (static_dir / "index.html").is_file() else None

    @app.get("/api/docs", include_in_schema=False, response_model=None)
    def api_docs() -> RedirectResponse | HTMLResponse:
        """The interactive API docs: the built ``docs.html`` (Swagger UI, no CDN)."""
        if web_root is not None and (web_root / "docs.html").is_file():
            return RedirectResponse("/docs.html")
        return HTMLResponse(_NOT_BUILT)

    @app.api_route(
        "/api/{rest:path}",
        include_in_schema=False,
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
    )
    def unknown_route(rest: str, request: Request) -> None:
        raise not_found(f"no API route {request.method} /api/{rest}")

    if web_root is not None:
        app.mount("/", StaticFiles(directory=web_root, html=True), name="web")
    else:
        if static_dir is not None:
            logger.warning("web UI not built (%s has no index.html)", static_dir)

        @app.get("/", include_in_schema=False)
        def not_built() -> HTMLResponse:
            return HTMLResponse(_NOT_BUILT)

    return app
