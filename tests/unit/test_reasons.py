"""The one catalogue of reason codes: every raise uses a Reason whose outcome matches its error family."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from idp_authorizer.aws.settings import load_settings
from idp_authorizer.core.errors import OUTCOMES, ConfigurationError, InvalidToken, Reason, UpstreamUnavailable
from idp_authorizer.core.outcome import Decision, decision_for

ROOT = Path(__file__).resolve().parents[2]
FAMILIES = {"InvalidToken": "invalid", "UpstreamUnavailable": "unavailable", "ConfigurationError": "unavailable"}


def raise_sites() -> list[tuple[str, int, str, ast.expr | None]]:
    """(file, line, error class, first argument) of every construction of an error family."""
    found = []
    for path in sorted([*(ROOT / "idp_authorizer").rglob("*.py"), *(ROOT / "providers").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FAMILIES:
                found.append(
                    (str(path.relative_to(ROOT)), node.lineno, node.func.id, node.args[0] if node.args else None)
                )
    return found


def test_every_reason_has_one_outcome_and_the_groups_are_right():
    assert set(OUTCOMES) == set(Reason)
    assert {r for r, o in OUTCOMES.items() if o == "allow"} == {Reason.ALLOWED, Reason.VERIFIED, Reason.ACTIVE}
    assert {r for r, o in OUTCOMES.items() if o == "deny"} == {
        Reason.INSUFFICIENT_SCOPE,
        Reason.WILDCARD_IN_PATH,
        Reason.SENDER_CONSTRAINED_ROUTE,
    }
    assert all(OUTCOMES[r] == "invalid" for r in Reason if r.value.startswith(("dpop_", "cnf_")))
    for reason in (Reason.EXPIRED, Reason.UNKNOWN_KID, Reason.INACTIVE, Reason.MALFORMED_EVENT, Reason.MISSING_TOKEN):
        assert OUTCOMES[reason] == "invalid"
    for reason in (Reason.IDP_TIMEOUT, Reason.HTTP_503, Reason.HTTP_OTHER, Reason.INSECURE_URL, Reason.IDP_BACKOFF):
        assert OUTCOMES[reason] == "unavailable"


def test_every_raise_names_a_reason_of_its_family():
    sites = raise_sites()
    assert len(sites) > 60
    wrong = []
    for where, line, family, first in sites:
        if isinstance(first, ast.Constant):
            wrong.append(f"{where}:{line}: {family}({first.value!r}) names no Reason")
            continue
        named = isinstance(first, ast.Attribute) and isinstance(first.value, ast.Name) and first.value.id == "Reason"
        if named and OUTCOMES[Reason[first.attr]] != FAMILIES[family]:
            wrong.append(f"{where}:{line}: {family}(Reason.{first.attr}) is {OUTCOMES[Reason[first.attr]]}")
    assert not wrong, wrong


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (InvalidToken(Reason.EXPIRED), "invalid"),
        (UpstreamUnavailable(Reason.HTTP_502), "unavailable"),
        (ConfigurationError(Reason.CONFIGURATION_ERROR, "IDP_X: bad"), "unavailable"),
    ],
)
def test_an_error_becomes_the_decision_its_reason_says(error, outcome):
    assert decision_for(error) == Decision(outcome, error.code)


def test_reasons_read_back_from_a_cache_fall_back_to_a_refusal():
    assert Reason.of("expired", Reason.INVALID_TOKEN) is Reason.EXPIRED
    assert Reason.of("planted-by-someone", Reason.INVALID_TOKEN) is Reason.INVALID_TOKEN
    assert Reason.http(503) is Reason.HTTP_503 and Reason.http(418) is Reason.HTTP_OTHER


def test_configuration_problems_name_their_variables_as_data(monkeypatch):
    monkeypatch.setenv("IDP_PROVIDER", "oidc")
    monkeypatch.setenv("IDP_ISSUER", "https://idp.example/")
    with pytest.raises(ConfigurationError) as missing:
        load_settings()
    assert [p.missing for p in missing.value.problems] == [("IDP_AUDIENCE",)]
    monkeypatch.setenv("IDP_AUDIENCE", "api")
    monkeypatch.setenv("IDP_ROUTES", "{not json")
    monkeypatch.setenv("IDP_CACHE_MAX_ENTRIES", "0")
    with pytest.raises(ConfigurationError) as bad:
        load_settings()
    messages = [p.message for p in bad.value.problems]
    assert messages == ["IDP_ROUTES: Value error, is not valid JSON", messages[1]]
    assert messages[1].startswith("IDP_CACHE_MAX_ENTRIES:") and "{not json" not in bad.value.description


def test_a_refusal_read_back_is_never_another_outcome():
    assert Reason.refusal("expired") is Reason.EXPIRED
    for code in ("allowed", "verified", "insufficient_scope", "idp_timeout", "configuration_error", "junk"):
        assert Reason.refusal(code) is Reason.INVALID_TOKEN
    # an error never allows, whatever reason it carries
    assert decision_for(InvalidToken(Reason.ALLOWED)).outcome == "invalid"
