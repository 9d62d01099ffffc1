"""Hostile events through the real handler: never an allow, never an exception but the deliberate 401.

API Gateway builds the events, but a broken integration, a test console or a future payload version
can hand the authorizer anything. Every event here carries something that must not be authorized
(no ARN, a malformed ARN, two different tokens, a token where none may be, an unknown shape), often
next to a perfectly valid token, so a refusal cannot come from the token alone. A second list holds
junk that does not matter (a valid token, a valid ARN, garbage elsewhere): those must still be
allowed, and nothing may crash on the way.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from conftest import oidc_env
from outcomes import outcome_of, outcome_of_async

from idp_authorizer import handler

pytestmark = pytest.mark.hostile

API = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod"
ARN = f"{API}/GET/pets"
ROUTES = json.dumps({"GET /pets": ["read"], "DELETE /pets": ["admin"]})
SOURCES = "header:Authorization,query:access_token,cookie:tok"
REFUSALS = {"unauthorized", "false", "deny"}


def rest_token(value: object, **extra: Any) -> dict[str, Any]:
    return {"type": "TOKEN", "authorizationToken": value, "methodArn": ARN, **extra}


def rest_request(**extra: Any) -> dict[str, Any]:
    return {"type": "REQUEST", "methodArn": ARN, "resource": "/pets", "httpMethod": "GET", **extra}


def http_v2(**extra: Any) -> dict[str, Any]:
    return {"version": "2.0", "type": "REQUEST", "routeArn": ARN, "routeKey": "GET /pets", **extra}


def hostile_events(v: str, w: str, x: str) -> list[tuple[str, object]]:
    """``(name, event)``: ``v`` and ``w`` are valid tokens (different subjects), ``x`` an invalid one."""
    bv, bw, bx = f"Bearer {v}", f"Bearer {w}", f"Bearer {x}"
    events: list[tuple[str, object]] = [
        # not an object at all
        ("None", None),
        ("empty list", []),
        ("list holding an event", [rest_token(bv)]),
        ("tuple holding an event", (rest_token(bv),)),
        ("string", "TOKEN"),
        ("the token itself", v),
        ("Bearer header as the event", bv),
        ("int", 0),
        ("float", 1.5),
        ("bool", True),
        ("bytes", json.dumps(rest_token(bv)).encode()),
        ("JSON text of an event", json.dumps(rest_token(bv))),
        ("set", {"TOKEN"}),
        # missing fields
        ("empty object", {}),
        ("type only", {"type": "TOKEN"}),
        ("token only", {"authorizationToken": bv}),
        ("ARN only", {"methodArn": ARN}),
        ("TOKEN without token", {"type": "TOKEN", "methodArn": ARN}),
        ("TOKEN without ARN", {"type": "TOKEN", "authorizationToken": bv}),
        ("REQUEST without ARN", {"type": "REQUEST", "headers": {"Authorization": bv}}),
        ("1.0 without ARN", {"version": "1.0", "type": "REQUEST", "headers": {"Authorization": bv}}),
        ("2.0 without routeArn", {"version": "2.0", "type": "REQUEST", "headers": {"authorization": bv}}),
        ("2.0 without token", http_v2()),
        ("REQUEST without headers", rest_request()),
        (
            "WebSocket without ARN",
            {"type": "REQUEST", "requestContext": {"eventType": "CONNECT"}, "headers": {"Authorization": bv}},
        ),
        # unexpected type / version
        *(
            (f"type {t!r}", {**rest_token(bv), "type": t})
            for t in (None, 1, ["TOKEN"], {"TOKEN": 1}, "token", "Token", "TOKEN ", "TOKEN\x00", "", "AUTHORIZER")
        ),
        *(
            (f"REQUEST type {t!r}", {**rest_request(headers={"Authorization": bv}), "type": t})
            for t in ("request", "REQUEST ", None, 7)
        ),
        *(
            (f"version {ver!r}", {**http_v2(headers={"authorization": bv}), "version": ver})
            for ver in ("3.0", "1", 2.0, 2, "2", "2.0 ", ["2.0"], {"v": "2.0"}, "", None)
        ),
        *(
            (f"1.0 version {ver!r}", {**rest_request(headers={"Authorization": bv}), "version": ver})
            for ver in ("1.1", 1.0, "v1", "0.9")
        ),
        ("TOKEN with version 2.0 and routeArn", rest_token(bv, version="2.0", routeArn="junk")),
        ("Type instead of type", {"Type": "TOKEN", "authorizationToken": bv, "methodArn": ARN}),
        # missing or malformed ARN, with a valid token
        *(
            (f"methodArn {arn!r:.40}", rest_token(bv, methodArn=arn))
            for arn in (
                None,
                1,
                [ARN],
                {"arn": ARN},
                "",
                "*",
                ARN + " ",
                " " + ARN,
                ARN + "\n",
                "arn:aws:s3:::bucket/key",
                API,
                "arn:aws:execute-api:us-east-1:123456789012:abc123",
                ARN.replace("execute-api", "lambda"),
                ARN + "/" + "x" * 3000,
                ARN.replace("123456789012", "１２３４５６７８９０１２"),
                ARN.replace("/prod/", "/pr od/"),
                ARN.replace("arn:", "ARN:"),
                ARN + "\x00",
            )
        ),
        *(
            (f"routeArn {arn!r:.40}", http_v2(routeArn=arn, headers={"authorization": bv}))
            for arn in (
                None,
                1,
                "",
                "*",
                API,
                ARN + "\n",
                ["x"],
            )
        ),
        *(
            (f"REQUEST methodArn {arn!r:.40}", rest_request(methodArn=arn, headers={"Authorization": bv}))
            for arn in (None, "", "x", 5)
        ),
        # authorizationToken of the wrong type or form
        *(
            (f"authorizationToken {value!r:.40}", rest_token(value))
            for value in (
                1,
                [bv],
                {"token": bv},
                "",
                "Bearer",
                "Bearer ",
                "  ",
                "Basic dXNlcjpwYXNz",
                f"{bv} extra",
                f"Bearer\t{v}",
                f"{bv}\x00",
                f"{v}\r\nX-Injected: 1",
                f"bearer:{v}",
                f"Bearer,{v}",
                f"Token {v}",
                f"Bearer Bearer {v}",
                f"{v}\u2028",
                "Bearer " + v.replace(".", "%2E"),
                bx,
                x,
                f"Bearer {v},{w}",
                f"Bearer {v} {w}",
                f"Bearer {v};",
                f'Bearer "{v}"',
                f"Bearer {v}\x7f",
                "Bearer " + "é" * 10,
                True,
                None,
                0.0,
            )
        ),
        # headers of the wrong type, repeated with different values
        *(
            (f"headers {value!r:.40}", rest_request(headers=value))
            for value in (
                bv,
                [["Authorization", bv]],
                1,
                {"Authorization": None},
                {"Authorization": 123},
                {"Authorization": [bv, bw]},
                {"Authorization": [bv, bx]},
                {"Authorization": {"v": bv}},
                {"Authorization": ""},
                {"Authorization": bx},
                {"Authorization": bv, "authorization": bw},
                {"Authorization": bv, "AUTHORIZATION": bx},
                {"Authorization": [bv, None]},
                {"Authorization": [[bv]]},
                {"Authorization": []} | {"authorization": bx},
            )
        ),
        ("multiValueHeaders different", rest_request(multiValueHeaders={"Authorization": [bv, bw]})),
        ("multiValueHeaders with invalid", rest_request(multiValueHeaders={"Authorization": [bv, bx]})),
        (
            "headers and multiValueHeaders differ",
            rest_request(headers={"Authorization": bv}, multiValueHeaders={"authorization": [bw]}),
        ),
        ("multiValueHeaders not a map", rest_request(headers={"Authorization": bv}, multiValueHeaders=[bv])),
        ("multiValueHeaders value not a list", rest_request(multiValueHeaders={"Authorization": bx})),
        ("2.0 headers a list", http_v2(headers=[["authorization", bv]])),
        ("2.0 header and capitalised header differ", http_v2(headers={"authorization": bv, "Authorization": bw})),
        # token in more than one source, different values (IDP_TOKEN_SOURCES header, query, cookie)
        (
            "header and query differ",
            rest_request(headers={"Authorization": bv}, queryStringParameters={"access_token": w}),
        ),
        (
            "header and query invalid",
            rest_request(headers={"Authorization": bv}, queryStringParameters={"access_token": x}),
        ),
        ("query values differ", rest_request(multiValueQueryStringParameters={"access_token": [v, w]})),
        (
            "query and multi-value query differ",
            rest_request(
                queryStringParameters={"access_token": v}, multiValueQueryStringParameters={"access_token": [w]}
            ),
        ),
        (
            "2.0 header and query differ",
            http_v2(headers={"authorization": bv}, queryStringParameters={"access_token": w}),
        ),
        ("2.0 header and cookie differ", http_v2(headers={"authorization": bv}, cookies=[f"tok={w}"])),
        ("2.0 two cookies differ", http_v2(cookies=[f"tok={v}", f"tok={w}"])),
        (
            "1.0 header and cookie differ",
            rest_request(version="1.0", headers={"Authorization": bv, "Cookie": f"a=1; tok={w}"}),
        ),
        ("query token with Bearer prefix", rest_request(queryStringParameters={"access_token": bv})),
        ("query not a map", rest_request(queryStringParameters=[v])),
        ("query value a map", rest_request(queryStringParameters={"access_token": {"v": v}})),
        ("2.0 cookies not strings", http_v2(cookies=[1, {"tok": v}])),
        ("2.0 cookie of invalid token", http_v2(cookies=[f"tok={x}"])),
        # control characters
        ("NUL in header", rest_request(headers={"Authorization": f"Bearer {v[:20]}\x00{v[20:]}"})),
        ("newline in header", rest_request(headers={"Authorization": f"Bearer {v[:20]}\n{v[20:]}"})),
        ("DEL in query", rest_request(queryStringParameters={"access_token": v + "\x7f"})),
        ("escape in cookie", http_v2(cookies=[f"tok={v}\x1b[0m"])),
        ("surrogate in header", rest_request(headers={"Authorization": f"Bearer {v}\ud800"})),
        # huge values
        ("1 MB token", rest_token("Bearer " + "A" * 1_000_000)),
        ("1 MB header value", rest_request(headers={"Authorization": "Bearer " + "A" * 1_000_000})),
        ("20000 headers", rest_request(headers={f"X-{i}": "y" for i in range(20_000)} | {"Authorization": bx})),
        (
            "5 MB unrelated header, invalid token",
            rest_request(headers={"X-Junk": "A" * 5_000_000, "Authorization": bx}),
        ),
        ("10000 Authorization values", rest_request(multiValueHeaders={"Authorization": [bv] * 9_999 + [bw]})),
        ("deeply nested header value", rest_request(headers={"Authorization": _nest([bv], 5000)})),
        # route identity at odds with itself: the ARN says GET, the method field says DELETE (rule: admin)
        ("httpMethod differs from the ARN verb", rest_request(httpMethod="DELETE", headers={"Authorization": bv})),
        ("routeKey differs from the ARN verb", http_v2(routeKey="DELETE /pets", headers={"authorization": bv})),
        ("1.0 httpMethod differs", rest_request(version="1.0", httpMethod="DELETE", headers={"Authorization": bv})),
        # WebSocket oddities
        ("CONNECT with a TOKEN type", rest_token(bx, requestContext={"eventType": "CONNECT"})),
        (
            "CONNECT with junk ARN",
            {
                "type": "REQUEST",
                "methodArn": "$connect",
                "requestContext": {"eventType": "CONNECT"},
                "headers": {"Authorization": bv},
            },
        ),
        # valid shape, invalid or absent token
        ("REST TOKEN invalid", rest_token(bx)),
        ("REQUEST invalid", rest_request(headers={"Authorization": bx})),
        ("2.0 invalid", http_v2(headers={"authorization": bx})),
        ("2.0 identitySource only", http_v2(identitySource=[bv])),
        ("1.0 identitySource only", rest_request(version="1.0", identitySource=bv)),
        ("token in the body", rest_request(body=json.dumps({"access_token": v}))),
        ("token in stageVariables", rest_request(stageVariables={"Authorization": bv})),
        ("token in pathParameters", rest_request(pathParameters={"access_token": v})),
    ]
    return events


def _nest(value: object, depth: int) -> object:
    for _ in range(depth):
        value = [value]
    return value


def harmless_junk(v: str) -> list[tuple[str, dict[str, Any]]]:
    """Valid token, valid ARN, junk elsewhere: allowed (that is correct), and nothing crashes."""
    bv = f"Bearer {v}"
    return [
        ("junk requestContext", rest_request(headers={"Authorization": bv}, requestContext="junk")),
        # Account and API ids as local gateways send them (issue 11 item 9): any segment without ':', '/' or a wildcard.
        *(
            (f"methodArn {arn!r:.60}", rest_token(bv, methodArn=arn))
            for arn in (
                ARN.replace("123456789012", "12345678901"),
                "arn:aws:execute-api:us-east-1:123456789012:abc-123/prod/GET/pets",
                "arn:aws:execute-api:us-east-1:random-account-id:random-api-id/prod/GET/pets",
            )
        ),
        (
            "routeArn with a one-digit account",
            http_v2(routeArn="arn:aws:execute-api:us-east-1:1:abc/prod/GET/pets", headers={"authorization": bv}),
        ),
        ("surrogate request id", rest_request(headers={"Authorization": bv}, requestContext={"requestId": "\ud800"})),
        (
            "control chars in request id",
            rest_request(headers={"Authorization": bv}, requestContext={"requestId": "a\nb\x1b"}),
        ),
        ("huge request id", rest_request(headers={"Authorization": bv}, requestContext={"requestId": "r" * 100_000})),
        ("request id a map", rest_request(headers={"Authorization": bv}, requestContext={"requestId": {"a": 1}})),
        ("unknown fields", rest_token(bv, extra={"deep": _nest(1, 2000)}, **{"\x00": "\ud800"})),
        ("unrelated 5 MB header", rest_request(headers={"X-Junk": "A" * 5_000_000, "Authorization": bv})),
        (
            "same token twice",
            rest_request(headers={"Authorization": bv}, multiValueHeaders={"authorization": [bv, bv]}),
        ),
        (
            "same token in header and query",
            rest_request(headers={"Authorization": bv}, queryStringParameters={"access_token": v}),
        ),
        ("bearer in any case", rest_token(f"bEaReR {v}")),
        ("bare token", rest_token(v)),
        ("2.0 junk cookies", http_v2(headers={"authorization": bv}, cookies=["a", "=b", "c="])),
        ("2.0 routeKey junk", http_v2(headers={"authorization": bv}, routeKey=["GET /pets"])),
        ("2.0 identitySource junk", http_v2(headers={"authorization": bv}, identitySource={"a": 1})),
        (
            "other query parameters",
            rest_request(headers={"Authorization": bv}, queryStringParameters={"q": "\x00" * 10}),
        ),
        ("resource without slash", rest_request(headers={"Authorization": bv}, resource="pets")),
    ]


@pytest.fixture(params=["verdict cache on", "verdict cache off"])
def configured(request, dev_idp, configure):
    seconds = "300" if request.param == "verdict cache on" else "0"
    configure(oidc_env(dev_idp, IDP_ROUTES=ROUTES, IDP_TOKEN_SOURCES=SOURCES, IDP_TOKEN_CACHE_SECONDS=seconds))
    v, w = dev_idp.mint(scope="read"), dev_idp.mint(scope="read", sub="someone-else")
    x = dev_idp.mint(ttl=-10)
    # Warm the verdict cache with the consistent request, so a memoized allow cannot leak into odd ones.
    assert outcome_of(lambda: handler.handler(rest_request(headers={"Authorization": f"Bearer {v}"}))) == "allow"
    assert outcome_of(lambda: handler.handler(http_v2(headers={"authorization": f"Bearer {v}"}))) == "allow"
    return v, w, x


def test_hostile_events_are_never_allowed(configured, capsys):
    v, w, x = configured
    events = hostile_events(v, w, x)
    outcomes: Counter[str] = Counter()
    failures = []
    for name, event in events:
        try:
            got = outcome_of(lambda e=event: handler.handler(e, None))
        except AssertionError as exc:
            got = f"crash: {exc}"
        outcomes[got] += 1
        if got not in REFUSALS:
            failures.append(f"{name}: {got}")
    assert not failures, "\n".join(failures)
    with capsys.disabled():
        print(f"\n[hostile events] {len(events)} tried, none allowed, no unexpected exception: {dict(outcomes)}")


async def test_hostile_events_are_never_allowed_through_the_async_entry(configured):
    v, w, x = configured
    for name, event in hostile_events(v, w, x):
        assert await outcome_of_async(handler.authorize(event)) in REFUSALS, name


def test_harmless_junk_next_to_a_valid_token_is_allowed_without_crashing(configured, capsys):
    v, _, _ = configured
    junk = harmless_junk(v)
    for name, event in junk:
        assert outcome_of(lambda e=event: handler.handler(e, None)) == "allow", name
    with capsys.disabled():
        print(f"\n[hostile events] {len(junk)} junk-but-valid events allowed as they should be")


def test_a_memoized_allow_is_not_reused_for_another_method(dev_idp, configure):
    """The response memo is keyed by everything the rules read: the same ARN with another method is judged anew."""
    configure(oidc_env(dev_idp, IDP_ROUTES=ROUTES, IDP_RESPONSE="simple"))
    v = dev_idp.mint(scope="read")
    get = http_v2(headers={"authorization": f"Bearer {v}"})
    assert outcome_of(lambda: handler.handler(get)) == "allow"
    assert outcome_of(lambda: handler.handler({**get, "routeKey": "DELETE /pets"})) == "false"
    assert outcome_of(lambda: handler.handler(get)) == "allow"
