"""Connections that trickle their request are closed: uvicorn's HTTP/1.1 protocol (h11) with two deadlines.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) but any byte cancels that timer, and it has
no deadline for a request's headers or body, so a client that sends one byte a second holds a connection and a
file descriptor for as long as it likes (issue 25: 60 such clients took the server from 14 to 74 descriptors).
Here the headers must be complete within ``header_timeout_s`` of the connection opening (or of the previous
response on a kept-alive connection), and the body within ``body_timeout_s`` of the headers; otherwise the
client gets a 408 (when no response has started) and the connection is closed. Once a request is read, no
deadline runs: generating a long reply takes what it takes.
"""

from __future__ import annotations

import asyncio
import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

TIMEOUT_RESPONSE = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                    b"content-length: 16\r\nconnection: close\r\n\r\nrequest timeout\n")


def timed_protocol(header_timeout_s: float, body_timeout_s: float) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol class with the two deadlines (pass it as ``uvicorn.Config(http=...)``)."""

    class TimedH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None
        _phase: str = ""
        _partial: bool = False  # bytes of the next request have arrived

        def _arm(self, phase: str, seconds: float) -> None:
            self._disarm()
            self._phase = phase
            self._deadline = self.loop.call_later(seconds, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
            self._phase = ""

        def _follow(self) -> None:
            """Arm or disarm after h11 has read what arrived: headers pending, body pending, or request read."""
            if self.transport is None or self.transport.is_closing():
                self._disarm()
                return
            state = self.conn.their_state
            if state is h11.IDLE:
                if self._phase != "headers":
                    self._arm("headers", header_timeout_s)
            elif state is h11.SEND_BODY:
                if self._phase != "body":
                    self._arm("body", body_timeout_s)
            else:  # DONE, MUST_CLOSE, CLOSED, ERROR: the request is read (or the connection is over)
                self._disarm()

        def _expire(self) -> None:
            phase, self._deadline = self._phase, None
            if self.transport is None or self.transport.is_closing():
                return
            seconds = header_timeout_s if phase == "headers" else body_timeout_s
            log.info("closed a connection from %s: the request's %s not complete within %g s",
                     self.client[0] if self.client else "?", "headers were" if phase == "headers" else "body was",
                     seconds)
            # an idle connection is closed silently, as keep-alive closes it; a started request hears why
            started = self._partial if phase == "headers" else not self.cycle.response_started
            if started:
                self.transport.write(TIMEOUT_RESPONSE)
            self.transport.close()

        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm("headers", header_timeout_s)

        def data_received(self, data: bytes) -> None:
            self._partial = True
            super().data_received(data)
            self._follow()

        def on_response_complete(self) -> None:
            self._partial = False
            super().on_response_complete()
            self._follow()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return TimedH11Protocol
