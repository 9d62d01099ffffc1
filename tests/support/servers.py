"""Real ``redis-server`` and ``memcached`` processes on 127.0.0.1 for the shared-cache tests.

Installed by ``scripts/test-deps.sh`` (apt-get as root). Each fixture starts its own server on a free
port, waits (bounded) until it answers, and stops it by PID afterwards. ``kill()`` stops one mid-test
to show that a shared-cache outage changes no decision.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

STARTUP_SECONDS = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class CacheServer:
    """One server process: ``url`` for ``IDP_CACHE_URL``, ``command(...)`` to talk to it directly."""

    def __init__(self, scheme: str, argv: list[str], port: int, probe: bytes, ready: bytes) -> None:
        self.scheme = scheme
        self.port = port
        self._argv = argv
        self._probe = probe
        self._ready = ready
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}" + ("/0" if self.scheme == "redis" else "")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> CacheServer:
        self._proc = subprocess.Popen(self._argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise RuntimeError(f"{self._argv[0]} exited at start: {err[-2000:]}")
            with contextlib.suppress(OSError):
                if self._ready in self.command(self._probe):
                    return self
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"{self._argv[0]} did not answer within {STARTUP_SECONDS} s")

    def command(self, raw: bytes, timeout: float = 2.0) -> bytes:
        """Send one raw protocol command and return what arrives in reply (tests only)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(raw)
            return sock.recv(65536)

    def kill(self) -> None:
        """Stop the server by its PID (SIGTERM, then SIGKILL after a bounded wait)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if proc.stderr is not None:
            proc.stderr.close()


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        # CI installs it (scripts/test-deps.sh); a silent skip would hide an untested shared cache.
        pytest.fail(f"{name} is not installed: run `bash scripts/test-deps.sh` as root (apt-get install {name})")
    return path


def start_redis() -> CacheServer:
    port = free_port()
    argv = [_binary("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    return CacheServer("redis", argv, port, b"PING\r\n", b"+PONG").start()


def start_memcached() -> CacheServer:
    port = free_port()
    argv = [_binary("memcached"), "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "16"]
    if os.geteuid() == 0:
        argv += ["-u", "root"]  # memcached refuses to run as root without naming a user
    return CacheServer("memcached", argv, port, b"version\r\n", b"VERSION").start()


@pytest.fixture
def redis_server() -> Iterator[CacheServer]:
    server = start_redis()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def memcached_server() -> Iterator[CacheServer]:
    server = start_memcached()
    try:
        yield server
    finally:
        server.kill()
