"""README examples are executed, so the documentation cannot drift from the product."""

import json
import re
from pathlib import Path
from types import MappingProxyType

from idp_authorizer.aws.settings import Settings
from idp_authorizer.core.events import parse_event
from idp_authorizer.core.outcome import Decision, Responder
from idp_authorizer.core.principal import Principal
from idp_authorizer.core.rules import RouteTable

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_routes_example_compiles():
    example = re.search(r"IDP_ROUTES='(\{.*?\})'", README, re.DOTALL)
    assert example is not None
    table = RouteTable.build(json.loads(example[1]))
    assert len(table.rules) == 5


def test_policy_example_is_what_the_product_returns():
    example = re.search(r"```json\n(\{\"principalId\".*?)\n```", README, re.DOTALL)
    assert example is not None
    documented = json.loads(example[1])
    table = RouteTable.build({"GET /pets": ["pets:read"], "POST /pets": ["pets:write"]})
    who = Principal(
        "user-123",
        "https://issuer.example/",
        ("demo-api",),
        frozenset({"pets:read"}),
        2e9,
        "oidc",
        "demo-client",
        claims=MappingProxyType({}),
    )
    arn = "arn:aws:execute-api:us-east-1:123456789012:demo123/prod/GET/pets"
    request = parse_event({"type": "TOKEN", "authorizationToken": "t", "methodArn": arn})
    assert Responder(table).render(request, Decision("allow", "allowed", who)) == documented


def test_every_documented_variable_exists_and_every_setting_is_documented():
    documented = set()
    for row in re.findall(r"^\| (`IDP_[^|]+)\|", README, re.MULTILINE):
        documented.update(re.findall(r"`(IDP_[A-Z0-9_]+)`", row))
    fields = {f"IDP_{name.upper()}" for name in Settings.model_fields}
    assert documented <= fields, documented - fields
    assert fields <= documented, fields - documented
