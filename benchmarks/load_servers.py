"""The servers a load run talks to, all on 127.0.0.1: the dev IdP, the introspection endpoint, Redis."""

from __future__ import annotations

import socket
import subprocess
import time

from benchmarks.cold_start import free_port
from benchmarks.load_introspection import IntrospectionServer
from idp_authorizer.tools.devidp import DevIdp

AUDIENCE = "load-api"
CLIENT_ID = "load-bench-authorizer"
CLIENT_SECRET = "load-bench-secret-0123456789"
DISCOVERY = "/.well-known/openid-configuration"
JWKS = "/.well-known/jwks.json"


def start_dev_idp() -> DevIdp:
    return DevIdp(audience=AUDIENCE).start()


def start_introspection() -> IntrospectionServer:
    return IntrospectionServer(CLIENT_ID, CLIENT_SECRET).start()


def idp_counts(idp: DevIdp, introspection: IntrospectionServer | None) -> tuple[int, int, int]:
    """Discovery, key-set and introspection requests so far."""
    calls = introspection.calls if introspection is not None else 0
    return idp.hits.get(DISCOVERY, 0), idp.hits.get(JWKS, 0), calls


class Redis:
    """``redis-server`` on a free loopback port, no persistence; stopped by its PID."""

    def __init__(self, binary: str) -> None:
        self.port = free_port()
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while b"PONG" not in self._command(b"PING\r\n"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _command(self, raw: bytes) -> bytes:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall(raw)
                time.sleep(0.01)
                return sock.recv(1 << 16)
        except OSError:
            return b""

    def stats(self) -> dict[str, int]:
        text = self._command(b"INFO stats\r\n").decode(errors="replace")
        wanted = ("keyspace_hits", "keyspace_misses", "total_commands_processed")
        pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
        return {k: int(v) for k, v in pairs if k in wanted and v.strip().isdigit()}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
