"""API Gateway authorizer events: recognise the shape, find the route, extract the bearer token.

Shapes (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-lambda-authorizer-input.html,
https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-lambda-authorizer.html):
REST TOKEN, REST REQUEST, HTTP API payload 1.0, HTTP API payload 2.0, WebSocket ``$connect``.
Pure: no I/O. Anything malformed raises :class:`InvalidToken`, never another exception.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from idp_authorizer.core.arn import ExecuteApiArn, parse_arn
from idp_authorizer.core.errors import InvalidToken, Reason
from idp_authorizer.core.rules import METHODS

Shape = Literal["rest-token", "rest-request", "http-v1", "http-v2", "websocket"]
SourceKind = Literal["header", "query", "cookie"]

# RFC 6750 section 2.1 b64token; refuses whitespace, commas, quotes and control characters.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_MAX_HEADER = 16 * 1024
# HTTP optional whitespace (RFC 9110 section 5.6.3). str.strip() would also drop \u2028, \x1c-\x1f, \x85 and
# friends, letting a token with trailing junk pass as clean.
_OWS = " \t"


@dataclass(frozen=True, slots=True)
class TokenSource:
    """Where to look for the token: ``header:Authorization``, ``query:access_token``, ``cookie:name``."""

    kind: SourceKind
    name: str

    @classmethod
    def parse(cls, spec: str) -> TokenSource:
        kind, sep, name = spec.strip().partition(":")
        if not sep or not name or kind not in ("header", "query", "cookie"):
            raise ValueError("each token source must be header:NAME, query:NAME or cookie:NAME")
        return cls(kind, name.strip())  # type: ignore[arg-type]


DEFAULT_SOURCES = (TokenSource("header", "Authorization"),)


class Request(NamedTuple):
    """What the authorizer needs from one event (a tuple: built on every request, so kept cheap)."""

    shape: Shape
    arn: ExecuteApiArn | None
    method: str
    """The HTTP method the event names (``httpMethod``, ``requestContext.http.method``), else the ARN's."""
    template: str | None
    """The route as API Gateway names it: ``resource``, the path of ``routeKey``, ``$default`` or ``$connect``."""
    path: str
    """The concrete request path from the ARN (``/`` joined)."""
    token: str | None
    """ASCII without spaces; :func:`check_token_syntax` completes the check before verification."""
    request_id: str | None = None
    scheme: str | None = None
    """``bearer`` or ``dpop`` (lower case) when an ``Authorization``-style value named one; ``None`` otherwise."""

    @property
    def payload_v2(self) -> bool:
        return self.shape == "http-v2"


def detect_shape(event: Mapping[str, Any]) -> Shape:
    """Tell the event's shape from its fields; raise :class:`InvalidToken` when it has none of them."""
    version = event.get("version")
    kind = event.get("type")
    if version == "2.0" and "routeArn" in event:
        return "http-v2"
    # serverless-offline adds version "1.0" (and REQUEST fields) to its TOKEN events; API Gateway sends none.
    if kind == "TOKEN" and version in (None, "1.0"):
        return "rest-token"
    if kind == "REQUEST":
        context = event.get("requestContext")
        if isinstance(context, dict) and context.get("eventType") == "CONNECT":
            return "websocket"
        if version == "1.0":
            return "http-v1"
        if version is None:
            return "rest-request"
    raise InvalidToken(Reason.MALFORMED_EVENT, "unrecognised event shape")


def parse_event(event: object, sources: Sequence[TokenSource] = DEFAULT_SOURCES) -> Request:
    """Parse an authorizer event into a :class:`Request`."""
    if not isinstance(event, dict):
        raise InvalidToken(Reason.MALFORMED_EVENT, "event is not an object")
    shape = detect_shape(event)
    arn = parse_arn(event.get("routeArn" if shape == "http-v2" else "methodArn"))
    if arn is None:
        # API Gateway always sends one; without it no policy can be scoped and no route rule applied.
        raise InvalidToken(Reason.MALFORMED_EVENT, "event has no valid methodArn/routeArn")
    method, template = _route(event, shape, arn)
    path = "/" + arn.path
    token, scheme = _token(event, shape, sources)
    return Request(shape, arn, method, template, path, token, _request_id(event), scheme)


def refused_request(event: object) -> Request | None:
    """A bare :class:`Request` for an event :func:`parse_event` refused, when its shape is still known.

    It carries no ARN and no token: only what the responder needs to answer in the event's own form
    (``{"isAuthorized": false}`` for payload 2.0 with simple responses, the 401 otherwise).
    """
    if not isinstance(event, dict):
        return None
    try:
        return Request(detect_shape(event), None, "", None, "", None, _request_id(event))
    except InvalidToken:
        return None


def _route(event: Mapping[str, Any], shape: Shape, arn: ExecuteApiArn) -> tuple[str, str | None]:
    """``(method, template)``: the method the event names besides its ARN, and the route it names.

    Decisions are made on the ARN's method and path (:meth:`~idp_authorizer.core.outcome.Responder.routes`).
    A method the event names elsewhere (``httpMethod``, ``requestContext.http.method``, a route key
    with a method) that differs from the ARN's is returned so that it must allow the request too: an
    event at odds with itself cannot pick the looser reading. The template is for the log only.
    """
    if shape in ("rest-token", "websocket"):
        return arn.verb, "$connect" if shape == "websocket" else None
    if shape == "http-v2":
        context = event.get("requestContext")
        http = context.get("http") if isinstance(context, dict) else None
        route_key = event.get("routeKey")
        key_method, _, key_path = route_key.partition(" ") if isinstance(route_key, str) else ("", "", "")
        named: tuple[object, ...] = (
            http.get("method") if isinstance(http, dict) else None,
            key_method if key_method in METHODS else None,  # not ANY, not $default
        )
        template = route_key if route_key == "$default" else _template(key_path)
    else:
        named, template = (event.get("httpMethod"),), _template(event.get("resource"))
    odd = next((m for m in named if isinstance(m, str) and m and m != arn.verb), None)
    return (odd or arn.verb), template


def _template(value: object) -> str | None:
    return value if isinstance(value, str) and value.startswith("/") else None


def _request_id(event: Mapping[str, Any]) -> str | None:
    context = event.get("requestContext")
    value = context.get("requestId") if isinstance(context, dict) else None
    # Logged as is: printable ASCII only (API Gateway sends UUIDs), so no control character or lone
    # surrogate reaches the log stream.
    return value if isinstance(value, str) and len(value) <= 128 and value.isascii() and value.isprintable() else None


def _token(event: Mapping[str, Any], shape: Shape, sources: Sequence[TokenSource]) -> tuple[str | None, str | None]:
    """The one access token of the request and its scheme; two different tokens (or schemes) are refused."""
    if shape == "rest-token":
        raw = event.get("authorizationToken")
        return _bearer(raw) if raw is not None else (None, None)
    found: str | None = None
    found_scheme: str | None = None
    for source in sources:
        for raw in _raw_values(event, shape, source):
            token, scheme = _bearer(raw) if source.kind == "header" else (_bare(raw), None)
            if found is not None and token != found:
                raise InvalidToken(Reason.MULTIPLE_TOKENS, "the request carries more than one token")
            if scheme is not None and found_scheme not in (None, scheme):
                raise InvalidToken(Reason.MULTIPLE_TOKENS, "the request sends its token under two schemes")
            found, found_scheme = token, scheme or found_scheme
    return found, found_scheme


def _raw_values(event: Mapping[str, Any], shape: Shape, source: TokenSource) -> Iterator[object]:
    if source.kind == "header":
        yield from _header_values(event, source.name)
    elif source.kind == "query":
        yield from _named_values(
            event, ("queryStringParameters", "multiValueQueryStringParameters"), source.name, exact=True
        )
    else:
        yield from _cookie_values(event, shape, source.name)


def _named_values(event: Mapping[str, Any], fields: tuple[str, ...], name: str, *, exact: bool) -> Iterator[object]:
    wanted = name if exact else name.lower()
    for field in fields:
        table = event.get(field)
        if table is None:
            continue
        if not isinstance(table, dict):
            raise InvalidToken(Reason.MALFORMED_EVENT, f"{field} is not an object")
        for key, value in table.items():
            if (key if exact else str(key).lower()) != wanted:
                continue
            if isinstance(value, list):
                yield from value
            else:
                yield value


def _header_values(event: Mapping[str, Any], name: str) -> Iterator[object]:
    return _named_values(event, ("headers", "multiValueHeaders"), name, exact=False)


def _cookie_values(event: Mapping[str, Any], shape: Shape, name: str) -> Iterator[object]:
    if shape == "http-v2":
        cookies = event.get("cookies")
        pairs: list[object] = list(cookies) if isinstance(cookies, list) else []
    else:
        pairs = [
            part for header in _header_values(event, "Cookie") if isinstance(header, str) for part in header.split(";")
        ]
    for pair in pairs:
        if not isinstance(pair, str):
            raise InvalidToken(Reason.MALFORMED_EVENT, "cookie is not a string")
        key, sep, value = pair.strip(_OWS).partition("=")
        if sep and key == name:
            yield value.strip(_OWS)


_SCHEMES = ("bearer", "dpop")
"""RFC 6750 ``Bearer`` and RFC 9449 section 7.1 ``DPoP``, case-insensitive (RFC 9110 section 11.1)."""


def _bearer(raw: object) -> tuple[str, str | None]:
    """``(token, scheme)`` of an Authorization value: ``Bearer <token>``, ``DPoP <token>`` or the bare token."""
    if not isinstance(raw, str) or len(raw) > _MAX_HEADER:
        raise InvalidToken(Reason.MALFORMED_TOKEN, "authorization value is not a short string")
    scheme, sep, rest = raw.strip(_OWS).partition(" ")
    if not sep:
        if scheme.lower() in _SCHEMES:
            raise InvalidToken(Reason.MALFORMED_TOKEN, "authorization scheme without a token")
        return _bare(scheme), None
    named = scheme.lower()
    if named not in _SCHEMES:
        raise InvalidToken(Reason.MALFORMED_TOKEN, "authorization scheme is not Bearer or DPoP")
    return _bare(rest.strip(_OWS)), named


def _bare(raw: object) -> str:
    # Cheap checks here (ASCII, so hashing it cannot fail); the full RFC 6750 syntax, which also refuses
    # control characters, is checked by check_token_syntax on a cache miss only, since a token found in
    # the verdict cache passed it when it was first seen.
    if not isinstance(raw, str) or not raw or len(raw) > _MAX_HEADER or not raw.isascii() or " " in raw:
        raise InvalidToken(Reason.MALFORMED_TOKEN, "token has characters a bearer token cannot have")
    return raw


class SenderEvidence(NamedTuple):
    """What a request offers to prove a sender-constrained token: the DPoP proofs and the client certificate.

    Read from the event only for a token that needs it (:func:`sender_evidence`).
    """

    proofs: tuple[str, ...]
    """Every ``DPoP`` header value (RFC 9449 section 4.3 wants exactly one)."""
    htm: str
    htu: str | None
    """The URL the client called, without query (``None`` when the event does not say)."""
    client_cert_pem: str | None


def sender_evidence(event: Mapping[str, Any], request: Request) -> SenderEvidence:
    """The DPoP proofs, ``htm``, ``htu`` and the mutual-TLS client certificate of a REQUEST-type event.

    ``htu`` is ``https://`` + the host the client used + the path as the client sent it:

    - host: ``requestContext.domainName`` (the custom domain, or ``{api-id}.execute-api.{region}.amazonaws.com``),
      else the ``Host`` header;
    - path: REST REQUEST and HTTP API 1.0 ``requestContext.path`` (``$context.path``: with the stage on the
      execute-api host, with the base path on a custom domain), HTTP API 2.0 ``rawPath`` (with the stage
      for a named stage, none for ``$default``).

    API Gateway accepts HTTPS only, so the scheme is always ``https``. The client certificate is
    ``requestContext.identity.clientCert.clientCertPem`` (REST) or
    ``requestContext.authentication.clientCert.clientCertPem`` (HTTP APIs), present with mutual TLS.
    """
    context = event.get("requestContext")
    context = context if isinstance(context, dict) else {}
    # API Gateway's own word on the domain first: the Host header is the client's.
    host = context.get("domainName") or next((v for v in _header_values(event, "Host") if isinstance(v, str)), None)
    path = event.get("rawPath") if request.shape == "http-v2" else context.get("path")
    htu = None
    if isinstance(host, str) and host and isinstance(path, str) and path.startswith("/"):
        htu = f"https://{host}{path.partition('?')[0]}"
    method = request.arn.verb if request.arn is not None else request.method
    return SenderEvidence(_proofs(event), method, htu, _client_cert(context))


def _proofs(event: Mapping[str, Any]) -> tuple[str, ...]:
    """Every DPoP header value: ``multiValueHeaders`` when present (it holds them all), else ``headers``,
    where API Gateway joins repeated headers with commas (a JWS never holds one)."""
    many = list(_named_values(event, ("multiValueHeaders",), "DPoP", exact=False))
    values = many or list(_named_values(event, ("headers",), "DPoP", exact=False))
    found: list[str] = []
    for value in values:
        if not isinstance(value, str):
            raise InvalidToken(Reason.MALFORMED_EVENT, "DPoP header is not a string")
        found += [part.strip(_OWS) for part in value.split(",")]
    return tuple(found)


def _client_cert(context: Mapping[str, Any]) -> str | None:
    for holder in ("identity", "authentication"):
        section = context.get(holder)
        cert = section.get("clientCert") if isinstance(section, dict) else None
        pem = cert.get("clientCertPem") if isinstance(cert, dict) else None
        if isinstance(pem, str) and pem:
            return pem
    return None


def check_token_syntax(token: str) -> None:
    """Refuse a token that is not an RFC 6750 ``b64token`` (section 2.1)."""
    if _B64TOKEN.fullmatch(token) is None:
        raise InvalidToken(Reason.MALFORMED_TOKEN, "token has characters a bearer token cannot have")
