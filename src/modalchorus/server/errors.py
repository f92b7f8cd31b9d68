"""Expected failures as HTTP answers: unknown things are 404, bad values 422.

Every error body is JSON with a ``detail``: a message string, or for 422 FastAPI's list of
``{"loc": [..., field], "msg": ...}`` entries naming the field.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from modalchorus.store import NotFoundError, SetInUseError, WorkspaceLockedError


class VersionMismatchError(ValueError):
    """The server's encoder cannot embed new content for the version a view shows (409)."""


def not_found(message: str) -> HTTPException:
    """A 404 with ``message``."""
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=message)


def invalid(field: str | None, message: str, where: str = "body") -> HTTPException:
    """A 422 naming ``field`` (in ``where``: "body", "query" or "path"; None: the whole
    ``where``), like FastAPI's own."""
    loc = [where] if field is None else [where, field]
    return HTTPException(422, detail=[{"loc": loc, "msg": message, "type": "value_error"}])


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


def _json_safe(value: Any) -> Any:
    """``value`` with non-finite floats as strings (JSON has no NaN or Infinity) and lone
    UTF-16 surrogates (valid JSON escapes, not UTF-8) spelled out as ``\\udXXX``."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value


async def _invalid_request(_: Request, exc: Exception) -> JSONResponse:
    # FastAPI's own handler echoes the input, which fails to render for NaN, 1e400 or a
    # lone surrogate ("\ud800", which Python's JSON parser accepts).
    assert isinstance(exc, RequestValidationError)
    detail = _json_safe(jsonable_encoder(exc.errors()))
    return JSONResponse({"detail": detail}, status_code=422)


def install_handlers(app: FastAPI) -> None:
    """Map the workspace's not-found errors to 404, a held write lock to 503, an encoder
    that cannot embed for the shown version and a set still named by intents to 409, and
    render every validation error (NaN or infinite inputs included) as a 422."""
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(NotFoundError, _not_found)
    app.add_exception_handler(VersionMismatchError, _conflict)
    app.add_exception_handler(SetInUseError, _conflict)
    app.add_exception_handler(WorkspaceLockedError, _locked)
