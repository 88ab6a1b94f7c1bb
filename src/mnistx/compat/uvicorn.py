"""uvicorn's HTTP/1.1 protocol with a deadline for each request and a cap per client.

uvicorn has no timeout for a request's headers or body: a client that opens connections and
never finishes sending holds them, and ~64 such connections made the app answer 503 to
everyone. Here each request must arrive whole (headers and body) within REQUEST_SECONDS, or
its connection is closed, and one client address holds at most PER_CLIENT connections (the
next are closed at once), so slow or greedy clients cannot starve the others.

uvicorn's internals are used here only, and tests/test_compat_uvicorn.py checks the ones this
relies on: `H11Protocol` (uvicorn.protocols.http.h11_impl, which uvicorn's `http=` setting
takes) and its `client`, `transport`, `loop` and `conn` (the h11 connection) attributes.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

REQUEST_SECONDS = 10.0  # to send one request's headers and body
PER_CLIENT = 32  # open connections per client address


class GuardedH11Protocol(H11Protocol):
    """H11Protocol with a per-request deadline and a per-client connection cap."""

    open_per_client: Counter[str] = Counter()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._peer = self.client[0] if self.client else "?"
        self.open_per_client[self._peer] += 1
        self._deadline: asyncio.TimerHandle | None = None
        if self.open_per_client[self._peer] > PER_CLIENT:
            transport.close()
            return
        self._start_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_deadline()
        self.open_per_client[self._peer] -= 1
        if self.open_per_client[self._peer] <= 0:
            del self.open_per_client[self._peer]
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.SEND_BODY and self.conn.their_state is not h11.IDLE:
            self._stop_deadline()  # the whole request is in

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._start_deadline()  # the next request on this connection gets its own

    def _start_deadline(self) -> None:
        self._stop_deadline()
        self._deadline = self.loop.call_later(REQUEST_SECONDS, self._too_slow)

    def _stop_deadline(self) -> None:
        if getattr(self, "_deadline", None) is not None:
            self._deadline.cancel()  # type: ignore[union-attr]
            self._deadline = None

    def _too_slow(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()


def protocol_settings() -> dict[str, Any]:
    """uvicorn.Config keywords for the guarded protocol."""
    return {"http": GuardedH11Protocol, "timeout_keep_alive": 5}
