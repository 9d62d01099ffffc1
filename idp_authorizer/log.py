"""Structured logs: one JSON object per line, on stdout where Lambda sends it to CloudWatch.

Decision lines are written directly (not through :mod:`logging`) because they are on the hot path;
other messages go through :mod:`logging` with :class:`JsonFormatter`. Neither ever carries a token,
an Authorization header value or a secret: at most a short SHA-256 fingerprint of the token.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import IO, Any

_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


class JsonFormatter(logging.Formatter):
    """``{"time":..., "level":..., "logger":..., "message":...}`` per record."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO", stream: IO[str] | None = None) -> None:
    """Route the ``idp_authorizer`` loggers to one JSON handler; keep chatty libraries at WARNING."""
    logger = logging.getLogger("idp_authorizer")
    for handler in list(logger.handlers):
        if getattr(handler, "_idp_authorizer", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter())
    handler._idp_authorizer = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(_LEVELS.get(level, 20))
    logger.propagate = False
    for name in ("aiohttp", "aiocache", "joserfc", "asyncio"):
        logging.getLogger(name).setLevel(max(logging.WARNING, _LEVELS.get(level, 20)))


class DecisionLog:
    """Writes the one decision line per request. ``stream`` is swappable for tests."""

    def __init__(self, level: str = "INFO", stream: IO[str] | None = None) -> None:
        self.enabled = _LEVELS.get(level, 20) <= _LEVELS["INFO"]
        self.stream = stream

    def write(
        self,
        *,
        outcome: str,
        code: str,
        provider: str | None,
        issuer: str | None,
        kid: str | None,
        cache_hit: bool,
        latency_us: float,
        cold_start: bool,
        request_id: str | None,
        fingerprint: str | None,
        shape: str | None,
    ) -> None:
        if not self.enabled:
            return
        line = json.dumps(
            {
                "time": round(time.time(), 3),
                "level": "INFO",
                "logger": "idp_authorizer.decision",
                "outcome": outcome,
                "code": code,
                "provider": provider,
                "issuer": issuer,
                "kid": kid,
                "cache_hit": cache_hit,
                "latency_us": round(latency_us, 1),
                "cold_start": cold_start,
                "request_id": request_id,
                "token_fp": fingerprint,
                "shape": shape,
            },
            separators=(",", ":"),
        )
        (self.stream or sys.stdout).write(line + "\n")
