"""The deploy templates under ``deploy/``: cfn-lint clean, and the pitfalls they avoid pinned down.

Every CloudFormation/SAM template (``*.yaml``, ``*.yml``, ``*.json`` with a ``Resources`` section)
must pass ``cfn-lint`` with no error and no warning. The structural tests read the templates with
cfn-lint's own loader (it understands ``!Ref``/``!Sub``/``!GetAtt``) and check, for SAM and plain
CloudFormation alike, what breaks a real deployment without failing any linter:

- the handler string is ``idp_authorizer.handler.handler``;
- every Lambda authorizer has an invoke permission scoped to its API (else every request is a 500);
- an HTTP API authorizer that caches has ``$context.routeKey`` in its identity sources;
- the function's ``IDP_RESPONSE`` matches what its authorizers expect (IAM policy vs simple response);
- no TOKEN authorizer forces a ``Bearer`` prefix with a validation expression;
- the REST APIs send ``WWW-Authenticate`` with their 401 and 403 Gateway Responses;
- every sample route is protected and named in ``IDP_ROUTES``.

The Terraform example cannot be validated here (no ``terraform`` binary), so its files get text checks.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2
import pytest
from cfnlint.decode import decode
from pydantic import ValidationError

from idp_authorizer.aws.settings import MissingSettingsError, ProviderConfig, ProviderKind

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SAM_TEMPLATE = DEPLOY / "sam" / "template.yaml"
TERRAFORM = DEPLOY / "terraform"
LAMBDA_ZIP = ROOT / "dist" / "idp-authorizer-lambda.zip"
CFN_LINT = Path(sys.executable).parent / "cfn-lint"
HANDLER = "idp_authorizer.handler.handler"

# The configuration contract (DESIGN.md): a template setting any other IDP_* name has a typo.
CONTRACT_VARIABLES = frozenset(
    {
        "IDP_PROVIDER",
        "IDP_AUTH0_DOMAIN",
        "IDP_ISSUER",
        "IDP_JWKS_URL",
        "IDP_AUDIENCE",
        "IDP_ALGORITHMS",
        "IDP_INTROSPECTION_URL",
        "IDP_CLIENT_ID",
        "IDP_CLIENT_SECRET",
        "IDP_CLIENT_AUTH",
        "IDP_PROVIDERS",
        "IDP_TOKEN_SOURCES",
        "IDP_RESPONSE",
        "IDP_REQUIRED_SCOPES",
        "IDP_ROUTES",
        "IDP_CONTEXT_CLAIMS",
        "IDP_CACHE_URL",
        "IDP_CACHE_MAX_ENTRIES",
        "IDP_TOKEN_CACHE_SECONDS",
        "IDP_INTROSPECTION_CACHE_SECONDS",
        "IDP_NEGATIVE_CACHE_SECONDS",
        "IDP_HTTP_TIMEOUT_SECONDS",
        "IDP_LOG_LEVEL",
    }
)
FUNCTION_TYPES = {"AWS::Serverless::Function", "AWS::Lambda::Function"}
API_TYPES = {"AWS::Serverless::Api", "AWS::Serverless::HttpApi", "AWS::ApiGateway::RestApi", "AWS::ApiGatewayV2::Api"}
REST_API_TYPES = {"AWS::Serverless::Api", "AWS::ApiGateway::RestApi"}
# API Gateway's default result TTL; assumed whenever a template leaves it out (the cautious choice).
DEFAULT_TTL = 300


def _is_template(path: Path) -> bool:
    text = path.read_text(encoding="utf-8")
    return bool(re.search(r'^Resources\s*:|"Resources"\s*:', text, re.MULTILINE))


TEMPLATES = sorted(
    path
    for path in DEPLOY.rglob("*")
    if path.is_file()
    and path.suffix in {".yaml", ".yml", ".json"}
    and not {".terraform", ".build", "node_modules"} & set(path.parts)
    and _is_template(path)
)
TEMPLATE_IDS = [str(path.relative_to(DEPLOY)) for path in TEMPLATES]


def _load(path: Path) -> dict[str, Any]:
    template, matches = decode(str(path))
    assert not matches, f"{path}: {matches}"
    assert isinstance(template, dict)
    return template


# ---------------------------------------------------------------------------- intrinsic helpers


def _sub_text(value: Any) -> str:
    """The format string of an ``Fn::Sub`` (or a plain string), else ``""``."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        return sub if isinstance(sub, str) else sub[0]
    return ""


def _refs(value: Any) -> set[str]:
    """Logical ids (or parameters) a value refers to through ``Ref``, ``Fn::GetAtt`` or ``Fn::Sub``."""
    if isinstance(value, list):
        return set().union(*(_refs(item) for item in value))
    if not isinstance(value, dict):
        return set()
    if "Ref" in value:
        return {value["Ref"].removesuffix(".Alias")}  # SAM's alias of a function (AutoPublishAlias)
    if "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        return {target[0] if isinstance(target, list) else target.split(".")[0]}
    if "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        text, variables = (sub, {}) if isinstance(sub, str) else (sub[0], sub[1])
        named = {name.split(".")[0] for name in re.findall(r"\$\{(?!!)([^}]+)\}", text)}
        return (named - set(variables)) | _refs(list(variables.values()))
    return _refs(list(value.values()))


def _resolve(template: dict[str, Any], value: Any) -> Any:
    """A ``Ref`` to a parameter becomes the parameter's default; anything else is returned as is."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        parameter = template.get("Parameters", {}).get(value["Ref"])
        assert parameter is not None and "Default" in parameter, f"{value['Ref']} needs a default"
        return parameter["Default"]
    return value


def _resources(template: dict[str, Any], *types: str) -> dict[str, dict[str, Any]]:
    return {
        name: resource.get("Properties", {})
        for name, resource in template["Resources"].items()
        if resource["Type"] in types
    }


def _only(names: set[str], among: dict[str, Any], what: str) -> str:
    found = names & set(among)
    assert len(found) == 1, f"{what}: expected one reference, got {sorted(found)}"
    return found.pop()


# ---------------------------------------------------------------------------- a common model


@dataclass(frozen=True)
class Authorizer:
    """One Lambda authorizer, whether SAM declared it inside an API or CloudFormation as a resource."""

    name: str
    api: str
    function: str
    rest: bool
    payload: str  # "1.0" for REST, as configured for HTTP APIs
    simple: bool
    ttl: int
    identity: tuple[str, ...]
    validation: str | None
    implicit_permission: bool  # SAM creates the lambda:InvokeFunction permission itself


def _sam_rest_authorizers(template: dict[str, Any], api: str, auth: dict[str, Any]) -> list[Authorizer]:
    functions = _resources(template, *FUNCTION_TYPES)
    found = []
    for name, spec in auth.get("Authorizers", {}).items():
        if "FunctionArn" not in spec:
            continue  # a Cognito authorizer
        identity = spec.get("Identity", {})
        if spec.get("FunctionPayloadType", "TOKEN") == "TOKEN":
            sources = (f"method.request.header.{identity.get('Header', 'Authorization')}",)
        else:
            sources = (
                *(f"method.request.header.{item}" for item in identity.get("Headers", [])),
                *(f"method.request.querystring.{item}" for item in identity.get("QueryStrings", [])),
                *(f"stageVariables.{item}" for item in identity.get("StageVariables", [])),
                *(f"context.{item}" for item in identity.get("Context", [])),
            )
        found.append(
            Authorizer(
                name=name,
                api=api,
                function=_only(_refs(spec["FunctionArn"]), functions, f"{api}.{name}.FunctionArn"),
                rest=True,
                payload="1.0",
                simple=False,
                ttl=int(_resolve(template, identity.get("ReauthorizeEvery", DEFAULT_TTL))),
                identity=sources,
                validation=identity.get("ValidationExpression"),
                implicit_permission=not spec.get("FunctionInvokeRole")
                and not spec.get("DisableFunctionDefaultPermissions", False),
            )
        )
    return found


def _sam_http_authorizers(template: dict[str, Any], api: str, auth: dict[str, Any]) -> list[Authorizer]:
    functions = _resources(template, *FUNCTION_TYPES)
    found = []
    for name, spec in auth.get("Authorizers", {}).items():
        if "FunctionArn" not in spec:
            continue  # a JWT authorizer
        identity = spec.get("Identity", {})
        sources = (
            *(f"$request.header.{item}" for item in identity.get("Headers", [])),
            *(f"$request.querystring.{item}" for item in identity.get("QueryStrings", [])),
            *(f"$stageVariables.{item}" for item in identity.get("StageVariables", [])),
            *(f"$context.{item}" for item in identity.get("Context", [])),
        )
        found.append(
            Authorizer(
                name=name,
                api=api,
                function=_only(_refs(spec["FunctionArn"]), functions, f"{api}.{name}.FunctionArn"),
                rest=False,
                payload=str(spec["AuthorizerPayloadFormatVersion"]),
                simple=spec.get("EnableSimpleResponses") is True,
                ttl=int(_resolve(template, identity.get("ReauthorizeEvery", DEFAULT_TTL))),
                identity=sources,
                validation=None,
                implicit_permission=spec.get("EnableFunctionDefaultPermissions") is True,
            )
        )
    return found


def _authorizers(template: dict[str, Any]) -> list[Authorizer]:
    found: list[Authorizer] = []
    for api, props in _resources(template, "AWS::Serverless::Api").items():
        found += _sam_rest_authorizers(template, api, props.get("Auth", {}))
    for api, props in _resources(template, "AWS::Serverless::HttpApi").items():
        found += _sam_http_authorizers(template, api, props.get("Auth", {}))
    functions = _resources(template, *FUNCTION_TYPES)
    apis = _resources(template, *API_TYPES)
    for name, props in _resources(template, "AWS::ApiGateway::Authorizer").items():
        if props["Type"] == "COGNITO_USER_POOLS":
            continue
        found.append(
            Authorizer(
                name=name,
                api=_only(_refs(props["RestApiId"]), apis, f"{name}.RestApiId"),
                function=_only(_refs(props["AuthorizerUri"]), functions, f"{name}.AuthorizerUri"),
                rest=True,
                payload="1.0",
                simple=False,
                ttl=int(_resolve(template, props.get("AuthorizerResultTtlInSeconds", DEFAULT_TTL))),
                identity=tuple(part.strip() for part in props.get("IdentitySource", "").split(",") if part.strip()),
                validation=props.get("IdentityValidationExpression"),
                implicit_permission=False,
            )
        )
    for name, props in _resources(template, "AWS::ApiGatewayV2::Authorizer").items():
        if props["AuthorizerType"] != "REQUEST":
            continue  # a JWT authorizer
        found.append(
            Authorizer(
                name=name,
                api=_only(_refs(props["ApiId"]), apis, f"{name}.ApiId"),
                function=_only(_refs(props["AuthorizerUri"]), functions, f"{name}.AuthorizerUri"),
                rest=False,
                payload=str(props["AuthorizerPayloadFormatVersion"]),
                simple=props.get("EnableSimpleResponses") is True,
                ttl=int(_resolve(template, props.get("AuthorizerResultTtlInSeconds", DEFAULT_TTL))),
                identity=tuple(props.get("IdentitySource", [])),
                validation=None,
                implicit_permission=False,
            )
        )
    return found


def _environment(template: dict[str, Any], function: str) -> dict[str, Any]:
    props = _resources(template, *FUNCTION_TYPES)[function]
    return dict(props.get("Environment", {}).get("Variables", {}))


def _response_mode(template: dict[str, Any], function: str) -> str:
    mode = _environment(template, function).get("IDP_RESPONSE", "auto")
    assert isinstance(mode, str), f"{function}: IDP_RESPONSE must be a literal so it can be checked"
    return mode


def _resource_path(template: dict[str, Any], resource_id: Any) -> str:
    if isinstance(resource_id, dict) and "Fn::GetAtt" in resource_id:
        return ""  # RootResourceId
    props = _resources(template, "AWS::ApiGateway::Resource")[
        _only(_refs(resource_id), _resources(template, "AWS::ApiGateway::Resource"), "ResourceId")
    ]
    return f"{_resource_path(template, props['ParentId'])}/{props['PathPart']}"


def _routes(template: dict[str, Any]) -> dict[tuple[str, str], str | None]:
    """``(api, "METHOD /path") -> authorizer name`` (``None`` when the route is unprotected)."""
    routes: dict[tuple[str, str], str | None] = {}
    sam_apis = _resources(template, "AWS::Serverless::Api", "AWS::Serverless::HttpApi")
    for props in _resources(template, "AWS::Serverless::Function").values():
        for event in props.get("Events", {}).values():
            if event["Type"] not in {"Api", "HttpApi"}:
                continue
            spec = event["Properties"]
            api = _only(_refs(spec.get("RestApiId", spec.get("ApiId"))), sam_apis, "event API")
            default = sam_apis[api].get("Auth", {}).get("DefaultAuthorizer")
            chosen = spec.get("Auth", {}).get("Authorizer", default)
            routes[(api, f"{spec['Method'].upper()} {spec['Path']}")] = None if chosen in {None, "NONE"} else chosen
    for props in _resources(template, "AWS::ApiGateway::Method").values():
        api = next(iter(_refs(props["RestApiId"])))
        route = f"{props['HttpMethod']} {_resource_path(template, props['ResourceId']) or '/'}"
        custom = props.get("AuthorizationType") == "CUSTOM"
        routes[(api, route)] = _only(_refs(props["AuthorizerId"]), template["Resources"], route) if custom else None
    for props in _resources(template, "AWS::ApiGatewayV2::Route").values():
        api = next(iter(_refs(props["ApiId"])))
        custom = props.get("AuthorizationType") == "CUSTOM"
        routes[(api, props["RouteKey"])] = (
            _only(_refs(props["AuthorizerId"]), template["Resources"], props["RouteKey"]) if custom else None
        )
    return routes


def _gateway_responses(template: dict[str, Any], api: str) -> dict[str, tuple[str, dict[str, str]]]:
    """``ResponseType -> (status code, {header: value})`` for one REST API."""
    responses: dict[str, tuple[str, dict[str, str]]] = {}
    resource = template["Resources"][api]
    if resource["Type"] == "AWS::Serverless::Api":
        for kind, spec in resource["Properties"].get("GatewayResponses", {}).items():
            headers = spec.get("ResponseParameters", {}).get("Headers", {})
            responses[kind] = (str(spec.get("StatusCode", "")), dict(headers))
    for props in _resources(template, "AWS::ApiGateway::GatewayResponse").values():
        if api in _refs(props["RestApiId"]):
            prefix = "gatewayresponse.header."
            headers = {
                key[len(prefix) :]: value
                for key, value in props.get("ResponseParameters", {}).items()
                if key.startswith(prefix)
            }
            responses[props["ResponseType"]] = (str(props.get("StatusCode", "")), headers)
    return responses


# ---------------------------------------------------------------------------- cfn-lint


def test_cfn_lint_is_installed() -> None:
    assert CFN_LINT.is_file(), f"cfn-lint not found at {CFN_LINT}: install the dev extra (pip install -e '.[dev]')"


def test_templates_are_discovered() -> None:
    assert SAM_TEMPLATE in TEMPLATES
    assert {path.parent.name for path in TEMPLATES} >= {"sam", "cloudformation"}


@pytest.mark.parametrize("path", TEMPLATES, ids=TEMPLATE_IDS)
def test_cfn_lint_is_clean(path: Path) -> None:
    assert CFN_LINT.is_file(), f"cfn-lint not found at {CFN_LINT}"
    result = subprocess.run(
        [str(CFN_LINT), "--", str(path)], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, f"cfn-lint {path.relative_to(ROOT)}:\n{result.stdout}{result.stderr}"


# ---------------------------------------------------------------------------- structure, every template


@pytest.fixture(params=TEMPLATES, ids=TEMPLATE_IDS)
def template(request: pytest.FixtureRequest) -> dict[str, Any]:
    return _load(request.param)


def test_every_api_has_a_lambda_authorizer(template: dict[str, Any]) -> None:
    apis = _resources(template, *API_TYPES)
    assert apis
    assert {authorizer.api for authorizer in _authorizers(template)} == set(apis)


def test_authorizer_functions_use_the_product_handler(template: dict[str, Any]) -> None:
    functions = _resources(template, *FUNCTION_TYPES)
    for name in {authorizer.function for authorizer in _authorizers(template)}:
        props = functions[name]
        assert props["Handler"] == HANDLER, name
        runtime = _resolve(template, props["Runtime"])
        assert runtime in {"python3.11", "python3.12", "python3.13"}, name
        assert 256 <= int(_resolve(template, props["MemorySize"])) <= 512, name
        timeout = int(_resolve(template, props["Timeout"]))
        idp_timeout = float(_resolve(template, _environment(template, name).get("IDP_HTTP_TIMEOUT_SECONDS", 5)))
        assert 2 * idp_timeout < timeout <= 29, f"{name}: Timeout must exceed 2 x IDP_HTTP_TIMEOUT_SECONDS"
        code_uri = props.get("CodeUri")
        if isinstance(code_uri, str):  # SAM: a local path, relative to the template
            assert (SAM_TEMPLATE.parent / code_uri).resolve() == LAMBDA_ZIP, name


def test_environment_names_follow_the_contract(template: dict[str, Any]) -> None:
    for name in {authorizer.function for authorizer in _authorizers(template)}:
        unknown = {key for key in _environment(template, name) if key.startswith("IDP_")} - CONTRACT_VARIABLES
        assert not unknown, f"{name}: not in the configuration contract: {sorted(unknown)}"


def test_authorizer_functions_differ_only_in_response_mode(template: dict[str, Any]) -> None:
    functions = sorted({authorizer.function for authorizer in _authorizers(template)})
    shared = [
        {key: value for key, value in _environment(template, name).items() if key != "IDP_RESPONSE"}
        for name in functions
    ]
    assert all(environment == shared[0] for environment in shared), f"environments drifted: {functions}"


def test_every_authorizer_has_an_invoke_permission_scoped_to_its_api(template: dict[str, Any]) -> None:
    permissions = [
        props
        for props in _resources(template, "AWS::Lambda::Permission").values()
        if props["Principal"] == "apigateway.amazonaws.com" and props["Action"] == "lambda:InvokeFunction"
    ]
    for authorizer in _authorizers(template):
        if authorizer.implicit_permission:
            continue  # SAM adds <Api><Authorizer>AuthorizerPermission for it
        matching = [
            props
            for props in permissions
            if authorizer.function in _refs(props["FunctionName"])
            and authorizer.api in _refs(props["SourceArn"])
            and "/authorizers/" in _sub_text(props["SourceArn"])
        ]
        assert matching, f"{authorizer.api}.{authorizer.name}: no lambda:InvokeFunction permission -> 500s"


def test_response_mode_matches_each_authorizer(template: dict[str, Any]) -> None:
    for authorizer in _authorizers(template):
        mode = _response_mode(template, authorizer.function)
        if authorizer.rest or authorizer.payload == "1.0":
            expected = {"auto", "iam"}
        elif authorizer.simple:
            expected = {"auto", "simple"}
        else:
            expected = {"iam"}  # payload 2.0 without simple responses: auto would answer simple
        assert mode in expected, f"{authorizer.name} ({authorizer.function}): IDP_RESPONSE={mode}"


def test_http_api_caching_is_keyed_by_route(template: dict[str, Any]) -> None:
    for authorizer in _authorizers(template):
        if authorizer.rest:
            assert "method.request.header.Authorization" in authorizer.identity, authorizer.name
            continue
        assert authorizer.payload == "2.0", authorizer.name
        assert "$request.header.Authorization" in authorizer.identity, authorizer.name
        if authorizer.ttl > 0:
            assert "$context.routeKey" in authorizer.identity, (
                f"{authorizer.name}: cached without $context.routeKey, a decision would be replayed on other routes"
            )


def test_no_bearer_validation_expression(template: dict[str, Any]) -> None:
    for authorizer in _authorizers(template):
        assert not authorizer.validation, f"{authorizer.name}: the product accepts bare and lower-case tokens"


def test_rest_apis_send_www_authenticate(template: dict[str, Any]) -> None:
    for api in _resources(template, *REST_API_TYPES):
        responses = _gateway_responses(template, api)
        # The 401 also answers requests without any credentials (API Gateway refuses a missing identity
        # source itself): RFC 6750 section 3.1 wants no error attribute then, and a static value cannot tell.
        for kind, status, expected in [("UNAUTHORIZED", "401", "'Bearer'"), ("ACCESS_DENIED", "403", "")]:
            assert kind in responses, f"{api}: no {kind} Gateway Response"
            code, headers = responses[kind]
            assert code == status, f"{api}.{kind}"
            for value in _header_values(headers.get("WWW-Authenticate", "")):
                # A static header value is single-quoted; unquoted it is read as a mapping expression.
                assert value.startswith("'Bearer") and value.endswith("'"), f"{api}.{kind}: {value!r}"
                if expected:
                    assert value.replace(' resource_metadata="${ResourceMetadataUrl}"', "") == expected, value
                else:
                    assert 'error="insufficient_scope"' in value, f"{api}.{kind}: {value!r}"


def _header_values(value: Any) -> list[str]:
    """Every value a header can take: both branches of an ``!If``, the text of a ``!Sub``."""
    if isinstance(value, dict) and "Fn::If" in value:
        return [v for branch in value["Fn::If"][1:] for v in _header_values(branch)]
    if isinstance(value, dict) and "Fn::Sub" in value:
        return _header_values(value["Fn::Sub"])
    return [str(value)]


def test_rest_apis_point_mcp_clients_to_the_resource_metadata(template: dict[str, Any]) -> None:
    """With ``ResourceMetadataUrl`` set, the 401 and 403 carry RFC 9728's ``resource_metadata`` parameter."""
    for api in _resources(template, *REST_API_TYPES):
        assert "ResourceMetadataUrl" in template["Parameters"], api
        for kind, (_, headers) in _gateway_responses(template, api).items():
            value = headers["WWW-Authenticate"]
            assert value["Fn::If"][0] == "HasResourceMetadata", f"{api}.{kind}"
            with_url = _header_values(value["Fn::If"][1])[0]
            assert with_url.startswith('\'Bearer resource_metadata="${ResourceMetadataUrl}"'), with_url


def test_sample_routes_are_protected_and_ruled(template: dict[str, Any]) -> None:
    authorizers = {(authorizer.api, authorizer.name) for authorizer in _authorizers(template)}
    routes = _routes(template)
    assert routes
    for (api, route), chosen in routes.items():
        assert (api, chosen) in authorizers, f"{api} {route}: not behind a Lambda authorizer"
    function = sorted({authorizer.function for authorizer in _authorizers(template)})[0]
    rules = json.loads(_resolve(template, _environment(template, function)["IDP_ROUTES"]))
    assert {route for _, route in routes} == set(rules), "IDP_ROUTES and the template's routes differ"
    assert len({json.dumps(rule, sort_keys=True) for rule in rules.values()}) > 1, "routes need distinct rules"


# ---------------------------------------------------------------------------- the SAM template


@pytest.fixture(scope="module")
def sam() -> dict[str, Any]:
    return _load(SAM_TEMPLATE)


def test_sam_snapstart_switch_serves_published_versions(sam: dict[str, Any]) -> None:
    """SnapStart is off by default, and the authorizers call the published alias (SnapStart skips $LATEST)."""
    assert sam["Parameters"]["SnapStart"]["Default"] == "false"
    functions = {
        name: props
        for name, props in _resources(sam, "AWS::Serverless::Function").items()
        if props.get("Handler") == HANDLER
    }
    assert functions
    for props in functions.values():
        assert props["AutoPublishAlias"] == "live"
        assert props["SnapStart"] == {"ApplyOn": {"Fn::If": ["UseSnapStart", "PublishedVersions", "None"]}}
    text = json.dumps(sam["Resources"])
    for name in functions:
        assert f'"Fn::GetAtt": ["{name}", "Arn"]' not in text, f"{name} is called unpublished ($LATEST)"
        assert f'"Ref": "{name}.Alias"' in text


def test_sam_has_every_authorizer_kind(sam: dict[str, Any]) -> None:
    kinds = {
        ("rest", "TOKEN" if authorizer.identity == ("method.request.header.Authorization",) else "REQUEST")
        if authorizer.rest
        else ("http", "simple" if authorizer.simple else "iam")
        for authorizer in _authorizers(sam)
    }
    assert kinds == {("rest", "TOKEN"), ("rest", "REQUEST"), ("http", "simple"), ("http", "iam")}


def test_sam_iam_mode_http_authorizer_uses_an_iam_function(sam: dict[str, Any]) -> None:
    iam = [authorizer for authorizer in _authorizers(sam) if not authorizer.rest and not authorizer.simple]
    assert iam
    for authorizer in iam:
        assert _environment(sam, authorizer.function)["IDP_RESPONSE"] == "iam"


def test_sam_rest_request_authorizer_keys_cache_by_route(sam: dict[str, Any]) -> None:
    request = [a for a in _authorizers(sam) if a.rest and len(a.identity) > 1]
    assert request
    for authorizer in request:
        assert {"context.httpMethod", "context.resourcePath"} <= set(authorizer.identity)


def test_sam_sets_the_documented_variables(sam: dict[str, Any]) -> None:
    wanted = {
        "IDP_PROVIDER",
        "IDP_ISSUER",
        "IDP_AUDIENCE",
        "IDP_ALGORITHMS",
        "IDP_ROUTES",
        "IDP_REQUIRED_SCOPES",
        "IDP_RESPONSE",
        "IDP_TOKEN_SOURCES",
        "IDP_LOG_LEVEL",
    }
    for name in {authorizer.function for authorizer in _authorizers(sam)}:
        assert wanted <= set(_environment(sam, name)), name


def test_sam_parameters_bound_runtime_and_architecture(sam: dict[str, Any]) -> None:
    parameters = sam["Parameters"]
    assert set(parameters["PythonRuntime"]["AllowedValues"]) == {"python3.11", "python3.12", "python3.13"}
    assert parameters["PythonRuntime"]["Default"] == "python3.12"
    assert set(parameters["Architecture"]["AllowedValues"]) == {"arm64", "x86_64"}


# ---------------------------------------------------------------------------- Terraform (text only)


def _terraform() -> str:
    files = sorted(TERRAFORM.glob("*.tf"))
    assert {path.name for path in files} >= {"main.tf", "variables.tf", "outputs.tf"}
    return "\n".join(path.read_text(encoding="utf-8") for path in files)


def _uncommented(text: str) -> str:
    """HCL without its comment lines."""
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith(("#", "//")))


def _code(text: str) -> str:
    """HCL without comment lines and with runs of blanks collapsed, for alignment-free matching."""
    return re.sub(r"[ \t]+", " ", _uncommented(text))


def test_terraform_declares_the_http_api_set_up() -> None:
    code = _code(_terraform())
    for needle in [
        'handler = "idp_authorizer.handler.handler"',
        'authorizer_payload_format_version = "2.0"',
        'authorizer_type = "REQUEST"',
        "enable_simple_responses = var.enable_simple_responses",
        'IDP_RESPONSE = var.enable_simple_responses ? "auto" : "iam"',
        '"$request.header.Authorization", "$context.routeKey"',
        "authorizer_result_ttl_in_seconds = var.authorizer_cache_ttl",
        'resource "aws_lambda_permission" "authorizer"',
        'principal = "apigateway.amazonaws.com"',
        "/authorizers/${aws_apigatewayv2_authorizer.idp.id}",
        'authorization_type = "CUSTOM"',
        "authorizer_id = aws_apigatewayv2_authorizer.idp.id",
    ]:
        assert needle in code, needle


def test_terraform_snapstart_switch_serves_the_alias() -> None:
    main = (TERRAFORM / "main.tf").read_text()
    assert 'variable "snap_start"' in (TERRAFORM / "variables.tf").read_text()
    assert 'apply_on = var.snap_start ? "PublishedVersions" : "None"' in main and "publish = true" in main
    assert "authorizer_uri  = aws_lambda_alias.live.invoke_arn" in main
    assert "qualifier     = aws_lambda_alias.live.name" in main


def test_terraform_references_resolve() -> None:
    code = _code(_terraform())
    declared_variables = set(re.findall(r'^variable "(\w+)"', code, re.MULTILINE))
    used_variables = set(re.findall(r"\bvar\.(\w+)", code))
    assert used_variables == declared_variables
    declared = set(re.findall(r'^resource "(\w+)" "(\w+)"', code, re.MULTILINE))
    used = set(re.findall(r"(?<![.\w])(aws_\w+)\.(\w+)\.", code))
    assert used <= declared, used - declared
    data_declared = set(re.findall(r'^data "(\w+)" "(\w+)"', code, re.MULTILINE))
    assert set(re.findall(r"\bdata\.(\w+)\.(\w+)", code)) <= data_declared
    locals_block = _uncommented(_terraform()).split("\nlocals {", 1)[1].split("\n}", 1)[0]
    locals_declared = set(re.findall(r"^ {2}(\w+) +=", locals_block, re.MULTILINE))
    assert locals_declared
    assert set(re.findall(r"\blocal\.(\w+)", code)) <= locals_declared


def test_terraform_brackets_and_quotes_balance() -> None:
    for path in sorted(TERRAFORM.glob("*.tf")):
        code = _code(path.read_text(encoding="utf-8"))
        for opening, closing in ["{}", "[]", "()"]:
            assert code.count(opening) == code.count(closing), f"{path.name}: {opening}{closing}"
        for number, line in enumerate(code.splitlines(), 1):
            assert line.replace('\\"', "").count('"') % 2 == 0, f"{path.name}:{number}: {line}"


def test_terraform_environment_names_follow_the_contract() -> None:
    unknown = set(re.findall(r"\bIDP_[A-Z0-9_]+\b", _terraform())) - CONTRACT_VARIABLES
    assert not unknown, sorted(unknown)


# ---------------------------------------------------------------------------- what each provider needs
#
# Derived from the product's own settings code (ProviderConfig's completeness check), not a hand list:
# a template that offers a provider must let the operator give it what it needs, and its Rules must
# refuse exactly the stacks the product would refuse at cold start (which would answer 500 forever).

SAMPLE_VALUES = {
    "IDP_AUTH0_DOMAIN": "tenant.example.com",
    "IDP_ISSUER": "https://issuer.example.com/",
    "IDP_JWKS_URL": "https://issuer.example.com/jwks.json",
    "IDP_AUDIENCE": "api://pets",
    "IDP_INTROSPECTION_URL": "https://issuer.example.com/introspect",
    "IDP_CLIENT_ID": "client",
    "IDP_CLIENT_SECRET": "secret",
}


def _product_refusal(kind: str, values: dict[str, str]) -> frozenset[str] | None:
    """The variables the product says ``kind`` still needs (``None``: it accepts), from an environment
    where an empty value is left unset, as the templates do."""
    fields = {name.removeprefix("IDP_").lower(): value for name, value in values.items() if value}
    try:
        ProviderConfig.model_validate({"provider": kind, **fields})
    except ValidationError as exc:
        causes = [error.get("ctx", {}).get("error") for error in exc.errors()]
        return frozenset(v for cause in causes if isinstance(cause, MissingSettingsError) for v in cause.variables)
    return None


def _parameter_of(template: dict[str, Any], function: str) -> dict[str, str]:
    """``IDP_* variable -> the parameter that sets it`` in a function's environment (``!Ref`` or ``!If``)."""
    parameters = template.get("Parameters", {})
    found = {}
    for name, value in _environment(template, function).items():
        named = _refs(value) & set(parameters)
        if len(named) == 1:
            found[name] = named.pop()
    return found


def _offered_providers(template: dict[str, Any]) -> list[str]:
    return list(template["Parameters"]["IdpProvider"]["AllowedValues"])


def _evaluate(value: Any, parameters: dict[str, str]) -> Any:
    """A rule condition or assertion, evaluated as CloudFormation does, for the functions the templates use."""
    if isinstance(value, dict):
        [(function, argument)] = value.items()
        if function == "Ref":
            return parameters[argument]
        arguments = [_evaluate(item, parameters) for item in argument] if isinstance(argument, list) else argument
        operations = {
            "Fn::Equals": lambda a: a[0] == a[1],
            "Fn::Not": lambda a: not a[0],
            "Fn::And": all,
            "Fn::Or": any,
            "Fn::Contains": lambda a: a[1] in a[0],
        }
        assert function in operations, f"the test's rule evaluator does not know {function}"
        return operations[function](arguments)
    return value


def _rules_accept(template: dict[str, Any], parameters: dict[str, str]) -> bool:
    for rule in template.get("Rules", {}).values():
        if "RuleCondition" in rule and not _evaluate(rule["RuleCondition"], parameters):
            continue
        if not all(_evaluate(assertion["Assert"], parameters) for assertion in rule["Assertions"]):
            return False
    return True


def test_every_offered_provider_has_the_parameters_its_settings_need(template: dict[str, Any]) -> None:
    for function in {authorizer.function for authorizer in _authorizers(template)}:
        parameter_of = _parameter_of(template, function)
        for kind in _offered_providers(template):
            needed = _product_refusal(kind, {})
            assert needed, f"{kind}: the product should need something"
            missing = needed - set(parameter_of)
            assert not missing, f"{function}: IdpProvider={kind} offered, but no parameter sets {sorted(missing)}"
        secret = parameter_of.get("IDP_CLIENT_SECRET")
        assert secret is None or template["Parameters"][secret].get("NoEcho") is True, "the client secret is NoEcho"


def test_rules_refuse_exactly_what_the_product_refuses(template: dict[str, Any]) -> None:
    """Every combination of empty and filled provider parameters, for every offered provider."""
    function = sorted({authorizer.function for authorizer in _authorizers(template)})[0]
    parameter_of = {name: p for name, p in _parameter_of(template, function).items() if name in SAMPLE_VALUES}
    assert set(parameter_of) == set(SAMPLE_VALUES), sorted(set(SAMPLE_VALUES) - set(parameter_of))
    defaults = {name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()}
    names = sorted(parameter_of)
    for kind in _offered_providers(template):
        for filled in itertools.product((False, True), repeat=len(names)):
            values = {name: SAMPLE_VALUES[name] if keep else "" for name, keep in zip(names, filled, strict=True)}
            parameters = {**defaults, "IdpProvider": kind, **{parameter_of[n]: v for n, v in values.items()}}
            product = _product_refusal(kind, values) is None
            assert _rules_accept(template, parameters) is product, (
                f"{kind} with {sorted(n for n in values if values[n])}"
            )


def test_rules_reject_an_empty_issuer_or_audience_for_jwt_providers(template: dict[str, Any]) -> None:
    defaults = {name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()}
    settings = {
        "auth0": {"IdpAuth0Domain": "t.example.com"},
        "oidc": {"IdpIssuer": "https://i.example/"},
        "jwks": {"IdpIssuer": "https://i.example/", "IdpJwksUrl": "https://i.example/j"},
    }
    for kind, own in settings.items():
        good = {**defaults, **own, "IdpAudience": "api", "IdpProvider": kind}
        assert _rules_accept(template, good), kind
        assert not _rules_accept(template, {**good, "IdpAudience": ""}), kind
        if kind != "auth0":
            assert not _rules_accept(template, {**good, "IdpIssuer": ""}), kind
    assert not _rules_accept(template, defaults), "the defaults alone (oidc, no issuer) must not deploy"


# ---------------------------------------------------------------------------- timeouts, code, runtime


def _bound(template: dict[str, Any], value: Any) -> int:
    """The largest value a property can take: the literal, or its parameter's MaxValue (and default)."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        spec = template["Parameters"][value["Ref"]]
        assert "MaxValue" in spec, f"{value['Ref']} needs a MaxValue"
        return max(int(spec["MaxValue"]), int(spec["Default"]))
    return int(value)


def test_authorizer_timeouts_fit_api_gateways_wait(template: dict[str, Any]) -> None:
    functions = _resources(template, *FUNCTION_TYPES)
    for authorizer in _authorizers(template):
        limit = 29 if authorizer.rest else 10  # HTTP API: "Timeout for Lambda authorizer response" 10000 ms
        timeout = _bound(template, functions[authorizer.function]["Timeout"])
        assert timeout <= limit, f"{authorizer.name} ({authorizer.function}): Timeout up to {timeout} s > {limit} s"


def test_a_new_build_reaches_the_function(template: dict[str, Any]) -> None:
    """CloudFormation deploys new code only when the S3 key or object version changes."""
    parameters = set(template.get("Parameters", {}))
    for name in {authorizer.function for authorizer in _authorizers(template)}:
        props = _resources(template, *FUNCTION_TYPES)[name]
        if "CodeUri" in props:
            # `sam deploy` uploads the local zip under a key named for its content hash.
            assert isinstance(props["CodeUri"], str), name
            continue
        code = props["Code"]
        assert _refs(code["S3Key"]) <= parameters and _refs(code["S3Key"]), f"{name}: S3Key must be a parameter"
        assert _refs(code.get("S3ObjectVersion")) & parameters, f"{name}: no object version parameter"


def test_default_runtime_is_312_or_later_and_311_stays_allowed(template: dict[str, Any]) -> None:
    runtime = template["Parameters"]["PythonRuntime"]
    assert runtime["Default"] in {"python3.12", "python3.13"}  # SnapStart for Python needs 3.12+
    assert "python3.11" in runtime["AllowedValues"]


def test_access_logs_carry_the_authorizer_error(template: dict[str, Any]) -> None:
    text = json.dumps(template)
    for needle in ("$context.authorizer.error", "$context.authorizer.integrationLatency", "$context.error.message"):
        assert needle in text, needle
    for name, props in _resources(template, *FUNCTION_TYPES).items():
        if name in {a.function for a in _authorizers(template)}:
            assert "ReservedConcurrentExecutions" in props, f"{name}: no reserved concurrency option"


# ---------------------------------------------------------------------------- SAM's own translation


def _sam_translate() -> dict[str, Any]:
    """The SAM template as CloudFormation receives it, translated by aws-sam-translator.

    aws-sam-translator pins an older pydantic than the product's, so it runs in the interpreter this
    virtual environment was made from, not in it.
    """
    script = (
        "import json, sys\n"
        "from samtranslator.translator.transform import transform\n"
        "from samtranslator.yaml_helper import yaml_parse\n"
        "class Policies:\n"
        "    def load(self): return {}\n"
        "template = yaml_parse(open(sys.argv[1]).read())\n"
        "for resource in template['Resources'].values():\n"
        "    props = resource.get('Properties', {})\n"
        "    if isinstance(props.get('CodeUri'), str): props['CodeUri'] = {'Bucket': 'b', 'Key': 'k'}\n"
        "print(json.dumps(transform(template, {'AWS::Region': 'us-east-1'}, Policies())))\n"
    )
    base = Path(sys.base_prefix) / "bin" / "python3"
    probe = subprocess.run([str(base), "-c", "import samtranslator"], capture_output=True, check=False)
    if probe.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"aws-sam-translator is not importable by {base}")
        pytest.skip(f"aws-sam-translator is not installed for {base}")
    done = subprocess.run(
        [str(base), "-c", script, str(SAM_TEMPLATE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"},
    )
    assert done.returncode == 0, done.stderr
    translated: dict[str, Any] = json.loads(done.stdout)
    return translated


def test_sam_http_api_ttl_parameter_survives_the_translation() -> None:
    translated = _sam_translate()
    schemes = translated["Resources"]["HttpApi"]["Properties"]["Body"]["components"]["securitySchemes"]
    ttls = {
        name: spec["x-amazon-apigateway-authorizer"]["authorizerResultTtlInSeconds"] for name, spec in schemes.items()
    }
    assert ttls == {"SimpleAuthorizer": {"Ref": "HttpAuthorizerTtl"}, "IamAuthorizer": {"Ref": "HttpAuthorizerTtl"}}
    assert translated["Rules"] == _load(SAM_TEMPLATE)["Rules"], "SAM must hand the Rules to CloudFormation"


# ---------------------------------------------------------------------------- Terraform, parsed (python-hcl2)


def _unquote(value: Any) -> Any:
    return value[1:-1] if isinstance(value, str) and len(value) > 1 and value[0] == value[-1] == '"' else value


@pytest.fixture(scope="module")
def terraform() -> dict[str, Any]:
    parsed: dict[str, Any] = {"resource": {}, "variable": {}, "locals": {}}
    for path in sorted(TERRAFORM.glob("*.tf")):
        with path.open(encoding="utf-8") as handle:
            document = hcl2.load(handle)
        for block in document.get("resource", []):
            for kind, named in block.items():
                for name, body in named.items():
                    parsed["resource"][(_unquote(kind), _unquote(name))] = body
        for block in document.get("variable", []):
            for name, body in block.items():
                parsed["variable"][_unquote(name)] = body
        for block in document.get("locals", []):
            parsed["locals"].update(block)
    return parsed


ProviderKindValues = typing.get_args(ProviderKind)


def _validations(variable: dict[str, Any]) -> list[str]:
    return [block["condition"] for block in variable.get("validation", [])]


def test_terraform_variables_are_validated(terraform: dict[str, Any]) -> None:
    variables = terraform["variable"]
    kinds = re.findall(r'"(\w+)"', _validations(variables["idp_provider"])[0])
    assert kinds and set(kinds) <= set(ProviderKindValues), f"idp_provider offers {kinds}"
    for kind in kinds:
        for needed in _product_refusal(kind, {}) or ():
            name = needed.lower()
            conditions = _validations(variables[name])
            assert any("var.idp_provider" in c and f'"{kind}"' in c for c in conditions), f"{kind} needs {name}"
    for name in ("python_runtime", "architecture", "timeout_seconds", "idp_http_timeout_seconds", "idp_log_level"):
        assert _validations(variables[name]), f"{name} has no validation"
    assert "<= 10" in _validations(variables["timeout_seconds"])[0], "an HTTP API waits at most 10 s"
    runtime = variables["python_runtime"]
    assert _unquote(runtime["default"]) in {"python3.12", "python3.13"} and "python3.11" in _validations(runtime)[0]


def test_terraform_names_are_unique_per_workspace(terraform: dict[str, Any]) -> None:
    assert "terraform.workspace" in terraform["locals"]["name"]
    named = 0
    for (kind, name), body in terraform["resource"].items():
        for attribute in ("name", "function_name", "name_prefix"):
            value = body.get(attribute)
            if isinstance(value, str) and not value.startswith("${aws_") and kind != "aws_apigatewayv2_stage":
                if kind in ("aws_apigatewayv2_authorizer", "aws_lambda_alias"):
                    continue  # unique within its API / its function, which are per workspace
                named += 1
                assert "local.name" in value, f"{kind}.{name}.{attribute} = {value}: not per workspace"
    assert named >= 5


def test_terraform_manages_every_log_group(terraform: dict[str, Any]) -> None:
    resources = terraform["resource"]
    groups = {
        name: _unquote(body["name"]) for (kind, name), body in resources.items() if kind == "aws_cloudwatch_log_group"
    }
    functions = {name: body for (kind, name), body in resources.items() if kind == "aws_lambda_function"}
    assert functions
    for name, body in functions.items():
        expected = "/aws/lambda/" + _unquote(body["function_name"])
        owners = [group for group, path in groups.items() if path == expected]
        assert owners, f"aws_lambda_function.{name}: Lambda would create {expected} itself, never expiring"
        assert f"${{aws_cloudwatch_log_group.{owners[0]}}}" in body.get("depends_on", []), name
    stage = resources[("aws_apigatewayv2_stage", "default")]
    assert "aws_cloudwatch_log_group.access" in json.dumps(stage), "access logs go to a managed log group"
    assert "$context.authorizer.error" in json.dumps(stage)
    assert "reserved_concurrent_executions" in functions["authorizer"]
