"""`ladder <command>` as a child process whose output (stdout and stderr) is read as it comes,
so a test can wait for a line (a start-up message) and read everything once it stopped."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

import httpx

ROOT = Path(__file__).parents[1]


class LadderProcess:
    """Started on entering, stopped with SIGTERM (as a process manager would) on leaving."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.args = args
        self.env = env
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> LadderProcess:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", *self.args],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            with self._lock:
                self._lines.append(line)

    @property
    def output(self) -> str:
        """Everything the process wrote so far."""
        with self._lock:
            return "".join(self._lines)

    async def wait_for(self, text: str, seconds: float = 30.0) -> None:
        """Until the output holds `text`; fails if the process ends or `seconds` pass first."""
        assert self._process is not None
        deadline = time.monotonic() + seconds
        while text not in self.output:
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(
                    f"no {text!r} in the output of ladder {self.args[0]}:\n{self.output}"
                )
            await asyncio.sleep(0.02)

    async def wait_healthy(self, url: str, seconds: float = 30.0) -> None:
        """Until GET `url`/healthz answers 200 (the web app is serving)."""
        assert self._process is not None
        deadline = time.monotonic() + seconds
        async with httpx.AsyncClient() as http:
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(f"{url}/healthz")).status_code == 200:
                        return
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError(f"{url} never became healthy:\n{self.output}")
                await asyncio.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: the process dies at once, wherever it is (a crash)."""
        assert self._process is not None
        self._process.send_signal(signal.SIGKILL)
        self._process.wait(timeout=30)

    def stop(self) -> int:
        """SIGTERM, then the exit code once the process and its output have ended."""
        assert self._process is not None and self._reader is not None
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
        code = self._process.wait(timeout=30)
        self._reader.join(timeout=30)
        return code
