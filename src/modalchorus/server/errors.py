"""Expected failures as HTTP answers: unknown things are 404, bad values 422.

Every error body is JSON with a ``detail``: a message string, or for 422 FastAPI's list of
``{"loc": [..., field], "msg": ...}`` entries naming the field.
"""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.responses import JSONResponse

from modalchorus.store import NotFoundError, WorkspaceLockedError


class VersionMismatchError(ValueError):
    """The server's encoder cannot embed new content for the version a view shows (409)."""


def not_found(message: str) -> HTTPException:
    """A 404 with ``message``."""
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=message)


def invalid(field: str, message: str, where: str = "body") -> HTTPException:
    """A 422 naming ``field`` (in ``where``: "body", "query" or "path"), like FastAPI's own."""
    return HTTPException(
        422,
        detail=[{"loc": [where, field], "msg": message, "type": "value_error"}],
    )


def conflict(message: str) -> HTTPException:
    """A 409 with ``message``."""
    return HTTPException(status.HTTP_409_CONFLICT, detail=message)


def _message(exc: Exception) -> str:
    return str(exc.args[0]) if exc.args else str(exc)


async def _not_found(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": _message(exc)}, status_code=status.HTTP_404_NOT_FOUND)


async def _conflict(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": _message(exc)}, status_code=status.HTTP_409_CONFLICT)


async def _locked(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": _message(exc)}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE)


def install_handlers(app: FastAPI) -> None:
    """Map the workspace's not-found errors to 404, a held write lock to 503 and an encoder
    that cannot embed for the shown version to 409."""
    app.add_exception_handler(NotFoundError, _not_found)
    app.add_exception_handler(VersionMismatchError, _conflict)
    app.add_exception_handler(WorkspaceLockedError, _locked)
