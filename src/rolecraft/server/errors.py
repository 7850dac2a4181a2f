"""Every error the server sends is OpenAI's error object: {"error": {message, type, param, code}}.

`RolecraftError` carries its own status, type, code and param; request
validation failures become 400s naming the offending parameter the way OpenAI
does (`messages[0].content`); unknown routes and methods, oversized bodies and
unexpected crashes get the same shape, so a client has one thing to parse.
`x-should-retry` tells the official client which failures are worth retrying.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from rolecraft.errors import RolecraftError

log = logging.getLogger("rolecraft.server")

RETRYABLE = {408, 409, 429, 500, 502, 503, 504}
_HTTP_CODES = {401: "invalid_api_key", 404: "not_found", 405: "method_not_allowed", 413: "request_too_large",
               415: "unsupported_media_type", 429: "rate_limit_exceeded"}
_HTTP_TYPES = {429: "requests"}


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI's error object."""

    error: ErrorBody


def _described(text: str) -> dict:
    return {"model": ErrorResponse, "description": text}


# Error statuses every API route may answer with (for the OpenAPI spec).
ERROR_RESPONSES: dict[int | str, dict] = {
    400: _described("Invalid request"), 401: _described("Missing or invalid API key"),
    404: _described("Unknown model, character, session or message"), 409: _described("Conflicting write"),
    413: _described("Request body too large"), 429: _described("Rate limit exceeded"),
    501: _described("An optional runtime this needs is not installed (the message names the extra)"),
}


def error_response(error: RolecraftError, headers: dict[str, str] | None = None) -> JSONResponse:
    """The HTTP response for a RolecraftError."""
    extra = {"x-should-retry": "true" if error.status in RETRYABLE else "false", **(headers or {})}
    return JSONResponse(error.to_openai(), status_code=error.status, headers=extra)


def _param(loc: tuple) -> str | None:
    """A pydantic error location as OpenAI names parameters: messages[0].content."""
    parts = list(loc[1:] if loc and loc[0] in {"body", "query", "path", "header", "form"} else loc)
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif isinstance(part, str) and part.isidentifier() and part not in {"str", "int", "float", "bool", "list"}:
            text += f".{part}" if text else part
    return text or None


def validation_error(exc: RequestValidationError) -> RolecraftError:
    """One readable 400 for a request that failed validation (the first problem, named by its parameter)."""
    first = exc.errors()[0] if exc.errors() else {"type": "invalid", "loc": (), "msg": "invalid request"}
    param = _param(tuple(first.get("loc", ())))
    kind = first.get("type", "")
    if kind == "json_invalid":
        return RolecraftError(f"could not parse the JSON body of your request: {first.get('msg')}",
                              code="invalid_json")
    if kind == "missing":
        return RolecraftError(f"missing required parameter: '{param}'", code="missing_required_parameter",
                              param=param)
    if kind == "extra_forbidden":
        return RolecraftError(f"unrecognized request argument supplied: {param}", code="unknown_parameter",
                              param=param)
    code = "invalid_type" if kind.endswith("_type") or kind.endswith("_parsing") else "invalid_value"
    return RolecraftError(f"invalid value for '{param or 'request'}': {first.get('msg')}", code=code, param=param)


def _allowed(request: Request) -> list[str]:
    """Every method the API serves at this path, from the published spec (Starlette names only the
    methods of the first route whose path matches)."""
    path = request.url.path
    methods = {method.upper() for template, operations in request.app.openapi()["paths"].items()
               if compile_path(template)[0].match(path) for method in operations}
    return sorted(methods)


def install(app: FastAPI) -> None:
    """Register the handlers that render every failure as an OpenAI error object."""

    @app.exception_handler(RolecraftError)
    async def _rolecraft(_: Request, exc: RolecraftError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = f"unknown URL: {request.method} {request.url.path}" if exc.status_code == 404 else str(exc.detail)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed(request))
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        kind = _HTTP_TYPES.get(exc.status_code, "server_error" if exc.status_code >= 500 else "invalid_request_error")
        return error_response(RolecraftError(message, code=code, status=exc.status_code, type=kind),
                              headers=headers)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(RolecraftError("the server hit an internal error; it has been logged",
                                             code="internal_error", status=500, type="server_error"))
