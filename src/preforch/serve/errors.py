"""Errors as JSON bodies: one line naming the field, never the request's text, never a traceback in the log.

Every refusal has FastAPI's ``detail`` list (``type``, ``loc``, ``msg``: pydantic's ``input`` and ``ctx`` are
dropped, because they quote the request and may hold NaN, which JSON cannot carry) and an OpenAI-style
``error`` object (``message``, ``type``, ``param``, ``code``), whose message the ``openai`` client shows.
"""

from __future__ import annotations

import json
import logging
import traceback

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

log = logging.getLogger(__name__)

#: pydantic error types that only say "this union member did not fit"; another member's error says more.
_TYPE_ONLY = {"string_type", "list_type", "dict_type", "model_type", "model_attributes_type", "literal_error",
              "none_required", "float_type", "int_type", "bool_type", "is_instance_of"}


class ServeError(Exception):
    """A refusal with an HTTP status, raised by the engine or the access checks."""

    def __init__(self, status: int, message: str, kind: str, code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.code, self.param = status, message, kind, code, param
        self.headers = headers


def _loc(raw) -> list[str | int]:
    """A pydantic location without union-member tags (``function-after[...]``, ``list[...]``, ``str``)."""
    out: list[str | int] = []
    for part in raw:
        if isinstance(part, str) and ("[" in part or part in ("str", "int", "float", "bool", "none")):
            continue
        out.append(part)
    return out


def _field(loc) -> str:
    return ".".join(str(part) for part in loc if part != "body") or "body"


def one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clean_errors(errors: list[dict]) -> list[dict]:
    """Validation errors without input or context, union members merged, the most telling error first."""
    cleaned, seen = [], set()
    for e in errors:
        kind = str(e.get("type", "value_error"))
        loc = _loc(e.get("loc", ()))
        msg = str(e.get("msg", "invalid value")).removeprefix("Value error, ")
        if kind == "json_invalid":  # FastAPI puts the character offset in loc
            loc, msg = ["body"], f"invalid JSON ({msg})"
        key = (tuple(loc), msg)
        if key in seen:
            continue
        seen.add(key)
        cleaned.append({"type": kind, "loc": loc, "msg": one_line(msg)})
    # a type mismatch of one union member says less than another member's real complaint
    cleaned.sort(key=lambda e: e["type"] in _TYPE_ONLY)
    return cleaned or [{"type": "value_error", "loc": ["body"], "msg": "invalid request"}]


def refusal(status: int, errors: list[dict], kind: str = "invalid_request_error", code: str = "invalid_value",
            headers: dict[str, str] | None = None) -> JSONResponse:
    first = errors[0]
    message = one_line("; ".join(f"{_field(e['loc'])}: {e['msg']}" for e in errors[:3]), 500)
    return JSONResponse(status_code=status, headers=headers, content={
        "detail": errors, "error": {"message": message, "type": kind, "param": _field(first["loc"]), "code": code}})


def error_body(status: int, message: str, kind: str, code: str | None = None, param: str | None = None,
               headers: dict[str, str] | None = None) -> JSONResponse:
    message = one_line(message)
    return JSONResponse(status_code=status, headers=headers, content={
        "detail": message, "error": {"message": message, "type": kind, "param": param, "code": code}})


async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    return refusal(422, clean_errors(list(exc.errors())))


async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 400:
        # FastAPI answers 400 when the body cannot be read as JSON at all (e.g. nested past Python's limit)
        return refusal(422, [{"type": "json_invalid", "loc": ["body"],
                              "msg": "the body is not JSON this server can read (invalid, or nested too deeply)"}])
    kind = "not_found_error" if exc.status_code == 404 else \
        "server_error" if exc.status_code >= 500 else "invalid_request_error"
    return error_body(exc.status_code, str(exc.detail), kind, headers=getattr(exc, "headers", None))


async def serve_error(request: Request, exc: ServeError) -> JSONResponse:
    return error_body(exc.status, exc.message, exc.kind, exc.code, exc.param, exc.headers)


def log_internal(err: BaseException, where: str = "request") -> None:
    """Log a failure by type and place only: exception messages and tracebacks can quote the request."""
    frames = traceback.extract_tb(err.__traceback__)
    place = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
    log.error("internal error in %s: %s at %s", where, type(err).__name__, place)


def internal_error_response(err: BaseException) -> Response:
    body = {"detail": f"internal error ({type(err).__name__})",
            "error": {"message": f"internal error ({type(err).__name__})", "type": "server_error", "param": None,
                      "code": None}}
    return Response(json.dumps(body), status_code=500, media_type="application/json")


class CatchAll:
    """Outermost ASGI middleware: any exception becomes a JSON 500 logged by type and place, so neither
    Starlette's nor uvicorn's traceback logging (which can quote the request) ever runs."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as err:  # noqa: BLE001 - a request must never take the worker down or reach the log
            log_internal(err, scope.get("path", "request"))
            if not started:
                await internal_error_response(err)(scope, receive, send)
