"""OAuth 2.0 Token Introspection (RFC 7662) for opaque access tokens (``IDP_PROVIDER=introspection``).

https://www.rfc-editor.org/rfc/rfc7662: the resource server POSTs ``token`` (with
``token_type_hint=access_token``) as a form to the authorization server's introspection endpoint,
authenticated as a client (RFC 6749 section 2.3.1), and gets back a JSON object whose ``active``
member says whether the token may be used now. Only ``"active": true``, the JSON boolean, is a yes.

Caching: a positive answer vouches for the token until the earliest of its ``exp`` and
``cache_seconds`` after the answer (the revocation window); a refusal is remembered for
``negative_seconds``. L1 is the in-process cache, L2 the optional shared tier (the IdP's answer as
JSON with ``answered_at``, when the IdP gave it, keyed by the SHA-256 of the token, never containing
the token). Each instance bounds what it reuses from L2 by its own settings, counted from
``answered_at`` and never past the writer's expiry: a reader with a shorter ``cache_seconds`` keeps its
own revocation window, one with ``cache_seconds`` 0 never reuses an active answer. Concurrent
verifications of one token share one introspection call.

Faults: outages and configuration faults (:class:`UpstreamUnavailable`, a 500 that API Gateway does not
cache) are never cached here either. A 400 is judged by its OAuth ``error`` code (see
:meth:`IntrospectionProvider._introspect`): one blaming the client or the request is a configuration
fault, any other a refusal of the token.

Driver: the endpoint is ``IDP_INTROSPECTION_URL``, else the ``introspection_endpoint`` of the
discovery document of ``IDP_ISSUER`` (:func:`endpoints`).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from idp_authorizer.core.clock import Clock
from idp_authorizer.core.errors import InvalidToken, Reason, UpstreamUnavailable
from idp_authorizer.core.principal import Principal, fingerprint, has_control_characters, interned, scopes_from_claims
from idp_authorizer.core.provider import Accepts
from idp_authorizer.infra.cache import BoundedMemoryCache
from idp_authorizer.infra.client_auth import ClientCredentials
from idp_authorizer.infra.http import HttpClient, HttpStatusError, check_url
from idp_authorizer.infra.shared_cache import shared_key
from idp_authorizer.infra.single_flight import SingleFlight
from idp_authorizer.jose.jwt import audiences_of, check_times, client_of, numeric_date
from providers.driver import Driver, Endpoints, Parts, ProviderOptions

if TYPE_CHECKING:
    from idp_authorizer.infra.shared_cache import SharedTier

Endpoint = str | Callable[[], Awaitable[str]]

_SHARED_WAIT_SECONDS = 1.0
"""Longest an instance waits for another one's introspection of the same token before asking itself."""
_SHARED_POLL_SECONDS = 0.02

ACCESS_TOKEN_TYPES = frozenset({"bearer", "access_token", "urn:ietf:params:oauth:token-type:access_token"})
"""``token_type`` values (compared case-insensitively) of a token usable as a bearer access token.
Refresh tokens and ID tokens are refused; a ``DPoP`` token only with ``cnf.jkt`` (RFC 9449 section 6.2), whose
proof the decision path then checks on every request."""

CLIENT_ERRORS = frozenset({"invalid_client", "unauthorized_client", "invalid_request"})
"""RFC 6749 section 5.2 ``error`` codes of a 400 that blame this client or its request, not the token."""


@dataclass(frozen=True, slots=True)
class IntrospectionRules:
    """What an ``active`` response must also satisfy: time window, and ``iss``/``aud`` when configured."""

    issuer: str | None = None
    audiences: frozenset[str] = frozenset()
    leeway: float = 0.0
    clients: frozenset[str] = frozenset()
    """``IDP_CLIENT_IDS``: when set, the token's client must be one of them (see ``client_of``)."""

    def check(self, response: Mapping[str, Any], now: float) -> tuple[float | None, tuple[str, ...]]:
        """``(exp, audiences)`` of a response that passes; raises :class:`InvalidToken` naming the failure."""
        exp = check_times(response, now, self.leeway, exp_required=False, check_iat=False)
        if self.issuer is not None and response.get("iss") != self.issuer:
            raise InvalidToken(Reason.WRONG_ISSUER, "token issuer is not the expected one")
        audiences = audiences_of(response.get("aud"), required=False)
        if self.audiences and self.audiences.isdisjoint(audiences):
            raise InvalidToken(Reason.WRONG_AUDIENCE, "token audience is not accepted")
        token_type = response.get("token_type")
        if token_type is not None and not _usable_type(token_type, response.get("cnf")):
            raise InvalidToken(Reason.WRONG_TOKEN_TYPE, "the token is not a bearer access token")
        return exp, audiences


def _usable_type(token_type: object, cnf: object) -> bool:
    if not isinstance(token_type, str):
        return False
    if token_type.lower() == "dpop":
        return isinstance(cnf, dict) and isinstance(cnf.get("jkt"), str)
    return token_type.lower() in ACCESS_TOKEN_TYPES


class IntrospectionProvider:
    """Asks an RFC 7662 endpoint about tokens; the provider for every token that is not a JWS."""

    def __init__(
        self,
        name: str,
        http: HttpClient,
        endpoint: Endpoint,
        credentials: ClientCredentials,
        rules: IntrospectionRules,
        *,
        cache: BoundedMemoryCache,
        shared: SharedTier | None = None,
        cache_seconds: float = 60.0,
        negative_seconds: float = 10.0,
        clock: Clock = time.time,
    ) -> None:
        self.name = name
        self.accepts: Accepts = "opaque"
        self.issuers: frozenset[str] = frozenset()  # opaque tokens carry no iss to route by
        self.cache_seconds = cache_seconds
        self.negative_seconds = negative_seconds
        self._http = http
        self._endpoint = endpoint
        self._credentials = credentials
        self._rules = rules
        self._cache = cache
        self._shared = shared
        self._clock = clock
        # One answer is only valid for the server and client that got it: keep deployments apart.
        where = endpoint if isinstance(endpoint, str) else rules.issuer or name
        self._realm = fingerprint(f"{where}\n{credentials.client_id}")[:16]
        self._flight: SingleFlight[Principal] = SingleFlight()
        self.calls = 0
        """Introspection requests sent, for tests and metrics."""

    def verify_local(self, token: str) -> Principal | None:
        return self._cached(self._key(token))

    async def verify(self, token: str) -> Principal:
        key = self._key(token)
        principal = self._cached(key)
        if principal is not None:
            return principal
        return await self._flight.run(key, lambda: self._resolve(key, token))

    async def prefetch(self) -> None:
        """The endpoint from discovery, when it is read from there (nothing else can be fetched ahead)."""
        if not isinstance(self._endpoint, str):
            await self._endpoint()

    async def close(self) -> None:
        await self._http.close()
        if self._shared is not None:
            await self._shared.close()

    # -- steps --------------------------------------------------------------------------------

    def _key(self, token: str) -> str:
        return f"introspect:{self._realm}:{fingerprint(token)}"

    def _cached(self, key: str) -> Principal | None:
        verdict = self._cache.get_fresh(key)
        if isinstance(verdict, str):
            raise InvalidToken(Reason.refusal(verdict), "token refused moments ago")
        return verdict if isinstance(verdict, Principal) else None

    async def _resolve(self, key: str, token: str) -> Principal:
        """L2, else the IdP; the verdict goes to L1 (and L2 when it came from the IdP)."""
        if self._shared is not None:
            principal = await self._from_shared(key)
            if principal is not None:
                return principal
        answered_at = self._clock()
        response = await self._introspect(token)
        try:
            principal = self._principal(response, answered_at + self.cache_seconds)
        except InvalidToken as exc:
            # Share only the IdP's own "no": a refusal by this deployment's rules (aud, iss) is not
            # another deployment's, whereas a stored active answer is re-checked by each reader.
            shared = response.get("active") is False
            await self._refuse(key, exc.code, answered_at, share=shared)
            raise
        if self.cache_seconds > 0:
            await self._remember(key, principal, principal.expires_at)
            if self._shared is not None:
                kept = {name: value for name, value in response.items() if value != token}
                stored = {"response": kept, "answered_at": answered_at}
                await self._shared.set(shared_key(key), stored, principal.expires_at)
        return principal

    async def _from_shared(self, key: str) -> Principal | None:
        """The verdict another instance stored; if another instance is asking the IdP right now, wait for it.

        The wait is bounded (``_SHARED_WAIT_SECONDS``); after it this instance asks the IdP itself.
        """
        assert self._shared is not None
        stored = await self._shared.get(shared_key(key))
        if stored is not None:
            return await self._from_stored(key, *stored)
        if self.cache_seconds <= 0 or await self._shared.claim(shared_key("claim:" + key), _SHARED_WAIT_SECONDS):
            return None
        deadline = self._clock() + _SHARED_WAIT_SECONDS
        while self._clock() < deadline:
            await asyncio.sleep(_SHARED_POLL_SECONDS)
            stored = await self._shared.get(shared_key(key))
            if stored is not None:
                return await self._from_stored(key, *stored)
        return None

    async def _from_stored(self, key: str, value: dict[str, Any], expires_at: float) -> Principal | None:
        """Rebuild a verdict another instance stored (checked again now); ``None`` if unusable.

        Reused only within this instance's own window (:meth:`_reuse_until`): ``cache_seconds`` for an
        active answer, ``negative_seconds`` for a refusal. The writer's settings only shorten it.
        """
        refused, response = value.get("refused"), value.get("response")
        if isinstance(refused, str):
            until = self._reuse_until(value, expires_at, self.negative_seconds)
            if until is None:
                return None
            await self._remember(key, refused, until)
            # A code read back from the shared tier; one this version does not know is still a refusal.
            raise InvalidToken(Reason.refusal(refused), "token refused moments ago")
        until = self._reuse_until(value, expires_at, self.cache_seconds)
        if until is None or not isinstance(response, dict) or response.get("active") is not True:
            return None
        try:
            principal = self._principal(response, until)
        except InvalidToken as exc:
            await self._remember(key, exc.code, min(expires_at, self._clock() + self.negative_seconds))
            raise
        await self._remember(key, principal, principal.expires_at)
        return principal

    async def _remember(self, key: str, value: Principal | str, until: float) -> None:
        """Into the in-process tier until ``until`` (aiocache's interface, since the loop runs here)."""
        await self._cache.set(key, value, ttl=until - self._clock())

    def _reuse_until(self, value: Mapping[str, Any], expires_at: float, seconds: float) -> float | None:
        """Until when a stored answer may be reused here: ``seconds`` after ``answered_at``, never past
        the writer's ``expires_at``; ``None`` when that is already past or ``answered_at`` is missing."""
        try:
            answered_at = numeric_date(value, "answered_at", required=True)
        except InvalidToken:
            return None  # stored before answered_at was, or malformed: its age is unknown, so ask the IdP
        assert answered_at is not None  # required=True
        now = self._clock()
        # A writer whose clock runs ahead must not stretch this instance's window past ``seconds`` from now.
        until = min(expires_at, min(answered_at, now) + seconds)
        return until if until > now else None

    async def _refuse(self, key: str, code: str, answered_at: float, *, share: bool) -> None:
        """Remember a refusal for ``negative_seconds`` after the IdP answered; share the IdP's own ``no``."""
        if self.negative_seconds <= 0:
            return
        until = answered_at + self.negative_seconds
        await self._remember(key, code, until)
        if share and self._shared is not None:
            await self._shared.set(shared_key(key), {"refused": code, "answered_at": answered_at}, until)

    async def _introspect(self, token: str) -> dict[str, Any]:
        """The IdP's JSON answer about ``token``; a 400 is judged by its RFC 6749 section 5.2 ``error``.

        RFC 7662 section 2.2: a well-formed, authenticated request about a bad token gets
        ``{"active": false}``, not an error; section 2.3: bad client credentials get a 401 (an outage
        here, like every other status). So a 400 says what was wrong with the request:

        - ``invalid_client``, ``unauthorized_client``, ``invalid_request`` (:data:`CLIENT_ERRORS`): the
          client's credentials (section 5.2 allows a 400 for them), its rights, or the request's shape,
          all fixed by configuration (a token that gets here has passed the RFC 6750 syntax check).
          A configuration fault: :class:`UpstreamUnavailable` ``introspection_<error>``, a 500 that is
          not cached, so a fix at the IdP or in the settings takes effect on the next request.
        - any other code, or none readable (``unsupported_token_type`` is what panva oidc-provider
          answers for a JWT it will not introspect): this token is refused, :class:`InvalidToken`
          ``introspection_refused`` (401). Fail closed either way; this keeps a token the IdP will not
          judge from becoming a stream of uncached 500s and IdP calls.
        """
        url = self._endpoint if isinstance(self._endpoint, str) else await self._endpoint()
        form = {"token": token, "token_type_hint": "access_token"}
        headers = {"Accept": "application/json", **self._credentials.apply(form)}
        self.calls += 1
        try:
            return (await self._http.post_form(url, form, headers)).body
        except HttpStatusError as exc:
            if exc.status != 400:
                raise
            if exc.oauth_error in CLIENT_ERRORS:
                # The code comes from a fixed set, so it can be logged; the body never is.
                raise UpstreamUnavailable(
                    Reason(f"introspection_{exc.oauth_error}"),
                    "the introspection endpoint refused this client's request",
                ) from None
            raise InvalidToken(Reason.INTROSPECTION_REFUSED, "the introspection endpoint refused this token") from None

    def _principal(self, response: Mapping[str, Any], until: float) -> Principal:
        """The principal of an ``active`` response, vouched for until ``until`` at most."""
        active = response.get("active")
        if active is False:
            raise InvalidToken(Reason.INACTIVE, "the IdP says the token is not active")
        if active is not True:
            raise UpstreamUnavailable(Reason.INVALID_INTROSPECTION, "the introspection response has no boolean active")
        exp, audiences = self._rules.check(response, self._clock())
        client_id = client_of(response, self._rules.clients) or None
        subject = _text(response, "sub") or _text(response, "username") or client_id
        if subject is None:
            raise InvalidToken(Reason.MISSING_SUB, "the introspection response names no subject")
        iss = response.get("iss")
        issuer = interned(iss) if isinstance(iss, str) else self._rules.issuer or ""
        # principalId, the issuer and the client id can reach integration request headers (mapping templates).
        if has_control_characters(subject) or has_control_characters(issuer) or has_control_characters(client_id or ""):
            raise InvalidToken(Reason.CONTROL_CHARACTERS, "subject, issuer or client id holds control characters")
        return Principal(
            subject=subject,
            issuer=issuer,
            audiences=interned(audiences),
            scopes=scopes_from_claims(response),
            expires_at=until if exp is None else min(exp, until),
            provider=self.name,
            client_id=None if client_id is None else interned(client_id),
            claims=MappingProxyType(dict(response)),
        )


def endpoints(config: ProviderOptions) -> Endpoints:
    """``IDP_INTROSPECTION_URL``, else discovery's ``introspection_endpoint`` (``IDP_ISSUER`` is then set)."""
    if config.introspection_url is not None:
        return Endpoints(config.issuer, "introspection_endpoint", url=config.introspection_url)
    from providers.discovery import discovery_url

    assert config.issuer is not None
    return Endpoints(config.issuer, "introspection_endpoint", discovery=discovery_url(config.issuer))


def build(config: ProviderOptions, parts: Parts) -> IntrospectionProvider:
    settings = parts.settings
    where = endpoints(config)
    endpoint: Endpoint
    if where.url is not None:
        endpoint = check_url(where.url, "IDP_INTROSPECTION_URL", allow_loopback_http=settings.allow_loopback_http)
    else:
        assert where.issuer is not None
        endpoint = functools.partial(parts.discovery(where.issuer).endpoint, "introspection_endpoint")
    assert config.client_id is not None and config.client_secret is not None
    credentials = ClientCredentials(config.client_id, config.client_secret.get_secret_value(), config.client_auth)
    return IntrospectionProvider(
        config.label,
        parts.http,
        endpoint,
        credentials,
        IntrospectionRules(
            config.issuer, frozenset(config.audience), settings.leeway_seconds, frozenset(config.client_ids)
        ),
        cache=parts.cache,
        shared=parts.shared,
        cache_seconds=settings.introspection_cache_seconds,
        negative_seconds=settings.negative_cache_seconds,
        clock=parts.clock,
    )


DRIVER = Driver(endpoints, build)


def _text(response: Mapping[str, Any], name: str) -> str | None:
    value = response.get(name)
    return value if isinstance(value, str) and value else None
