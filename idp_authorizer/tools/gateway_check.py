"""Does the API Gateway side agree with the settings? Payload version, response mode, identity source.

Pure (no I/O): used by ``idp-authorizer doctor``. Facts from the API Gateway documentation:

- Simple responses (``{"isAuthorized": ...}``) exist only for HTTP APIs with payload format 2.0
  (``EnableSimpleResponses``, off by default in CloudFormation and SAM). A response in the other
  shape than the one API Gateway expects fails the request with a 500.
- API Gateway answers 401 without calling the authorizer when an identity source is missing from
  the request, and keys its result cache by the identity sources: a token read from elsewhere is
  not part of the key.
- Cached simple responses (one boolean) are reused for every route unless ``$context.routeKey`` is
  an identity source; the IAM policies this product returns cover every route, so they need not.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from idp_authorizer.aws.settings import Settings
from idp_authorizer.core.events import TokenSource
from idp_authorizer.tools.report import Finding, note, ok, problem

Payload = Literal["1.0", "2.0"]
_SOURCE = re.compile(r"^(?P<api>\$request|method\.request)\.(?P<where>header|querystring)\.(?P<name>[^\s,]+)$")
_CONTEXT = re.compile(r"^\$?(context|stageVariables)\.[A-Za-z0-9_.-]+$")
TOPIC = "gateway"


@dataclass(frozen=True, slots=True)
class Gateway:
    """How the API Gateway authorizer is (or will be) configured; ``None`` when not told."""

    payload: Payload | None = None
    simple_responses: bool | None = None
    identity_sources: tuple[str, ...] = ()
    result_ttl: int | None = None


def check_gateway(settings: Settings, gateway: Gateway) -> list[Finding]:
    """Every finding about the pairing of the settings with the API Gateway configuration."""
    findings = _response_mode(settings, gateway)
    if gateway.identity_sources:
        findings += _identity_sources(settings, gateway)
    return findings + _sender_caching(settings, gateway)


def dpop_configured(settings: Settings) -> bool:
    """Whether the settings ask for sender-constrained tokens (DPoP or mTLS-bound) anywhere."""
    named = {"dpop_algorithms", "dpop_max_age_seconds", "require_sender_constrained"} & settings.model_fields_set
    return bool(named) or any(rule.sender_constrained for rule in settings.route_table().all_rules)


def _sender_caching(settings: Settings, gateway: Gateway) -> list[Finding]:
    """API Gateway's result cache replays a decision without calling the authorizer, so without the proof.

    A cached DPoP decision would let a stolen token in without its proof (or a replayed proof, when the
    DPoP header is an identity source), and a cached mTLS decision without the certificate check.
    """
    if not gateway.result_ttl or not dpop_configured(settings):
        return []
    return [
        problem(
            TOPIC,
            f"result caching ({gateway.result_ttl} s) with sender-constrained tokens: API Gateway replays a "
            "cached decision without the authorizer, so without the DPoP proof or certificate check",
            "set the authorizer's result TTL to 0 (AuthorizerResultTtlInSeconds: 0) for the routes that take "
            "DPoP or certificate-bound tokens",
        )
    ]


def sends_simple(settings: Settings, payload: Payload | None) -> bool:
    """Whether the authorizer answers ``{"isAuthorized": ...}`` (payload 2.0 only, unless ``IDP_RESPONSE=iam``)."""
    return payload == "2.0" and settings.response != "iam"


def _response_mode(settings: Settings, gateway: Gateway) -> list[Finding]:
    mode, payload, expects = settings.response, gateway.payload, gateway.simple_responses
    if payload != "2.0" and expects:
        return [
            problem(
                TOPIC,
                "simple responses exist only for HTTP APIs with payload format 2.0",
                "use payload format 2.0, or turn simple responses off (EnableSimpleResponses: false)",
            )
        ]
    if payload == "1.0" and mode == "simple":
        return [
            problem(
                TOPIC,
                "IDP_RESPONSE=simple, but payload 1.0 events always get an IAM policy",
                "use payload format 2.0 with simple responses, or set IDP_RESPONSE=auto (IAM for 1.0)",
            )
        ]
    if payload is None:
        if mode == "simple":
            return [note(TOPIC, "IDP_RESPONSE=simple applies to HTTP API payload 2.0 only; REST APIs get IAM policies")]
        return [note(TOPIC, "pass --payload 1.0|2.0 (HTTP APIs) to check the response mode")]
    sends = "a simple response" if sends_simple(settings, payload) else "an IAM policy"
    if payload == "1.0" or expects is None:
        hint = "" if payload == "1.0" else "; pass --simple-responses or --no-simple-responses to check it"
        return [ok(TOPIC, f"payload {payload}: the authorizer answers with {sends}{hint}")]
    if expects == sends_simple(settings, payload):
        return [ok(TOPIC, f"payload 2.0, simple responses {'on' if expects else 'off'}: the authorizer sends {sends}")]
    if expects:
        return [
            problem(
                TOPIC,
                'API Gateway expects {"isAuthorized": ...} (simple responses on) but IDP_RESPONSE=iam '
                "sends an IAM policy: every request fails with 500",
                "set IDP_RESPONSE=auto (or simple), or turn simple responses off",
            )
        ]
    return [
        problem(
            TOPIC,
            f"API Gateway expects an IAM policy (simple responses off) but IDP_RESPONSE={mode} sends "
            '{"isAuthorized": ...} for payload 2.0: every request fails with 500',
            "set IDP_RESPONSE=iam, or turn simple responses on (EnableSimpleResponses: true)",
        )
    ]


def _identity_sources(settings: Settings, gateway: Gateway) -> list[Finding]:
    findings: list[Finding] = []
    covered: list[TokenSource] = []
    for source in gateway.identity_sources:
        match = _SOURCE.match(source)
        if match is None:
            if not _CONTEXT.match(source):
                findings.append(
                    problem(
                        TOPIC,
                        f"{source!r} is not an identity source expression",
                        "use $request.header.NAME or $request.querystring.NAME (HTTP APIs), "
                        "method.request.header.NAME (REST APIs), $context.routeKey",
                    )
                )
            continue
        if gateway.payload is not None and match["api"] == "method.request":
            findings.append(
                problem(
                    TOPIC,
                    f"{source} is REST API syntax, but payload {gateway.payload} is an HTTP API",
                    f"use $request.{match['where']}.{match['name']}",
                )
            )
        covered += _readers(settings.token_sources, match["where"], match["name"])
    return findings + _coverage(settings, gateway, covered)


def _readers(sources: Sequence[TokenSource], where: str, name: str) -> list[TokenSource]:
    """The configured token sources that read what this identity source names."""
    if where == "querystring":
        return [s for s in sources if s.kind == "query" and s.name == name]
    return [
        s
        for s in sources
        if (s.kind == "header" and s.name.lower() == name.lower()) or (s.kind == "cookie" and name.lower() == "cookie")
    ]


def _coverage(settings: Settings, gateway: Gateway, covered: list[TokenSource]) -> list[Finding]:
    sources = ",".join(f"{s.kind}:{s.name}" for s in settings.token_sources)
    shown = ", ".join(gateway.identity_sources)
    if not covered:
        return [
            problem(
                TOPIC,
                f"IDP_TOKEN_SOURCES={sources} reads none of the identity sources ({shown}): "
                "API Gateway demands them, the authorizer looks elsewhere, every request is refused",
                "make them agree: e.g. identity source $request.header.Authorization with "
                "IDP_TOKEN_SOURCES=header:Authorization",
            )
        ]
    findings = [ok(TOPIC, f"identity source {shown} carries the token (IDP_TOKEN_SOURCES={sources})")]
    uncovered = [f"{s.kind}:{s.name}" for s in settings.token_sources if s not in covered]
    if uncovered:
        findings.append(
            note(
                TOPIC,
                f"IDP_TOKEN_SOURCES also reads {', '.join(uncovered)}, which is not an identity "
                "source: such a token is not part of API Gateway's result-cache key",
            )
        )
    return findings + _route_caching(settings, gateway)


def _route_caching(settings: Settings, gateway: Gateway) -> list[Finding]:
    """Cached simple responses are per identity source, not per route: per-route rules need ``$context.routeKey``."""
    per_route = bool(settings.routes)
    if not (sends_simple(settings, gateway.payload) and per_route) or gateway.result_ttl == 0:
        return []
    if any(s.lstrip("$") == "context.routeKey" for s in gateway.identity_sources):
        return [ok(TOPIC, "$context.routeKey is an identity source: cached simple responses stay per route")]
    message = "IDP_ROUTES has per-route rules but a cached isAuthorized answer is reused for every route"
    fix = "add $context.routeKey to the identity source, or set the authorizer's result TTL to 0"
    if gateway.result_ttl is None:
        return [note(TOPIC, f"{message} when result caching is on (pass --result-ttl to check); fix: {fix}")]
    return [problem(TOPIC, f"{message} for {gateway.result_ttl} s", fix)]
