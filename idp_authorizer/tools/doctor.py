"""``idp-authorizer doctor``: check a configuration the way the Lambda will see it, before deploying.

Reads the same ``IDP_*`` environment (:func:`~idp_authorizer.aws.settings.load_settings`), builds the
same authorizer, then asks the IdP what the authorizer would ask: discovery (issuer match), the key
set (key types against ``IDP_ALGORITHMS``), the introspection endpoint (client credentials), the
clock (against the IdP's ``Date`` header), and, with ``--token``, verifies that token exactly as the
authorizer would. Finally the API Gateway side (:mod:`idp_authorizer.tools.gateway_check`) and whether the
IdP timeouts fit API Gateway's wait for the authorizer (:func:`check_deadline`). The report names
each bad variable and its fix, ends with ``verdict: OK`` or ``verdict: N problem(s)``, and never
shows a token (only its SHA-256 fingerprint) or a secret.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from idp_authorizer.aws.compose import build_authorizer, http_options, route_source
from idp_authorizer.aws.registry import endpoints
from idp_authorizer.aws.runtime import Authorizer
from idp_authorizer.aws.settings import ProviderConfig, Settings, load_settings
from idp_authorizer.core.clock import Clock
from idp_authorizer.core.errors import ConfigurationError, InvalidToken, Problem, Reason, UpstreamUnavailable
from idp_authorizer.core.principal import fingerprint
from idp_authorizer.infra.http import HttpClient
from idp_authorizer.jose.jwt import decompose, is_compact_jws
from idp_authorizer.tools.checkup import Checkup
from idp_authorizer.tools.gateway_check import Gateway, check_gateway
from idp_authorizer.tools.preset_check import claim_hint, derived, token_fix
from idp_authorizer.tools.report import Finding, note, ok, problem, shown_url

TOKEN_FIXES = {
    "expired": "get a fresh token; if it was just issued, check the clock findings above",
    "not_yet_valid": "the token's nbf is in the future: check the clock findings above",
    "issued_in_future": "the token's iat is in the future: check the clock findings above",
    "alg_not_allowed": "add the token's alg to IDP_ALGORITHMS if your IdP signs access tokens with it",
    "unknown_kid": "the token's kid is not in the key set: it comes from another IdP or tenant, or a retired key",
    "bad_signature": "the token was not signed by a key of this key set",
    "missing_kid": "the IdP must put a kid in the token header",
    "wrong_typ": "the token's typ differs from IDP_REQUIRED_TYP: unset it, or request an access token (at+jwt)",
    "wrong_token_use": "this is an ID token: send the access token",
    "not_an_access_token": "the token's typ names another kind of JWT (logout, security event, DPoP proof, ID token): "
    "send the access token",
    "control_characters": "the token's sub, iss or client_id holds a control character (CR, LF, NUL...): fix the "
    "IdP's subject mapping",
    "invalid_jti": "the token's jti is not a string: the IdP issues malformed tokens",
    "malformed_token": "pass the token itself (with or without 'Bearer '), nothing else",
    "inactive": "the IdP says the token is not active (revoked or expired): get a fresh one",
}


async def diagnose(gateway: Gateway, token: str | None = None, *, clock: Clock = time.time) -> list[Finding]:
    """Every finding for the environment's configuration, the IdP and the API Gateway pairing."""
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        return [problem("settings", part.message, _settings_fix(exc, part)) for part in exc.problems]
    findings = [ok("settings", summary(settings))]
    try:
        authorizer = build_authorizer(settings, clock=clock)
    except ConfigurationError as exc:
        return [*findings, *(problem("settings", part.message, _settings_fix(exc, part)) for part in exc.problems)]
    http = HttpClient(**http_options(settings))
    try:
        findings += await _providers(settings, http, clock)
        if settings.routes_url is not None:
            findings.append(await check_routes(settings, http, clock, authorizer.router.introspector is not None))
        if token is not None:
            findings.append(await check_token(authorizer, token, clock, settings.provider_configs()))
    finally:
        await http.close()
        await _close(authorizer)
    return findings + check_gateway(settings, gateway) + check_deadline(settings, gateway)


HTTP_API_DEADLINE_SECONDS = 10.0
"""How long an HTTP API waits for a Lambda authorizer ("Timeout for Lambda authorizer response", 10000 ms, not
adjustable): https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html"""
REST_API_DEADLINE_SECONDS = 29.0
"""A REST API's default integration timeout, which bounds its authorizer call too:
https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-execution-service-limits-table.html"""


def idp_seconds(settings: Settings) -> tuple[int, float]:
    """The longest chain of IdP calls one cold request can make, and the most time it can spend on them.

    A provider reads discovery first unless its URL is configured, then its key set or introspection
    endpoint; a route marked ``introspect`` adds the introspection provider's chain. Each call is bounded
    by ``IDP_HTTP_TIMEOUT_SECONDS``, and one that could not connect is retried once (at most
    ``IDP_HTTP_CONNECT_TIMEOUT_SECONDS`` lost first): :class:`~idp_authorizer.infra.http.HttpClient`.
    """
    configs = settings.provider_configs()
    chain = {config.label: 1 if endpoints(config).url else 2 for config in configs}
    calls = max(chain.values())
    if settings.route_table().introspects:
        calls += max((chain[c.label] for c in configs if c.provider == "introspection"), default=0)
    return calls, calls * (settings.http_connect_timeout_seconds + settings.http_timeout_seconds)


def check_deadline(settings: Settings, gateway: Gateway) -> list[Finding]:
    """Whether the IdP timeouts let the authorizer answer before API Gateway stops waiting for it.

    When API Gateway gives up first, the caller gets a 500 although the product would have answered:
    a configuration that cannot answer in time is a configuration error. ``--payload`` names an HTTP API
    (10 s); without it the REST API's 29 s applies, and a note says when only a REST API is fast enough.
    """
    calls, worst = idp_seconds(settings)
    http_api = gateway.payload is not None
    deadline = HTTP_API_DEADLINE_SECONDS if http_api else REST_API_DEADLINE_SECONDS
    spent = (
        f"a cold request can wait up to {worst:g} s on the IdP ({calls} call(s) x (IDP_HTTP_CONNECT_TIMEOUT_SECONDS"
        f" {settings.http_connect_timeout_seconds:g} + IDP_HTTP_TIMEOUT_SECONDS {settings.http_timeout_seconds:g}))"
    )
    api = "an HTTP API" if http_api else "a REST API"
    if worst >= deadline:
        most = max(deadline / calls - settings.http_connect_timeout_seconds, 0.5)
        return [
            problem(
                "deadline",
                f"{spent}, but {api} waits at most {deadline:g} s for the authorizer: a slow IdP ends in API "
                "Gateway's 500 instead of the authorizer's own answer",
                f"set IDP_HTTP_TIMEOUT_SECONDS below {most:g} (and the function timeout above the total)",
            )
        ]
    if not http_api and worst >= HTTP_API_DEADLINE_SECONDS:
        return [note("deadline", f"{spent}: fits a REST API ({deadline:g} s), not an HTTP API (10 s)")]
    return [ok("deadline", f"{spent}, within the {deadline:g} s {api} waits for the authorizer")]


async def check_routes(settings: Settings, http: HttpClient, clock: Clock, introspection: bool) -> Finding:
    """Fetch and validate the ``IDP_ROUTES_URL`` rules exactly as the authorizer's first request would."""
    source = route_source(settings, http, clock, introspection)
    rules = await source.reload()
    topic = f"route rules {shown_url(source.url)}"
    if rules is None:
        assert source.problem is not None
        fix = "serve the same JSON as IDP_ROUTES at IDP_ROUTES_URL (see the README's AppConfig section)"
        return problem(topic, f"not loaded: {source.problem.code} ({source.problem.description})", fix)
    return ok(topic, f"{len(rules.table.all_rules)} rule(s), valid")


def summary(settings: Settings) -> str:
    """One line on what is configured: providers, issuers, audiences, response mode. No secrets."""
    parts = []
    for config in settings.provider_configs():
        preset = config.auth0_domain or config.cognito_user_pool_id or config.entra_tenant_id
        where = preset or config.issuer or config.introspection_url or config.jwks_url or ""
        detail = [shown_url(where) if "://" in where else where]
        if config.audience:
            detail.append(f"audience {','.join(config.audience)}")
        if config.provider != "introspection":
            detail.append(f"algorithms {','.join(config.algorithms)}")
        else:
            detail.append(f"client {config.client_id}, secret set (not shown), {config.client_auth}")
        parts.append(f"{config.label} ({config.provider}: {'; '.join(detail)})")
    sources = ",".join(f"{s.kind}:{s.name}" for s in settings.token_sources)
    routes = f", {len(settings.routes)} route rule(s)" if settings.routes else ""
    return f"{' + '.join(parts)}, response {settings.response}, token sources {sources}{routes}"


async def check_token(
    authorizer: Authorizer, token: str, clock: Clock, configs: Sequence[ProviderConfig] = ()
) -> Finding:
    """Verify ``token`` with the configured providers, as the authorizer does; show only its fingerprint."""
    raw = token.strip()
    if raw[:7].lower() == "bearer ":
        raw = raw[7:].strip()
    topic = f"token {fingerprint(raw)[:12]}"
    config: ProviderConfig | None = None
    try:
        provider = authorizer.router.select(raw)
        config = next((c for c in configs if c.label == provider.name), None)
        principal = await provider.verify(raw)
    except InvalidToken as exc:
        claims = _unverified_claims(raw)
        fix = token_fix(config, exc.code, claims) or _token_fix(exc)
        hint = _claim_hint(raw, exc.code) + claim_hint(exc.code, claims)
        return problem(topic, f"refused: {exc.code} ({exc.description}){hint}", fix)
    except UpstreamUnavailable as exc:
        return problem(topic, f"the IdP could not be asked: {exc.code}", "see the IdP findings above")
    scopes = " ".join(sorted(principal.scopes)) or "none"
    left = principal.expires_at - clock()
    return ok(topic, f"valid ({principal.provider}): sub {principal.subject}, scopes {scopes}, expires in {left:.0f} s")


async def _providers(settings: Settings, http: HttpClient, clock: Clock) -> list[Finding]:
    configs = settings.provider_configs()
    findings: list[Finding] = []
    for index, config in enumerate(configs):
        findings += derived(config)
        checkup = Checkup(
            config,
            index if settings.providers is not None else None,
            http,
            loopback=settings.allow_loopback_http,
            leeway=settings.leeway_seconds,
            clock=clock,
        )
        findings += await checkup.run()
    return findings


async def _close(authorizer: Authorizer) -> None:
    for provider in authorizer.router.providers:
        await provider.close()


def _claim_hint(token: str, code: str) -> str:
    """For issuer and audience mismatches, what the token claims (public values, from the unverified token)."""
    claim = {"wrong_issuer": "iss", "wrong_audience": "aud", "alg_not_allowed": "alg"}.get(code)
    if claim is None or not is_compact_jws(token):
        return ""
    try:
        parts = decompose(token)
    except InvalidToken:
        return ""
    value = parts.unverified_header.get("alg") if claim == "alg" else parts.unverified_claims.get(claim)
    return f"; the token says {claim}={value!r}"


def _unverified_claims(token: str) -> dict[str, Any]:
    if not is_compact_jws(token):
        return {}
    try:
        return decompose(token).unverified_claims
    except InvalidToken:
        return {}


def _token_fix(exc: InvalidToken) -> str:
    if exc.code == "wrong_issuer":
        return "the token comes from another issuer: set IDP_ISSUER to its iss (or add a provider for it)"
    if exc.code == "wrong_audience":
        return "add the token's aud to IDP_AUDIENCE, or request the token for the configured audience"
    return TOKEN_FIXES.get(exc.code, "see the code above; the README's troubleshooting table lists the usual causes")


def _settings_fix(error: ConfigurationError, part: Problem) -> str:
    """The fix for one configuration problem, from its data (the variables left unset, the reason)."""
    if part.missing == ("IDP_PROVIDER",):
        return "set IDP_PROVIDER to cognito, entra, auth0, oidc, jwks or introspection, with its variables"
    if part.missing:
        return f"set {', '.join(part.missing)} (or these keys in IDP_PROVIDERS)"
    if error.code == Reason.INSECURE_URL:
        return "use an https:// URL (http:// only to 127.0.0.1 or localhost, with IDP_ALLOW_LOOPBACK_HTTP=true)"
    return "correct the variable named above (the README's configuration table lists every variable)"


def report_exit_code(findings: Sequence[Finding]) -> int:
    return 1 if any(f.status == "problem" for f in findings) else 0
