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
from dataclasses import dataclass, field
from typing import Any

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


@dataclass
class Hold:
    """Calls of one method held back until the test releases them (HeldCalls.hold)."""

    arrived: threading.Event = field(default_factory=threading.Event)
    gate: threading.Event = field(default_factory=threading.Event)
    process: bool = True


class HeldCalls:
    """What a test does to a fake API's methods, for both fakes: read the calls made, hold a
    method's calls back, make a failing method work again. A subclass keeps `_lock` and a
    `_state` with `calls`, `failures` (by method) and `holds` (by method)."""

    _lock: threading.Lock
    _state: Any

    def recover(self, method: str) -> None:
        """`method` works again (the failures `fail_next` set up that are left are dropped)."""
        with self._lock:
            self._state.failures.pop(method, None)

    def hold(self, method: str) -> threading.Event:
        """Calls of `method` wait, before doing anything, until `release`; returns an event
        that is set once one arrived."""
        hold = Hold()
        with self._lock:
            self._state.holds[method] = hold
        return hold.arrived

    def release(self, method: str, process: bool = True) -> None:
        """Let the held calls go on; with process=False they fail without any effect, as if
        the API never got to them (the caller was gone)."""
        with self._lock:
            hold = self._state.holds.pop(method)
        hold.process = process
        hold.gate.set()

    async def dropped_after_hold(self, method: str) -> bool:
        """In the server, before a call of `method` does anything: wait while the test holds
        the method; True when it then released the call with process=False."""
        with self._lock:
            hold = self._state.holds.get(method)
        if hold is None:
            return False
        hold.arrived.set()
        await asyncio.to_thread(hold.gate.wait)
        return not hold.process

    def calls(self, method: str | None = None) -> list[Any]:
        with self._lock:
            return [c for c in self._state.calls if method is None or c.method == method]
