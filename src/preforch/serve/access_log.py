"""The access log line without query strings: ``?api_key=…`` or prompt text in a URL never reaches a log."""

from __future__ import annotations

import copy
import logging

from uvicorn.logging import AccessFormatter


class PathOnlyAccessFormatter(AccessFormatter):
    """uvicorn's access formatter with the query string cut from the request path (its args are client address,
    method, path with query, HTTP version, status)."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str) and "?" in args[2]:
            record = copy.copy(record)
            record.args = (args[0], args[1], args[2].split("?", 1)[0], args[3], args[4])
        return super().formatMessage(record)
