"""The authorizer at run time: one event in, one response out, using cached verdicts when it can.

A warm request whose token was seen before is answered from the in-memory verdict cache without
entering the event loop; a JWT whose key is cached is verified without it too. Only a request that
needs the IdP runs the container's single event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from idp_authorizer.cache import BoundedMemoryCache
from idp_authorizer.clock import Clock
from idp_authorizer.errors import AuthorizerError, InvalidToken, UpstreamUnavailable
from idp_authorizer.events import Request, TokenSource, parse_event
from idp_authorizer.jwt import decompose, is_compact_jws
from idp_authorizer.log import DecisionLog
from idp_authorizer.outcome import Decision, Responder
from idp_authorizer.principal import Principal
from idp_authorizer.provider import Provider

logger = logging.getLogger("idp_authorizer.runtime")


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """How long verdicts are reused: positive ones per provider (``cache_seconds``), refusals here."""

    negative_seconds: float = 10.0


class ProviderRouter:
    """Picks the provider for a token: by unverified ``iss`` for JWTs, introspection for the rest.

    The issuer only selects; the chosen provider then verifies everything with its own keys, so a
    token cannot borrow another issuer's trust.
    """

    def __init__(self, providers: Sequence[Provider]) -> None:
        self.providers = tuple(providers)
        self._by_issuer = {p.issuer: p for p in providers if p.issuer is not None}
        self._opaque = next((p for p in providers if p.issuer is None), None)

    def select(self, token: str) -> Provider:
        if len(self.providers) == 1:
            return self.providers[0]
        if not is_compact_jws(token):
            if self._opaque is None:
                raise InvalidToken("malformed_token", "not a JWT and no introspection provider is configured")
            return self._opaque
        issuer = decompose(token).unverified_claims.get("iss")
        provider = self._by_issuer.get(issuer) if isinstance(issuer, str) else None
        if provider is None:
            raise InvalidToken("unknown_issuer", "no provider is configured for the token issuer")
        return provider


class Authorizer:
    """Turns API Gateway authorizer events into responses. Build it once per container."""

    def __init__(
        self,
        router: ProviderRouter,
        responder: Responder,
        *,
        sources: Sequence[TokenSource],
        cache: BoundedMemoryCache,
        cache_policy: CachePolicy = CachePolicy(),
        max_token_bytes: int = 10 * 1024,
        decision_log: DecisionLog | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.router = router
        self.responder = responder
        self.cache = cache
        self._sources = tuple(sources)
        self._cache_policy = cache_policy
        self._max_token_bytes = max_token_bytes
        self._log = decision_log or DecisionLog()
        self._clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._cold = True

    # -- entry points -------------------------------------------------------------------------

    def handle(self, event: object) -> dict[str, Any]:
        """Synchronous entry (Lambda). Enters the event loop only when the IdP must be asked."""
        started = time.perf_counter()
        request, decision, fingerprint, token = self._begin(event)
        cache_hit = decision is not None
        if decision is None:
            assert token is not None
            decision = self._verify_local(token)
            if decision is None:
                decision = self._run(self._verify(token))
            self._remember(fingerprint, decision)
        return self._finish(request, decision, fingerprint, cache_hit, started)

    async def authorize(self, event: object) -> dict[str, Any]:
        """Asynchronous entry for async callers; same decisions as :meth:`handle`."""
        started = time.perf_counter()
        request, decision, fingerprint, token = self._begin(event)
        cache_hit = decision is not None
        if decision is None:
            assert token is not None
            decision = self._verify_local(token) or await self._verify(token)
            self._remember(fingerprint, decision)
        return self._finish(request, decision, fingerprint, cache_hit, started)

    # -- steps --------------------------------------------------------------------------------

    def _begin(self, event: object) -> tuple[Request | None, Decision | None, str | None, str | None]:
        """Parse the event and answer from the verdict cache when possible."""
        try:
            request = parse_event(event, self._sources)
        except InvalidToken as exc:
            return None, Decision("invalid", exc.code), None, None
        token = request.token
        if token is None:
            return request, Decision("invalid", "missing_token"), None, None
        if len(token) > self._max_token_bytes:
            return request, Decision("invalid", "token_too_large"), None, None
        fingerprint = hashlib.sha256(token.encode()).hexdigest()
        cached = self.cache.get_fresh(fingerprint)
        if cached is None:
            return request, None, fingerprint, token
        if isinstance(cached, Principal):
            return request, self._judge(request, cached), fingerprint, token
        return request, Decision("invalid", str(cached)), fingerprint, token

    def _verify_local(self, token: str) -> Decision | None:
        try:
            principal = self.router.select(token).verify_local(token)
        except AuthorizerError as exc:
            return _failure(exc)
        return None if principal is None else Decision("allow", "verified", principal)

    async def _verify(self, token: str) -> Decision:
        try:
            principal = await self.router.select(token).verify(token)
        except AuthorizerError as exc:
            return _failure(exc)
        return Decision("allow", "verified", principal)

    def _judge(self, request: Request | None, decision_or_principal: Principal) -> Decision:
        principal = decision_or_principal
        if request is not None and self.responder.permits(request, principal):
            return Decision("allow", "allowed", principal)
        return Decision("deny", "insufficient_scope", principal)

    def _remember(self, fingerprint: str | None, decision: Decision) -> None:
        """Cache a verdict until the earliest of the token's ``exp`` and the configured maximum."""
        if fingerprint is None:
            return
        now = self._clock()
        principal = decision.principal
        if principal is not None:
            seconds = next((p.cache_seconds for p in self.router.providers if p.name == principal.provider), 0.0)
            if seconds > 0:
                self.cache.put(fingerprint, principal, min(principal.expires_at, now + seconds))
        elif decision.outcome == "invalid" and self._cache_policy.negative_seconds > 0:
            self.cache.put(fingerprint, decision.code, now + self._cache_policy.negative_seconds)

    def _finish(
        self,
        request: Request | None,
        decision: Decision,
        fingerprint: str | None,
        cache_hit: bool,
        started: float,
    ) -> dict[str, Any]:
        if decision.principal is not None and decision.code == "verified":
            decision = self._judge(request, decision.principal)
        principal = decision.principal
        try:
            return self.responder.render(request, decision)
        finally:
            self._log.write(
                outcome=decision.outcome,
                code=decision.code,
                provider=principal.provider if principal else None,
                issuer=principal.issuer if principal else None,
                kid=principal.kid if principal else None,
                cache_hit=cache_hit,
                latency_us=(time.perf_counter() - started) * 1e6,
                cold_start=self._cold,
                request_id=request.request_id if request else None,
                fingerprint=fingerprint[:12] if fingerprint else None,
                shape=request.shape if request else None,
            )
            self._cold = False

    def close(self) -> None:
        """Close HTTP sessions (tools and tests; a Lambda container just freezes)."""
        for provider in self.router.providers:
            closer = getattr(provider, "close", None)
            if closer is not None and self._loop is not None and not self._loop.is_closed():
                self._loop.run_until_complete(closer())

    def _run(self, coroutine: Any) -> Decision:
        """Run on the container's one event loop (created once, never closed while warm)."""
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        result: Decision = self._loop.run_until_complete(coroutine)
        return result


def _failure(exc: AuthorizerError) -> Decision:
    if isinstance(exc, UpstreamUnavailable):
        logger.warning("identity provider unavailable: %s", exc.code)
        return Decision("unavailable", exc.code)
    return Decision("invalid", exc.code)
