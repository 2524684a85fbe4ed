"""The access log line without query strings or unknown paths: ``?api_key=…``, or prompt text a client put in
a URL, never reaches a log."""

from __future__ import annotations

import copy
import logging
import re

from uvicorn.logging import AccessFormatter

#: What an access line shows for a path that is none of the server's routes (a client may put any text there).
OTHER_PATH = "<other path>"


def route_patterns(app) -> list[str]:
    """The regular expressions of ``app``'s routes (Starlette compiles one per route path)."""
    return [route.path_regex.pattern for route in getattr(app, "routes", []) if hasattr(route, "path_regex")]


class PathOnlyAccessFormatter(AccessFormatter):
    """uvicorn's access formatter with the query string cut from the request path (its args are client address,
    method, path with query, HTTP version, status) and, when ``routes`` are given, a path that matches none of
    them shown as ``<other path>``."""

    def __init__(self, *args, routes: list[str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.routes = None if routes is None else [re.compile(p) for p in routes]

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            path = args[2].split("?", 1)[0]
            if self.routes is not None and not any(p.match(path) for p in self.routes):
                path = OTHER_PATH
            if path != args[2]:
                record = copy.copy(record)
                record.args = (args[0], args[1], path, args[3], args[4])
        return super().formatMessage(record)
