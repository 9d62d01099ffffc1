"""A key set per issuer: parsed once, cached with a maximum age, refreshed with care.

- Single-flight: concurrent misses share one fetch.
- Penalty box: after a refresh that still lacks a ``kid``, no refresh for an unknown ``kid`` for
  ``cooldown`` seconds, so a flood of made-up kids costs the IdP at most one call per window.
- Last known good: a failed refresh keeps the old keys, served for at most ``stale_seconds`` past
  their maximum age; a bad response never replaces good keys.
- Failure backoff: after a failed fetch, callers that need keys fail fast for ``retry_after``
  seconds instead of queueing on a dead IdP; recovery is automatic afterwards.
- An unknown ``kid`` is a bad token (:class:`InvalidToken`) only when a key set fetched within its
  maximum age says so: when the refresh that would tell failed, it is an outage
  (:class:`UpstreamUnavailable`, never cached as a verdict), since the kid may be a key just rotated in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from idp_authorizer.core.clock import Clock
from idp_authorizer.core.errors import InvalidToken, Reason, UpstreamUnavailable
from idp_authorizer.infra.http import HttpClient
from idp_authorizer.infra.remote_document import Freshness, RemoteDocument
from idp_authorizer.jose.jwk import VerifyingKey, build_key_set

if TYPE_CHECKING:
    from idp_authorizer.infra.shared_cache import SharedDocuments

logger = logging.getLogger("idp_authorizer.jwks")


@dataclass(frozen=True, slots=True)
class KeySetPolicy:
    """How long keys are trusted and how often the IdP may be asked."""

    max_age: float = 3600.0
    cooldown: float = 30.0
    stale_seconds: float = 6 * 3600.0
    retry_after: float = 5.0


class JwksStore:
    """The verification keys of one issuer, fetched from ``url`` (a :class:`RemoteDocument` of keys)."""

    def __init__(
        self,
        http: HttpClient,
        url: str | Callable[[], Awaitable[str]],
        algorithms: Collection[str],
        policy: KeySetPolicy = KeySetPolicy(),
        clock: Clock = time.time,
        *,
        shared: SharedDocuments | None = None,
    ) -> None:
        self._http = http
        self._algorithms = frozenset(algorithms)
        self._policy = policy
        self._clock = clock
        freshness = Freshness(policy.max_age, policy.stale_seconds, policy.retry_after)
        self.document = RemoteDocument(http, url, self._parse, freshness, clock, what="key set", shared=shared)
        self._penalty_at = -float("inf")
        self.penalty_hits = 0

    @property
    def fetches(self) -> int:
        """Key-set fetches attempted, for tests and metrics."""
        return self.document.fetches

    def fresh_keys(self) -> tuple[VerifyingKey, ...]:
        """The keys of the key set if it is within its maximum age, else none (no I/O)."""
        keys = self.document.fresh()
        return () if keys is None else tuple(keys.values())

    def cached(self, kid: str) -> VerifyingKey | None:
        """The key for ``kid`` if the key set is within its maximum age (no I/O)."""
        keys = self.document.fresh()
        return None if keys is None else keys.get(kid)

    async def get(self, kid: str) -> VerifyingKey:
        """The key for ``kid``, refreshing the key set when it is old or lacks the kid (within limits).

        Raises :class:`InvalidToken` ``unknown_kid`` only after a successful refresh (or one within the
        penalty box) lacked the kid; :class:`UpstreamUnavailable` when no key can be found because the
        refresh failed or is backing off, and no last-known-good key for ``kid`` is within its stale window.
        """
        fresh = self.document.fresh()
        if fresh is not None:
            key = fresh.get(kid)
            if key is not None:
                return key
            if self._clock() - self._penalty_at < self._policy.cooldown:
                self.penalty_hits += 1
                raise InvalidToken(Reason.UNKNOWN_KID, "no key with this kid (key set refreshed recently)")
        try:
            keys = await self.document.refresh(accept=lambda found: kid in found)
        except UpstreamUnavailable:
            last_good = self.document.last_good()
            key = None if last_good is None else last_good.get(kid)
            if key is not None:
                logger.warning("serving last known good keys during an IdP outage")
                return key
            # Not "unknown_kid": the kid could not be checked against the IdP's current key set.
            raise
        key = keys.get(kid)
        if key is None:
            self._penalty_at = self._clock()
            raise InvalidToken(Reason.UNKNOWN_KID, "no key with this kid")
        return key

    async def refresh(self, kid: str | None = None) -> None:
        """Fetch the key set once, shared by every concurrent caller; ``kid`` is the key being looked for."""
        await self.document.refresh(accept=lambda found: kid is None or kid in found)

    def _parse(self, body: dict[str, Any]) -> dict[str, VerifyingKey]:
        # A shared-tier copy for an unknown kid that lacks it too is not taken (``accept``): the refresh
        # goes to the IdP, so a rotation is seen at once even when instances saved the old set in turn.
        try:
            keys = build_key_set(body, self._algorithms)
        except ValueError as exc:
            raise UpstreamUnavailable(Reason.INVALID_JWKS, "the key set is not a JWK Set") from exc
        if not keys:
            raise UpstreamUnavailable(Reason.INVALID_JWKS, "the key set has no usable keys")
        return keys

    async def close(self) -> None:
        await self._http.close()
        await self.document.close()
