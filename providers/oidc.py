"""OpenID Connect Discovery (``IDP_PROVIDER=oidc``): the key set URL read from the issuer's metadata.

https://openid.net/specs/openid-connect-discovery-1_0.html section 4: the document is at
``{issuer}/.well-known/openid-configuration`` and its ``issuer`` must equal the configured issuer
exactly (section 4.3), or the document is refused: a mismatch is how a mix-up attack looks.

The driver is the generic JWKS verifier (:func:`providers.jwks.build_verifier`) with its key set URL
read from ``jwks_uri`` (unless ``IDP_JWKS_URL`` is set); :class:`Discovery` also serves the
introspection driver its ``introspection_endpoint``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from idp_authorizer.core.clock import Clock
from idp_authorizer.core.errors import Reason, UpstreamUnavailable
from idp_authorizer.infra.http import HttpClient, check_url
from idp_authorizer.infra.single_flight import SingleFlight
from providers.driver import Driver, Endpoints, Parts, ProviderOptions

if TYPE_CHECKING:
    from idp_authorizer.infra.shared_cache import SharedDocuments
    from providers.jwks import JwksProvider

_RETRY_AFTER = 5.0


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def endpoints(config: ProviderOptions) -> Endpoints:
    """The discovery document of ``IDP_ISSUER``; its ``jwks_uri`` unless ``IDP_JWKS_URL`` is set."""
    assert config.issuer is not None
    return Endpoints(config.issuer, "jwks_uri", url=config.jwks_url, discovery=discovery_url(config.issuer))


def build(config: ProviderOptions, parts: Parts) -> JwksProvider:
    from providers.jwks import build_verifier

    return build_verifier(config, parts, endpoints(config))


DRIVER = Driver(endpoints, build)


class Discovery:
    """The issuer's metadata, fetched once, kept for ``max_age`` seconds, shared by concurrent callers."""

    def __init__(
        self,
        http: HttpClient,
        issuer: str,
        *,
        max_age: float = 3600.0,
        allow_loopback_http: bool = True,
        clock: Clock = time.time,
        shared: SharedDocuments | None = None,
    ) -> None:
        self.issuer = issuer
        self._shared = shared
        self.url = check_url(discovery_url(issuer), "IDP_ISSUER", allow_loopback_http=allow_loopback_http)
        self._http = http
        self._max_age = max_age
        self._allow_loopback_http = allow_loopback_http
        self._clock = clock
        self._document: dict[str, Any] | None = None
        self._fetched_at = -float("inf")
        self._flight: SingleFlight[dict[str, Any]] = SingleFlight()
        self.fetches = 0

    async def document(self) -> dict[str, Any]:
        """The validated metadata document; the last good one is kept if a refresh fails."""
        if self._document is not None and self._clock() - self._fetched_at < self._max_age:
            return self._document
        return await self._flight.run(None, self._refresh)

    async def _refresh(self) -> dict[str, Any]:
        shared = await self._load_shared()
        if shared is not None:
            return shared
        try:
            self._document = await self._fetch()
            self._fetched_at = self._clock()
            if self._shared is not None:
                await self._shared.save(self.url, self._document, self._fetched_at, self._max_age)
        except UpstreamUnavailable:
            if self._document is None:
                raise
            # Keep the last good document; ask again after a short pause, not on every request.
            self._fetched_at = self._clock() - self._max_age + _RETRY_AFTER
        return self._document

    async def endpoint(self, name: str) -> str:
        """A URL from the metadata (``jwks_uri``, ``introspection_endpoint``), checked for https."""
        value = (await self.document()).get(name)
        if not isinstance(value, str):
            raise UpstreamUnavailable(Reason.DISCOVERY_INCOMPLETE, f"discovery document has no {name}")
        try:
            return check_url(value, name, allow_loopback_http=self._allow_loopback_http)
        except Exception as exc:
            raise UpstreamUnavailable(Reason.DISCOVERY_INSECURE_URL, f"discovery {name} is not https") from exc

    async def jwks_uri(self) -> str:
        return await self.endpoint("jwks_uri")

    async def _load_shared(self) -> dict[str, Any] | None:
        """Take the document another instance fetched if it is newer than ours, fresh, and for our issuer."""
        found = await self._shared.load(self.url) if self._shared is not None else None
        if found is None:
            return None
        document, fetched_at = found
        if fetched_at <= self._fetched_at or self._clock() - fetched_at >= self._max_age:
            return None
        if document.get("issuer") != self.issuer:
            return None
        self._document, self._fetched_at = document, fetched_at
        return document

    async def _fetch(self) -> dict[str, Any]:
        self.fetches += 1
        body = (await self._http.get_json(self.url)).body
        if body.get("issuer") != self.issuer:
            raise UpstreamUnavailable(Reason.ISSUER_MISMATCH, "discovery issuer differs from the configured issuer")
        return body
