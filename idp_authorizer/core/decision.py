"""One decision path: an API Gateway event in, a response out, the IdP asked only when nothing cached answers.

:meth:`DecisionPath.flow` is a generator. It yields an awaitable each time the IdP must be asked (a
verification or an introspection that the caches cannot answer), receives the :class:`Decision` that
awaitable produced, and returns the response. The adapter drives it: on the container's event loop for
Lambda, with ``await`` for async callers (:mod:`idp_authorizer.aws.runtime`). A warm request never
yields, so it never enters the loop. Caches, the decision log and metrics come in through the
constructor; the path itself does no I/O.

A repeated token is answered from its cached :class:`CachedPrincipal`, usually with a response rendered before
for the same ARN: no verification, no rule matching, no policy building.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Generator, Sequence
from types import MappingProxyType
from typing import Any, Protocol

from idp_authorizer.core.binding import SenderCheck, binding_of, required_proofs
from idp_authorizer.core.clock import Clock
from idp_authorizer.core.errors import AuthorizerError, ConfigurationError, InvalidToken, Reason
from idp_authorizer.core.events import (
    Request,
    TokenSource,
    check_token_syntax,
    parse_event,
    refused_request,
    sender_evidence,
)
from idp_authorizer.core.outcome import Decision, Responder, decision_for
from idp_authorizer.core.principal import NO_CLAIMS, Principal, interned
from idp_authorizer.core.principal import fingerprint as token_fingerprint
from idp_authorizer.core.provider import Provider

Flow = Generator[Awaitable[Decision], Decision, dict[str, Any]]
ResponseKey = tuple[str, str | None, str, str | None]
_MAX_RESPONSES_PER_VERDICT = 32


class VerdictCache(Protocol):
    """The in-process verdict cache, read and written without the event loop."""

    def get_fresh(self, key: str) -> Any: ...

    def put(self, key: str, value: Any, expires_at: float) -> None: ...


class Router(Protocol):
    """Which provider judges a token (:class:`~idp_authorizer.aws.router.ProviderRouter`)."""

    @property
    def providers(self) -> tuple[Provider, ...]: ...

    @property
    def introspector(self) -> Provider | None: ...

    def select(self, token: str) -> Provider: ...


class DecisionSink(Protocol):
    """Where each decision is written (the decision log)."""

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
    ) -> None: ...


class Meter(Protocol):
    """Per-invocation metrics (``IDP_METRICS``)."""

    def flush(self, decision: Decision, cache_hit: bool, had_token: bool, started: float) -> None: ...


class CachedPrincipal:
    """A verified principal as cached, with the responses already rendered for it, per request shape and ARN."""

    __slots__ = ("generation", "principal", "responses")

    def __init__(self, principal: Principal, generation: int = 0) -> None:
        self.principal = principal
        self.generation = generation
        """The rules generation its responses were rendered under (:meth:`DecisionPath.adopt`)."""
        self.responses: dict[ResponseKey, tuple[Decision, dict[str, Any]]] = {}

    def response_key(self, request: Request) -> ResponseKey:
        # Every field a decision reads: the ARN, and the method the event names (which must agree with it).
        return request.shape, request.arn.value if request.arn else None, request.method, request.template


class DecisionPath:
    """Turns one event into one response. Build it once per container (the composition root does)."""

    def __init__(
        self,
        router: Router,
        responder: Responder,
        *,
        sources: Sequence[TokenSource],
        cache: VerdictCache,
        log: DecisionSink,
        negative_seconds: float = 10.0,
        max_token_bytes: int = 10 * 1024,
        metrics: Meter | None = None,
        sender: SenderCheck | None = None,
        require_sender_constrained: bool = False,
        clock: Clock = time.time,
    ) -> None:
        self.router = router
        self.sender = sender
        self._require_bound = require_sender_constrained
        self.responder = responder
        self.cache = cache
        self.log = log
        self.metrics = metrics
        self._sources = tuple(sources)
        self._negative_seconds = negative_seconds
        self._max_token_bytes = max_token_bytes
        self._clock = clock
        self._cache_seconds = {p.name: p.cache_seconds for p in router.providers}
        self._cold = True
        self.generation = 0
        self.ready = True
        """``False`` while the route rules are still to be loaded (``IDP_ROUTES_URL``): every request is a 500."""
        self._use(responder)

    def adopt(self, responder: Responder) -> None:
        """Decide with new route rules from now on (a reload of ``IDP_ROUTES_URL`` that changed them).

        Every cached verdict of an older generation counts as a miss, so no response or policy rendered
        from the old rules, nor a verdict trimmed to the claims they read, is served again.
        """
        self._use(responder)
        self.generation += 1
        self.ready = True

    def _use(self, responder: Responder) -> None:
        if responder.table.introspects and self.router.introspector is None:
            # Fail closed at build time: a route that demands introspection must never get less.
            raise ConfigurationError(
                Reason.CONFIGURATION_ERROR,
                "IDP_ROUTES: a route sets introspect but no introspection provider is configured",
            )
        self.responder = responder
        self._claims_used = responder.claims_used()
        self._introspected_routes = responder.table.introspects

    def flow(self, event: object) -> Flow:
        """Decide ``event``: yields what must be awaited (IdP calls), returns the response."""
        started = time.perf_counter()
        if not self.ready:
            return self._respond(None, Decision("unavailable", Reason.ROUTES_UNAVAILABLE), None, False, started)
        request, fingerprint, known = self._lookup(event)
        cache_hit = known is not None
        if known is None:
            assert request is not None and request.token is not None and fingerprint is not None
            decision = self._verify_local(request.token)
            if decision is None:
                decision = yield self._verify(request.token)
            known = self._remember(fingerprint, decision)
        if self._introspected_routes and self._needs_introspection(request, known):
            assert request is not None and request.token is not None
            check = self._introspect_local(request.token)
            if check is None:
                check = yield self._introspect(request.token)
            known = known if check.outcome == "allow" else check
        if (
            type(known) is CachedPrincipal
            and request is not None
            and (self._require_bound or request.scheme == "dpop" or "cnf" in known.principal.claims)
        ):
            refusal, pending = self._prove(event, request, known)
            if pending is not None:
                refusal = yield pending
            if refusal is not None and refusal.outcome != "allow":
                known = refusal
        return self._respond(request, known, fingerprint, cache_hit, started)

    # -- steps --------------------------------------------------------------------------------

    def _prove(
        self, event: object, request: Request, known: CachedPrincipal
    ) -> tuple[Decision | None, Awaitable[Decision] | None]:
        """The binding rule, on every request (verdict cached or not): a token with ``cnf`` is refused
        unless its binding is proven now; ``(refusal, None)``, ``(None, None)`` or ``(None, pending)``.

        The verdict cache spares the access token's signature check; the proof is checked each time.
        """
        try:
            binding = binding_of(known.principal.claims)
            if not required_proofs(request, binding, require_bound=self._require_bound):
                return None, None
            assert binding is not None and isinstance(event, dict) and request.token is not None
            if self.sender is None:  # the composition root always gives one; fail closed regardless
                raise InvalidToken(Reason.CNF_UNSUPPORTED, "no sender-constraint checker is configured")
            return None, self.sender.check(sender_evidence(event, request), request.token, binding)
        except InvalidToken as exc:
            return decision_for(exc), None

    def _lookup(self, event: object) -> tuple[Request | None, str | None, CachedPrincipal | Decision | None]:
        """Parse the event; answer from the verdict cache, or say verification is needed (``None``)."""
        try:
            request = parse_event(event, self._sources)
        except InvalidToken as exc:
            # Keep the shape when it is known, so a 2.0 simple-response event is refused in its own form.
            return refused_request(event), None, decision_for(exc)
        token = request.token
        if token is None:
            return request, None, decision_for(InvalidToken(Reason.MISSING_TOKEN))
        if len(token) > self._max_token_bytes:
            return request, None, decision_for(InvalidToken(Reason.TOKEN_TOO_LARGE))
        fingerprint = token_fingerprint(token)
        cached = self.cache.get_fresh(fingerprint)
        if cached is None:
            return request, fingerprint, None
        if type(cached) is CachedPrincipal:
            return request, fingerprint, cached if cached.generation == self.generation else None
        # A refusal remembered by its code (the verdict cache holds only codes it was given).
        return request, fingerprint, decision_for(InvalidToken(Reason.refusal(str(cached))))

    def _verify_local(self, token: str) -> Decision | None:
        try:
            provider = self.router.select(token)
            if provider.accepts == "opaque":
                # JWT providers decode the token strictly (base64url parts only); others get the RFC 6750 check.
                check_token_syntax(token)
            principal = provider.verify_local(token)
        except AuthorizerError as exc:
            return decision_for(exc)
        return None if principal is None else Decision("allow", Reason.VERIFIED, principal)

    async def _verify(self, token: str) -> Decision:
        try:
            principal = await self.router.select(token).verify(token)
        except AuthorizerError as exc:
            return decision_for(exc)
        return Decision("allow", Reason.VERIFIED, principal)

    def _needs_introspection(self, request: Request | None, known: CachedPrincipal | Decision) -> bool:
        """Whether the response for a JWT would reach a route marked ``introspect``: the IdP must confirm it.

        Checked on every request, cached verdict or not, so a revocation shows within the
        introspection cache window whatever the JWT verdict cache holds.
        """
        introspector = self.router.introspector
        if type(known) is not CachedPrincipal or request is None or introspector is None:
            return False
        principal = known.principal
        if principal.provider == introspector.name:
            return False  # judged by the IdP already
        table = self.responder.table
        if not self.responder.simple(request):
            return table.needs_introspection(principal, None, whole_api=True)
        return any(table.needs_introspection(principal, r, whole_api=False) for r in self.responder.routes(request))

    def _introspect_local(self, token: str) -> Decision | None:
        """From the introspection cache: an ``allow`` if the token is active, the refusal, or ``None`` (I/O needed)."""
        assert self.router.introspector is not None
        try:
            principal = self.router.introspector.verify_local(token)
        except AuthorizerError as exc:
            return decision_for(exc)
        return None if principal is None else Decision("allow", Reason.ACTIVE, principal)

    async def _introspect(self, token: str) -> Decision:
        """Ask the introspection provider: an ``allow`` if the token is active, else the refusal."""
        assert self.router.introspector is not None
        try:
            principal = await self.router.introspector.verify(token)
        except AuthorizerError as exc:
            return decision_for(exc)
        return Decision("allow", Reason.ACTIVE, principal)

    def _remember(self, fingerprint: str, decision: Decision) -> CachedPrincipal | Decision:
        """Cache a verdict until the earliest of the token's ``exp`` and the configured maximum."""
        now = self._clock()
        principal = decision.principal
        if principal is not None:
            seconds = self._cache_seconds.get(principal.provider, 0.0)
            if seconds <= 0:
                return CachedPrincipal(principal, self.generation)
            # A cached verdict keeps only the claims a response can read: a tenth of the memory per entry
            # (every claim with IDP_INJECT_CONTEXT: authnCtx carries them all).
            verdict = CachedPrincipal(
                principal if self._claims_used is None else self._trimmed(principal), self.generation
            )
            self.cache.put(fingerprint, verdict, min(principal.expires_at, now + seconds))
            return verdict
        if decision.outcome == "invalid" and self._negative_seconds > 0:
            self.cache.put(fingerprint, decision.code, now + self._negative_seconds)
        return decision

    def _trimmed(self, principal: Principal) -> Principal:
        claims, used = principal.claims, self._claims_used or ()
        kept = {name: claims[name] for name in used if name in claims}
        return principal._replace(claims=MappingProxyType(kept) if kept else NO_CLAIMS)

    def _respond(
        self,
        request: Request | None,
        known: CachedPrincipal | Decision,
        fingerprint: str | None,
        cache_hit: bool,
        started: float,
    ) -> dict[str, Any]:
        if type(known) is not CachedPrincipal:
            assert isinstance(known, Decision)
            self._log_decision(request, known, fingerprint, cache_hit, started)
            return self.responder.render(request, known)
        assert request is not None
        key = known.response_key(request)
        memo = known.responses.get(key)
        if memo is None:
            decision, response = self.responder.answer(request, known.principal)
            self._log_decision(request, decision, fingerprint, cache_hit, started)
            if len(known.responses) < _MAX_RESPONSES_PER_VERDICT:
                known.responses[interned(key)] = (decision, response)
            return response
        self._log_decision(request, memo[0], fingerprint, cache_hit, started)
        return memo[1]

    def _log_decision(
        self, request: Request | None, decision: Decision, fingerprint: str | None, cache_hit: bool, started: float
    ) -> None:
        self.log.write(
            outcome=decision.outcome,
            code=decision.code,
            principal=decision.principal,
            cache_hit=cache_hit,
            latency_us=(time.perf_counter() - started) * 1e6,
            cold_start=self._cold,
            request=request,
            fingerprint=fingerprint,
            authn_ctx=decision.authn_ctx,
            policy_scope=decision.policy_scope,
        )
        self._cold = False
        if self.metrics is not None:  # IDP_METRICS; when off, this check is all the hot path pays
            self.metrics.flush(decision, cache_hit, fingerprint is not None, started)
