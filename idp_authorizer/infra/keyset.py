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
from typing import TYPE_CHECKING

from idp_authorizer.core.clock import Clock
from idp_authorizer.core.errors import InvalidToken, Reason, UpstreamUnavailable
from idp_authorizer.infra.http import HttpClient
from idp_authorizer.infra.single_flight import SingleFlight
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
    """The verification keys of one issuer, fetched from ``url``."""

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
        self._shared = shared
        self._url = url
        self._algorithms = frozenset(algorithms)
        self._policy = policy
        self._clock = clock
        self._keys: dict[str, VerifyingKey] = {}
        self._fetched_at = -float("inf")
        self._failed_at = -float("inf")
        self._penalty_at = -float("inf")
        self._flight: SingleFlight[None] = SingleFlight()
        self.fetches = 0
        """Key-set fetches attempted, for tests and metrics."""
        self.penalty_hits = 0

    def cached(self, kid: str) -> VerifyingKey | None:
        """The key for ``kid`` if the key set is within its maximum age (no I/O)."""
        if self._clock() - self._fetched_at < self._policy.max_age:
            return self._keys.get(kid)
        return None

    async def get(self, kid: str) -> VerifyingKey:
        """The key for ``kid``, refreshing the key set when it is old or lacks the kid (within limits).

        Raises :class:`InvalidToken` ``unknown_kid`` only after a successful refresh (or one within the
        penalty box) lacked the kid; :class:`UpstreamUnavailable` when no key can be found because the
        refresh failed or is backing off, and no last-known-good key for ``kid`` is within its stale window.
        """
        now = self._clock()
        age = now - self._fetched_at
        key = self._keys.get(kid)
        if key is not None and age < self._policy.max_age:
            return key
        if key is None and age < self._policy.max_age and now - self._penalty_at < self._policy.cooldown:
            self.penalty_hits += 1
            raise InvalidToken(Reason.UNKNOWN_KID, "no key with this kid (key set refreshed recently)")
        try:
            await self.refresh(kid)
        except UpstreamUnavailable:
            if key is not None and age < self._policy.max_age + self._policy.stale_seconds:
                logger.warning("serving last known good keys during an IdP outage")
                return key
            # Not "unknown_kid": the kid could not be checked against the IdP's current key set.
            raise
        key = self._keys.get(kid)
        if key is None:
            self._penalty_at = self._clock()
            raise InvalidToken(Reason.UNKNOWN_KID, "no key with this kid")
        return key

    async def refresh(self, kid: str | None = None) -> None:
        """Fetch the key set once, shared by every concurrent caller; ``kid`` is the key being looked for."""
        if not self._flight.busy() and self._clock() - self._failed_at < self._policy.retry_after:
            raise UpstreamUnavailable(Reason.IDP_BACKOFF, "the key set fetch failed moments ago")
        await self._flight.run(None, lambda: self._fetch(kid))

    async def _fetch(self, kid: str | None) -> None:
        try:
            url = self._url if isinstance(self._url, str) else await self._url()
            if await self._hydrate_shared(url, kid):
                return
            self.fetches += 1
            response = await self._http.get_json(url)
            try:
                keys = build_key_set(response.body, self._algorithms)
            except ValueError as exc:
                raise UpstreamUnavailable(Reason.INVALID_JWKS, "the key set is not a JWK Set") from exc
            if not keys:
                raise UpstreamUnavailable(Reason.INVALID_JWKS, "the key set has no usable keys")
        except UpstreamUnavailable as exc:
            self._failed_at = self._clock()
            logger.warning("key set fetch failed: %s", exc.code)
            raise
        self._keys = keys
        self._fetched_at = self._clock()
        self._failed_at = -float("inf")
        if self._shared is not None:
            await self._shared.save(url, response.body, self._fetched_at, self._policy.max_age)

    async def _hydrate_shared(self, url: str, kid: str | None) -> bool:
        """Take the key set another instance fetched, if it is newer than ours, still fresh, and has ``kid``.

        A refresh for an unknown ``kid`` that the shared key set lacks too goes to the IdP, so a
        rotation is seen at once even when instances saved the old set in turn.
        """
        found = await self._shared.load(url) if self._shared is not None else None
        if found is None:
            return False
        document, fetched_at = found
        if fetched_at <= self._fetched_at or self._clock() - fetched_at >= self._policy.max_age:
            return False
        try:
            keys = build_key_set(document, self._algorithms)
        except ValueError:
            return False
        if not keys or (kid is not None and kid not in keys):
            return False
        self._adopt(keys, fetched_at)
        return True

    async def close(self) -> None:
        await self._http.close()

    def _adopt(self, keys: dict[str, VerifyingKey], fetched_at: float) -> None:
        self._keys = keys
        self._fetched_at = fetched_at
        self._failed_at = -float("inf")
