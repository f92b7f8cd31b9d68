"""The ModalChorus web server: a FastAPI app over a workspace, and the built web UI.

:func:`create_app` builds the app; :func:`serve` runs it with uvicorn. Routers (one per
concern) live in :mod:`modalchorus.server.routers`; their pydantic schemas in
:mod:`modalchorus.server.schemas` are the contract the TypeScript front end codes against
(``GET /api/openapi.json``).
"""

from modalchorus.server.app import create_app
from modalchorus.server.serve import DEFAULT_HOST, DEFAULT_PORT, serve

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "create_app", "serve"]
