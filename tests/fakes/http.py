"""Serving apps over HTTP in tests: a loopback socket, and uvicorn on it.

The fake APIs run in a thread with its own event loop (`ServerThread`), like an external
service; a web process under test runs in the test's event loop (`serving`).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import uvicorn
from starlette.types import ASGIApp


def listening_socket() -> tuple[socket.socket, str]:
    """A socket bound to a free loopback port, and its base url (known before serving).

    IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on connections accepted from a socket
    whose proto says TCP; without it Nagle's algorithm meets delayed ACKs, 40 ms a request."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


class ServerThread:
    """uvicorn serving `app` on `sock` from a daemon thread; `name` says what did not start."""

    def __init__(self, app: ASGIApp, sock: socket.socket, name: str) -> None:
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._name = name

    def start(self) -> None:
        """Start serving; return once uvicorn is listening (at most 60 s)."""
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self._name} did not start")
            time.sleep(0.005)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


@asynccontextmanager
async def serving(app: ASGIApp, sock: socket.socket) -> AsyncIterator[None]:
    """Run `app` with uvicorn on `sock` in this event loop, like a web process; stop on exit."""
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped before it started")
        await asyncio.sleep(0.005)
    try:
        yield
    finally:
        server.should_exit = True
        await task


async def wait_until(
    condition: Callable[[], object], within: float, what: str, calls: Callable[[], object]
) -> None:
    """Poll `condition` (from the test's event loop) until it holds; on timeout the error
    names `what` and shows `calls()`, the requests the fake got."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}; calls: {calls()}")
        await asyncio.sleep(0.01)
