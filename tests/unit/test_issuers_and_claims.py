"""Issuer templates (multi-tenant IdPs) and claim paths (nested and namespaced claims).

The tenant binding is a security property over all inputs: a token is accepted exactly when its
``iss`` is the template filled with an allowed tenant and its tenant claim names that same tenant.
The property test checks :class:`Issuers` against that sentence, written independently here.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tally import tally

from idp_authorizer.core.claims import claim_path, context_claim
from idp_authorizer.core.errors import InvalidToken
from idp_authorizer.jose.issuer import Issuers

TEMPLATE = "https://login.microsoftonline.com/{tenantid}/v2.0"
ALLOWED = ("t1", "t2")
TENANTS = st.sampled_from(["t1", "t2", "t3", "", "t1/x", "{tenantid}", "T1", "t1 "])


def reference_accepts(iss: object, tid: object) -> bool:
    """The rule in words: iss is the template for an allowed tenant, and tid is that tenant."""
    return any(iss == TEMPLATE.replace("{tenantid}", t) and tid == t for t in ALLOWED)


@st.composite
def iss_and_tid(draw: st.DrawFn) -> tuple[object, object]:
    tenant = draw(TENANTS)
    iss = draw(
        st.one_of(
            st.just(TEMPLATE.replace("{tenantid}", tenant)),
            TENANTS.map(lambda t: TEMPLATE.replace("{tenantid}", t)),
            TENANTS.map(lambda t: f"https://sts.windows.net/{t}/"),
            st.text(max_size=40),
            st.none(),
            st.integers(),
        )
    )
    tid = draw(st.one_of(st.just(tenant), TENANTS, st.none(), st.integers(), st.lists(TENANTS, max_size=2)))
    return iss, tid


@settings(max_examples=2000, deadline=None)
@given(case=iss_and_tid())
def test_a_template_accepts_exactly_an_allowed_tenant_bound_to_its_tid(case: tuple[object, object]) -> None:
    iss, tid = case
    issuers = Issuers.template(TEMPLATE, ALLOWED, "tid")
    claims = {"iss": iss, "tid": tid}
    counts = tally("issuer template", "examples of the issuer template property")
    try:
        accepted = issuers.check(claims) == iss
    except InvalidToken as exc:
        accepted = False
        counts[f"refused {exc.code}"] += 1
    else:
        counts["accepted"] += 1
    assert accepted == reference_accepts(iss, tid), claims


def test_template_values_and_refusal_codes() -> None:
    issuers = Issuers.template(TEMPLATE, ALLOWED)
    assert issuers.values == {f"https://login.microsoftonline.com/{t}/v2.0" for t in ALLOWED}
    codes = {}
    for iss, tid in [
        ("https://login.microsoftonline.com/t3/v2.0", "t3"),
        ("https://login.microsoftonline.com/t1/v2.0", "t2"),
        ("https://evil.example/t1/v2.0", "t1"),
    ]:
        with pytest.raises(InvalidToken) as raised:
            issuers.check({"iss": iss, "tid": tid})
        codes[iss] = raised.value.code
    assert list(codes.values()) == ["tenant_not_allowed", "tenant_mismatch", "wrong_issuer"]


@pytest.mark.parametrize(
    ("pattern", "allowed"),
    [
        (TEMPLATE, ()),
        (TEMPLATE, ("",)),
        (TEMPLATE, ("a/b",)),
        ("https://x/{tenantid}/{tenantid}", ("a",)),
        ("https://x/", ("a",)),
    ],
)
def test_a_template_needs_one_placeholder_and_real_tenants(pattern: str, allowed: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        Issuers.template(pattern, allowed)


def test_a_single_issuer_is_an_exact_comparison() -> None:
    issuers = Issuers("https://idp.example/")
    assert issuers.check({"iss": "https://idp.example/"}) == "https://idp.example/"
    for iss in ("https://idp.example", "https://IDP.example/", None, ["https://idp.example/"]):
        with pytest.raises(InvalidToken):
            issuers.check({"iss": iss})


CLAIMS = {
    "cognito:groups": ["admins"],
    "https://example.com/roles": ["analyst"],
    "realm_access.roles": "a claim with a dot",
    "realm_access": {"roles": ["shop-admin"]},
    "resource_access": {"orders-api": {"roles": ["refund"]}, "a/b": {"c~d": 1}},
    "list": [{"x": 1}],
}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("cognito:groups", ["admins"]),
        ("https://example.com/roles", ["analyst"]),
        ("realm_access.roles", "a claim with a dot"),
        ("/realm_access/roles", ["shop-admin"]),
        ("/resource_access/orders-api/roles", ["refund"]),
        ("/resource_access/a~1b/c~0d", 1),
        ("/resource_access/missing/roles", None),
        ("/realm_access/roles/0", None),  # no array indexes: a list on the way is an absent claim
        ("/list/0/x", None),
        ("absent", None),
    ],
)
def test_claim_paths(name: str, value: object) -> None:
    assert claim_path(name).of(CLAIMS) == value


@pytest.mark.parametrize("name", ["", "/", "//a", "/a/", "/a~2b", "/a~"])
def test_malformed_pointers_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        claim_path(name)


def test_context_claims_can_name_a_pointer_by_a_key() -> None:
    path = context_claim("roles=/realm_access/roles")
    assert (path.name, path.of(CLAIMS), path.top) == ("roles", ["shop-admin"], "realm_access")
    assert context_claim("cognito:groups").name == "cognito:groups"
    assert context_claim("a=b").keys == ("a=b",)  # no pointer after '=': a literal name
    with pytest.raises(ValueError):
        context_claim("bad key=/realm_access/roles")
