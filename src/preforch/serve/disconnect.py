"""Work nobody waits for is dropped: a chat whose client has gone stops generating at the next decoding step,
and its queued passes (weights, generation, best-of-N scoring) never run.

A non-streamed answer (and a streamed best-of-N one, which is sent only once chosen) is computed while a watcher
reads the connection: after the body, the next ASGI message is ``http.disconnect``, which uvicorn delivers the
moment the socket closes. Then the request's cancel flag is set (the generation pass checks it after every
decoding step, :func:`preforch.models.generation.cancel_criteria`) and the request's task is cancelled, which
takes its jobs that have not started off their lanes (:class:`preforch.serve.batching.Lane` skips cancelled
futures). Token streams stop the same way when Starlette stops iterating them (:mod:`preforch.serve.streaming`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.responses import Response

log = logging.getLogger(__name__)

#: nginx's "client closed request": never seen by the client, it marks the abandoned request in the access log.
CLIENT_CLOSED = 499


async def wait_for_disconnect(receive: Callable[[], Awaitable[dict]]) -> None:
    """Returns once the client has closed the connection (the request body must have been read already)."""
    while True:
        message = await receive()
        if message.get("type") == "http.disconnect":
            return


async def unless_client_leaves(request: Request, cancel: threading.Event, work: Awaitable[Response]) -> Response:
    """``work``'s response, or, when the client goes first, a 499 nobody reads, after the work is cancelled."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(wait_for_disconnect(request.receive))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:  # the server itself stops the request (shutdown): stop the work too
        cancel.set()
        task.cancel()
        raise
    finally:
        watcher.cancel()
    if task.done():
        return task.result()
    cancel.set()  # the running generation pass sees this after its current decoding step
    task.cancel()  # queued lane jobs of this request are skipped
    with contextlib.suppress(asyncio.CancelledError, Exception):  # nobody is left to tell
        await task
    log.info("client left before its chat completion was ready: its generation was stopped")
    return Response(status_code=CLIENT_CLOSED)
