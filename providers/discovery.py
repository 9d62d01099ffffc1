"""OpenID Connect Discovery: the issuer's metadata, read once and shared by every provider of that issuer.

https://openid.net/specs/openid-connect-discovery-1_0.html section 4: the document is at
``{issuer}/.well-known/openid-configuration`` and its ``issuer`` must equal the configured issuer
exactly (section 4.3), or the document is refused: a mismatch is how a mix-up attack looks. It
serves the OIDC driver its ``jwks_uri`` and the introspection driver its ``introspection_endpoint``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from idp_authorizer.core.clock import Clock
from idp_authorizer.core.errors import Reason, UpstreamUnavailable
from idp_authorizer.infra.http import HttpClient, check_url
from idp_authorizer.infra.remote_document import Freshness, RemoteDocument

if TYPE_CHECKING:
    from idp_authorizer.infra.shared_cache import SharedDocuments

_RETRY_AFTER = 5.0


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


class Discovery:
    """The issuer's metadata (a :class:`RemoteDocument`): fetched once, kept for ``max_age`` seconds, shared
    by concurrent callers; after a failed refresh the last good document keeps serving."""

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
        self.url = check_url(discovery_url(issuer), "IDP_ISSUER", allow_loopback_http=allow_loopback_http)
        self._allow_loopback_http = allow_loopback_http
        # The last good document stays usable however long the outage: it names endpoints, not keys.
        freshness = Freshness(max_age, stale_seconds=float("inf"), retry_after=_RETRY_AFTER)
        self._document = RemoteDocument(http, self.url, self._parse, freshness, clock, what="discovery", shared=shared)

    @property
    def remote(self) -> RemoteDocument[dict[str, Any]]:
        """The document as kept, with its age (what a scheduled refresh looks at)."""
        return self._document

    @property
    def fetches(self) -> int:
        return self._document.fetches

    async def document(self) -> dict[str, Any]:
        """The validated metadata document; the last good one is kept if a refresh fails."""
        fresh = self._document.fresh()
        if fresh is not None:
            return fresh
        try:
            return await self._document.refresh()
        except UpstreamUnavailable:
            last_good = self._document.last_good()
            if last_good is None:
                raise
            return last_good

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

    def _parse(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("issuer") != self.issuer:
            raise UpstreamUnavailable(Reason.ISSUER_MISMATCH, "discovery issuer differs from the configured issuer")
        return body
