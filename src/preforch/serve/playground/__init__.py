"""The playground page at ``/``: plain HTML, CSS and JavaScript shipped as package data; no build step and
nothing fetched from another site (a strict Content-Security-Policy says so to the browser too)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

#: The page's files and their types: a fixed table, so no request path ever reaches the file system.
FILES = {"index.html": "text/html; charset=utf-8", "playground.js": "text/javascript; charset=utf-8",
         "playground.css": "text/css; charset=utf-8"}
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def read(name: str) -> bytes:
    return resources.files(__name__).joinpath(name).read_bytes()


def _file(name: str) -> Response:
    if name not in FILES:
        raise HTTPException(status_code=404, detail="Not Found")
    return Response(read(name), media_type=FILES[name], headers=HEADERS)


def playground_routes() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def index() -> Response:
        return _file("index.html")

    @router.get("/playground/{name}")
    async def static(name: str) -> Response:
        return _file(name)

    return router
