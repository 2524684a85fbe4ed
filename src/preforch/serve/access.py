"""Who may call the server and how much they may send: an optional bearer key, the Host check on loopback,
the body-size limit, and CORS (off unless origins are configured). Pure ASGI middleware, no request logging.

The key is read from an environment variable or a file, never from the command line (where ``ps`` and shell
history would show it).
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from starlette.middleware.cors import CORSMiddleware

from preforch.errors import PreforchError
from preforch.serve.config import ServeConfig
from preforch.serve.errors import error_body

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: Paths anyone may read: the page, its files, liveness, and the API description.
PUBLIC_PATHS = ("/", "/health", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/favicon.ico")
PUBLIC_PREFIXES = ("/playground/",)


def read_api_key(config: ServeConfig) -> str | None:
    """The bearer key: the file ``api_key_file`` if set, else the variable ``api_key_env`` if set and not empty."""
    if config.api_key_file:
        path = Path(config.api_key_file).expanduser()
        if not path.is_file():
            raise PreforchError(f"serve: api_key_file {path} not found")
        mode = path.stat().st_mode
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            log.warning("api_key_file %s is readable by other users; chmod 600 it", path)
        key = path.read_text(encoding="utf-8").strip()
        if not key:
            raise PreforchError(f"serve: api_key_file {path} is empty")
        return key
    if config.api_key_env:
        key = os.environ.get(config.api_key_env, "").strip()
        return key or None
    return None


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


def _host_name(value: str) -> str:
    """The name part of a Host header value (``[::1]:8000`` → ``::1``, ``localhost:8000`` → ``localhost``)."""
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


class AccessGuard:
    """Host check (when bound to loopback: a page on another site cannot reach the server through a name
    that resolves to 127.0.0.1, i.e. DNS rebinding), body-size limit (413), and the bearer key (401)."""

    def __init__(self, app, config: ServeConfig, api_key: str | None) -> None:
        self.app = app
        self.max_body = config.max_body_bytes
        self.api_key = api_key.encode() if api_key else None
        self.hosts = {*LOOPBACK, *config.allowed_hosts} if is_loopback(config.host) else None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.hosts is not None:
            host = _host_name(_header(scope, b"host") or "")
            if host not in self.hosts:
                await error_body(400, "the Host header names no address this server answers to", "invalid_request_error",
                                 "invalid_host", "host")(scope, receive, send)
                return
        path = scope.get("path", "")
        if self.api_key and scope.get("method") != "OPTIONS" and not (path in PUBLIC_PATHS
                                                                      or path.startswith(PUBLIC_PREFIXES)):
            given = _header(scope, b"authorization") or ""
            scheme, _, token = given.partition(" ")
            if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip().encode(), self.api_key):
                await error_body(401, "missing or wrong API key: send 'Authorization: Bearer <key>'",
                                 "authentication_error", "invalid_api_key", "authorization",
                                 {"WWW-Authenticate": "Bearer"})(scope, receive, send)
                return
        if scope.get("method") in ("POST", "PUT", "PATCH"):
            await self._with_body(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _with_body(self, scope, receive, send) -> None:
        """Read the whole body (at most ``max_body_bytes``) before the app runs, then replay it."""
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await self._too_large(scope, receive, send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the disconnect, for streaming responses

        await self.app(scope, replay, send)

    async def _too_large(self, scope, receive, send) -> None:
        await error_body(413, f"the body exceeds max_body_bytes {self.max_body}", "invalid_request_error",
                         "body_too_large", "body", {"Connection": "close"})(scope, receive, send)


def add_cors(app, config: ServeConfig) -> None:
    """Allow browser pages from ``cors_origins`` (none by default: same-origin only)."""
    if not config.cors_origins:
        return

    app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins), allow_methods=["GET", "POST"],
                       allow_headers=["Authorization", "Content-Type"], allow_credentials=False, max_age=600)
