"""Expected failures as HTTP answers: unknown things are 404, bad values 422.

"Unknown" means an id or name the workspace does not hold, wherever the request names it:
in the path, the query or the body (a set's items, an intent's point and sets, a run's
intent ids and encoder). A value that cannot be an id at all (a wrong type, ``true`` for
an integer id, an empty string) is a bad value.

A request with several problems is answered for the first in this order: a bad value
(422: what the request alone shows wrong), then an unknown id or name (404), then a
conflict with what the workspace holds or is doing (409: a taken set name, an intent
stored already, a set still named by intents, a job still running). So a new set that
both takes an existing name and names unknown items is a 404 naming the items.

Every error body is JSON with a ``detail``: a message string naming the unknown thing, or
for 422 FastAPI's list of ``{"loc": [..., field], "msg": ...}`` entries naming the field.
No message shows the server's folders (the server may listen on every interface): items
are named by id, files by name (see :mod:`modalchorus.server.redact`).
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from modalchorus.server.schemas import MAX_FILENAME_LENGTH
from modalchorus.store import NotFoundError, SetInUseError, WorkspaceLockedError

#: What python-multipart says of a part header line over its limit (4,224 bytes): the
#: Content-Disposition line holds the file name, so a name of thousands of characters.
_HEADER_TOO_LONG = "Maximum header size exceeded"


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


#: The 503 of a held write lock. The store's message names the catalog file's path.
LOCKED_MESSAGE = (
    "the workspace is busy: another writer (e.g. a modalchorus command) held its lock "
    "for too long; try again when it has finished"
)


async def _locked(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": LOCKED_MESSAGE}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE)


#: The body of an unexpected failure: its message could show anything (a path, a value).
INTERNAL_MESSAGE = "the server failed unexpectedly; its log says why"


async def _internal(_: Request, exc: Exception) -> JSONResponse:
    # Starlette logs the exception (with its traceback) after this answer is sent.
    return JSONResponse({"detail": INTERNAL_MESSAGE}, status_code=500)


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


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or while handling."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


async def _http_error(request: Request, exc: Exception) -> Response:
    # Starlette answers a multipart part header over the parser's limit with a bare 400
    # "Invalid multipart data."; say what it is, as a 422 like other refused uploads.
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and any(_HEADER_TOO_LONG in str(e) for e in _chain(exc)):
        message = (
            "a part's header is too long to read, as a file name of thousands of characters "
            f"makes it: file names may be at most {MAX_FILENAME_LENGTH} characters"
        )
        return JSONResponse({"detail": invalid("files", message).detail}, status_code=422)
    return await http_exception_handler(request, exc)


def install_handlers(app: FastAPI) -> None:
    """Map the workspace's not-found errors to 404, a held write lock to 503, an encoder
    that cannot embed for the shown version and a set still named by intents to 409, and
    render every validation error (NaN or infinite inputs included) and an upload whose
    part headers are too long to parse (an overlong file name) as a 422; anything else
    that fails is a JSON 500 that shows nothing of the failure."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(NotFoundError, _not_found)
    app.add_exception_handler(VersionMismatchError, _conflict)
    app.add_exception_handler(SetInUseError, _conflict)
    app.add_exception_handler(WorkspaceLockedError, _locked)
    app.add_exception_handler(Exception, _internal)
