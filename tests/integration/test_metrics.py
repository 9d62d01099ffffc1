"""CloudWatch Embedded Metric Format lines: shape, counts, off by default, never a token."""

import json
import socket
import time
from types import MappingProxyType

import pytest
from conftest import oidc_env
from event_factory import rest_token

from idp_authorizer import handler
from idp_authorizer.core.errors import AuthorizerUnavailable
from idp_authorizer.core.outcome import Decision
from idp_authorizer.core.principal import Principal
from idp_authorizer.infra.metrics import Metrics

UNITS = {"Count", "Milliseconds"}


def emf_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"_aws"')]


def assert_emf(doc: dict) -> None:
    """The EMF specification's rules for one document."""
    meta = doc["_aws"]
    assert isinstance(meta["Timestamp"], int) and abs(meta["Timestamp"] / 1000 - time.time()) < 60
    for directive in meta["CloudWatchMetrics"]:
        assert directive["Namespace"] == "IdpAuthorizer"
        for dimension_set in directive["Dimensions"]:
            assert 1 <= len(dimension_set) <= 30
            assert all(isinstance(doc[name], str) for name in dimension_set)
        assert 1 <= len(directive["Metrics"]) <= 100
        for metric in directive["Metrics"]:
            assert metric["Unit"] in UNITS
            value = doc[metric["Name"]]
            values = value if isinstance(value, list) else [value]
            assert values and all(isinstance(v, int | float) for v in values)


def metric_values(doc: dict) -> dict:
    names = [m["Name"] for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]]
    return {name: doc[name] for name in names if name not in ("Latency", "IdpLatency")}


def test_one_line_per_invocation_with_counts(fresh_idp, configure, capsys):
    configure(oidc_env(fresh_idp, IDP_METRICS="true", IDP_LOG_LEVEL="WARNING"))
    token = fresh_idp.mint(scope="read")
    handler.handler(rest_token(token), None)  # cold: discovery + key set
    handler.handler(rest_token(token), None)  # verdict cache
    for kid in ("made-up-1", "made-up-2"):  # first refetches, second is refused by the penalty box
        with pytest.raises(Exception, match="Unauthorized"):
            handler.handler(rest_token(fresh_idp.mint(header={"kid": kid})), None)
    with pytest.raises(Exception, match="Unauthorized"):
        handler.handler({"type": "REQUEST", "methodArn": rest_token("x")["methodArn"], "headers": {}})
    out = capsys.readouterr().out
    docs = emf_lines(out)
    assert len(docs) == 5
    for doc in docs:
        assert_emf(doc)
    assert token not in out and token.split(".")[2] not in out
    first, cached, unknown, penalty, missing = docs
    assert (first["Outcome"], first["Reason"], first["Service"]) == ("allow", "allowed", "idp-authorizer")
    assert metric_values(first) == {
        "Decisions": 1,
        "TokenCacheHits": 0,
        "TokenCacheMisses": 1,
        "IdpRequests": 2,
        "IdpErrors": 0,
        "KeySetFetches": 1,
        "PenaltyBoxHits": 0,
    }
    assert len(first["IdpLatency"]) == 2 and all(ms > 0 for ms in first["IdpLatency"])
    assert metric_values(cached)["TokenCacheHits"] == 1 and "IdpLatency" not in cached
    assert metric_values(cached)["IdpRequests"] == 0
    assert (unknown["Reason"], unknown["KeySetFetches"], unknown["PenaltyBoxHits"]) == ("unknown_kid", 1, 0)
    assert (penalty["Reason"], penalty["KeySetFetches"], penalty["PenaltyBoxHits"]) == ("unknown_kid", 0, 1)
    assert (missing["Outcome"], missing["Reason"]) == ("invalid", "missing_token")
    assert "TokenCacheHits" not in missing and "TokenCacheMisses" not in missing


def test_idp_errors_and_unavailable_outcome(configure, capsys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    configure(
        {
            "IDP_PROVIDER": "jwks",
            "IDP_ISSUER": "https://issuer.example/",
            "IDP_JWKS_URL": f"http://127.0.0.1:{closed}/jwks.json",
            "IDP_AUDIENCE": "demo-api",
            "IDP_ALLOW_LOOPBACK_HTTP": "true",
            "IDP_METRICS": "1",
            "IDP_METRICS_NAMESPACE": "IdpAuthorizer",
        }
    )
    token = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ4In0.c2ln"
    with pytest.raises(AuthorizerUnavailable):
        handler.handler(rest_token(token), None)
    (doc,) = emf_lines(capsys.readouterr().out)
    assert_emf(doc)
    assert (doc["Outcome"], doc["Reason"]) == ("unavailable", "idp_unreachable")
    assert (doc["IdpRequests"], doc["IdpErrors"]) == (1, 1)


def test_nothing_emitted_when_disabled(fresh_idp, configure, capsys):
    authorizer = configure(oidc_env(fresh_idp))
    assert authorizer.metrics is None
    handler.handler(rest_token(fresh_idp.mint()), None)
    out = capsys.readouterr().out
    assert '"logger":"idp_authorizer.decision"' in out.replace(" ", "") and "_aws" not in out


def test_introspection_verdicts_are_counted_apart():
    class Stream:
        text = ""

        def write(self, line: str) -> None:
            self.text += line

    stream = Stream()
    metrics = Metrics("IdpAuthorizer", "fn", introspection_providers={"corp"}, stream=stream)  # type: ignore[arg-type]
    who = Principal("s", "https://i/", (), frozenset(), 2e9, "corp", claims=MappingProxyType({}))
    metrics.flush(Decision("allow", "allowed", who), True, True, time.perf_counter())
    metrics.flush(Decision("invalid", "inactive"), False, True, time.perf_counter())
    hit, refused = emf_lines(stream.text)
    assert (hit["IntrospectionCacheHits"], hit["IntrospectionCacheMisses"]) == (1, 0)
    assert (refused["IntrospectionCacheHits"], refused["IntrospectionCacheMisses"]) == (0, 1)
    assert hit["Service"] == "fn" and hit["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [
        ["Service"],
        ["Service", "Outcome"],
        ["Service", "Outcome", "Reason"],
    ]


def test_namespace_setting_is_validated(configure, monkeypatch):
    from idp_authorizer.aws.settings import load_settings
    from idp_authorizer.core.errors import ConfigurationError

    monkeypatch.setenv("IDP_PROVIDER", "auth0")
    monkeypatch.setenv("IDP_AUTH0_DOMAIN", "tenant.example.com")
    monkeypatch.setenv("IDP_AUDIENCE", "api")
    assert load_settings().metrics is False
    monkeypatch.setenv("IDP_METRICS_NAMESPACE", "AWS/Lambda")
    with pytest.raises(ConfigurationError, match="IDP_METRICS_NAMESPACE"):
        load_settings()


def test_metrics_module_is_not_imported_when_off():
    import subprocess
    import sys

    script = (
        "import os, sys\n"
        "os.environ.update(IDP_PROVIDER='jwks', IDP_ISSUER='https://i.example/', IDP_AUDIENCE='a',"
        " IDP_JWKS_URL='https://i.example/jwks.json')\n"
        "import idp_authorizer.handler\n"
        "print('idp_authorizer.infra.metrics' in sys.modules, idp_authorizer.handler._authorizer.metrics)"
    )
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    assert out.stdout.strip().splitlines()[-1] == "False None"
