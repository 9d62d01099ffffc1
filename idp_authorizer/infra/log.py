"""Structured logs: one JSON object per line, on stdout where Lambda sends it to CloudWatch.

Decision lines are written directly (not through :mod:`logging`) and formatted by hand because
they are on the hot path; other messages go through :mod:`logging` with :class:`JsonFormatter`.
Neither ever carries a token, an Authorization header value or a secret: at most the first 12 hex
digits of the token's SHA-256.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from idp_authorizer.core.events import Request
    from idp_authorizer.core.principal import Principal

_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
# C-accelerated JSON string escape, ASCII only: an IdP-supplied value (an introspection ``iss``) may hold a lone
# surrogate, which a UTF-8 stdout cannot encode; escaped, the line is written and stays valid JSON.
_quote: Any = json.encoder.encode_basestring_ascii


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


def _str(value: str | None) -> str:
    return "null" if value is None else str(_quote(value))


class DecisionLog:
    """Writes the one decision line per request. ``stream`` is swappable for tests.

    ``decisions`` chooses which decisions are written: ``all``, ``refusals`` (everything but allows)
    or ``none``. With unbuffered stdout, as on Lambda, each line is a write system call, which costs
    more than answering a cached token: high-traffic APIs may keep refusals only and count the rest
    with ``IDP_METRICS``.
    """

    def __init__(self, level: str = "INFO", stream: IO[str] | None = None, decisions: str = "all") -> None:
        enabled = _LEVELS.get(level, 20) <= _LEVELS["INFO"] and decisions != "none"
        self.enabled = enabled
        self.allows = enabled and decisions == "all"
        self.stream = stream

    def write(
        self,
        *,
        outcome: str,
        code: str,
        principal: Principal | None,
        cache_hit: bool,
        latency_us: float,
        cold_start: bool,
        request: Request | None,
        fingerprint: str | None,
        authn_ctx: str | None = None,
        policy_scope: str | None = None,
    ) -> None:
        """One line: outcome, reason code, who (provider, issuer, kid), cache hit, latency, request id.

        ``authn_ctx`` (only when set): how ``authnCtx`` was cut to fit the response, ``reduced`` or ``omitted``.
        ``policy_scope`` is ``incoming_arn`` when the IAM policy speaks for the incoming ARN alone (size
        budget, or a route IAM cannot express): API Gateway must not replay it on other routes, so a
        REST authorizer caching by token alone is then wrong; ``stage`` for a route-aware policy.
        """
        if not self.enabled or (outcome == "allow" and not self.allows):
            return
        if principal is None:
            who = '"provider":null,"issuer":null,"kid":null'
        else:
            provider, issuer = _quote(principal.provider), _quote(principal.issuer)
            who = f'"provider":{provider},"issuer":{issuer},"kid":{_str(principal.kid)}'
        cut = "" if authn_ctx is None else f',"authn_ctx":{_quote(authn_ctx)}'
        line = (
            f'{{"time":{time.time():.3f},"level":"INFO","logger":"idp_authorizer.decision",'
            f'"outcome":"{outcome}","code":{_quote(code)},{who},'
            f'"cache_hit":{"true" if cache_hit else "false"},"latency_us":{latency_us:.1f},'
            f'"cold_start":{"true" if cold_start else "false"},'
            f'"request_id":{_str(request.request_id if request else None)},'
            f'"token_fp":{_str(fingerprint[:12] if fingerprint else None)},'
            f'"shape":{_str(request.shape if request else None)},"policy_scope":{_str(policy_scope)}{cut}}}\n'
        )
        (self.stream or sys.stdout).write(line)
