"""The handler behind a real local API Gateway: serverless-offline 13 with the Serverless Framework v3.

One ``serverless offline`` process per module (``tests/serverless_offline/``: ``package.json`` with
exact pins, ``package-lock.json``, ``serverless.yml``) on 127.0.0.1 and free ports, the dev IdP as the
issuer, and real HTTP requests. Each route has one authorizer type and needs scope ``pets:read``
(``IDP_ROUTES``); the backend function answers 200 with the authorizer context it received.

How serverless-offline 13.9 runs a Python authorizer (``src/lambda/handler-runner/python-runner``):
one long-lived ``python3`` per function instance, a new one only when all are busy (the first
``python3`` on ``PATH``; ``$VIRTUAL_ENV/bin`` is put first when set; ``useInProcess`` is for Node only,
``useDocker`` is off), which runs its ``invoke.py`` and reads one event per stdin line. ``invoke.py`` has no error channel: a raised exception ends the interpreter,
the request waits for the function timeout and the function stays broken. serverless-offline sets
``IS_OFFLINE``, and the handler then returns the string ``"Unauthorized"`` (serverless-offline's own
convention for a 401) instead of raising ``Exception("Unauthorized")`` as Lambda requires. The
functions are ``serverless_offline/offline_authorizer.py``: the real handler, plus a record of each
event's route fields. The tests also check that no request crashed the runner.

What serverless-offline sends (``src/events/http/createAuthScheme.js``; pinned by
``test_events_serverless_offline_sends``). Account ``random-account-id``, API id ``random-api-id``,
region and stage from ``provider``, for every type; ``{template}`` is the route as configured, with
``{proxy+}`` rewritten to ``{proxy*}`` (hapi's syntax), where API Gateway puts the concrete path:

* REST TOKEN (``http`` event, ``authorizer.type: token``): ``type: "TOKEN"`` **and** ``version: "1.0"``,
  ``methodArn`` ``arn:aws:execute-api:us-east-1:random-account-id:random-api-id/dev/GET/{template}``,
  ``authorizationToken``, and every field of the REQUEST event below as well. API Gateway's TOKEN
  event has ``type``, ``authorizationToken`` and ``methodArn`` only; the handler accepts a TOKEN event
  with ``version: "1.0"`` for this emulator (and reads it as a TOKEN event: the token from
  ``authorizationToken``, an IAM policy back).
* REST REQUEST (``http``, ``type: request``): ``type: "REQUEST"``, ``version: "1.0"`` (API Gateway sends
  none, so the handler sees the HTTP API 1.0 shape), ``methodArn`` as above, ``httpMethod`` the
  request's method (also for ``method: any``), ``resource`` ``/{template}`` (no stage), ``path`` the
  concrete path **with** the stage (``/dev/rest-request/pets/7``; API Gateway: without it),
  ``requestContext.resourcePath`` ``/{template}``, ``requestContext.stage`` ``dev``.
* HTTP API payload 1.0 (``httpApi``, ``payloadVersion: "1.0"``): as REST REQUEST; ``path`` has no stage
  (``/v1/pets``); the ARN's stage is still ``dev`` (API Gateway: ``$default``).
* HTTP API payload 2.0, simple or IAM responses: ``type: "REQUEST"``, ``version: "2.0"``, ``routeArn``
  ``arn:aws:execute-api:us-east-1:random-account-id:random-api-id/dev/GET/{template}`` (stage ``dev``,
  API Gateway: ``$default``), ``routeKey`` ``GET /{template}`` (the request's method, never ``ANY``),
  ``rawPath`` the concrete path, ``requestContext.http.method`` the method, ``requestContext.http.path``
  ``/{template}`` (API Gateway: the concrete path), ``identitySource`` a one-element list. Header names
  keep the client's case (API Gateway lower-cases them for 2.0).

What it does with the answer: a missing identity source is a 401 before the authorizer runs (all
types); with simple responses ``isAuthorized: false`` is a 403; otherwise ``"Unauthorized"`` or any
error is a 401 (API Gateway: a 500 for errors other than ``Unauthorized``), a policy without
``principalId`` or one that does not allow the ARN a 403. Policies are matched by its own evaluator
(``authMatchPolicyResource.js``: region, account and API id must be equal or exactly ``*``; ``*`` and
``?`` are wildcards only after the API id, in a pattern not anchored at its start); result caching is
not emulated. The backend's event also gets the bearer token's claims, decoded without verification.

Tests: the matrix (five authorizer types x no token, valid, garbage, missing scope), parameter
routes, the events pinned, and ``deploy/serverless/serverless.yml`` packaged by the same Framework.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import npm
import pytest
from servers import free_port

from idp_authorizer.tools.devidp import DevIdp

pytestmark = pytest.mark.gateway

OFFLINE_DIR = Path(__file__).resolve().parents[1] / "serverless_offline"
STARTUP_SECONDS = 60.0
STOP_SECONDS = 10.0
SCOPE = "pets:read"
ROUTES = {
    "GET /rest-token/pets": [SCOPE],
    "GET /rest-request/pets": [SCOPE],
    "GET /rest-request/pets/{id}": [SCOPE],
    "ANY /rest-request/files/{proxy+}": [SCOPE],
    "GET /v2-simple/pets": [SCOPE],
    "GET /v2-iam/pets": [SCOPE],
    "GET /v2-iam/pets/{id}": [SCOPE],
    "GET /v1/pets": [SCOPE],
}
# authorizer type -> (URL path, where the backend finds the authorizer context)
TYPES = {
    "REST TOKEN": ("/dev/rest-token/pets", "rest"),
    "REST REQUEST": ("/dev/rest-request/pets", "rest"),
    "HTTP API 2.0 simple": ("/v2-simple/pets", "lambda"),
    "HTTP API 2.0 IAM": ("/v2-iam/pets", "lambda"),
    "HTTP API 1.0": ("/v1/pets", "lambda"),
}
ARN = "arn:aws:execute-api:us-east-1:random-account-id:random-api-id/dev"
# Things in serverless-offline's log that mean the authorizer's interpreter died or hung.
CRASH_MARKERS = ("Traceback (most recent call last)", "Lambda timeout")


# ----------------------------------------------------------------------------------------------
# the gateway


def ensure_node_modules() -> None:
    """``npm ci`` in tests/serverless_offline once if node_modules is missing."""
    npm.ensure_node_modules(OFFLINE_DIR, "serverless-offline", timeout=600)


@dataclass
class Offline:
    """One ``serverless offline`` process group; its output goes to ``log``, event summaries to ``events``."""

    proc: subprocess.Popen[bytes]
    http_port: int
    log: Path
    events: Path

    def get(self, path: str, authorization: str | None) -> tuple[int, dict[str, Any]]:
        """``GET path`` with that Authorization header; fails if the authorizer crashed meanwhile."""
        before = self.log.stat().st_size
        headers = {"Authorization": authorization} if authorization is not None else {}
        request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
        with open(self.log, "rb") as log:
            log.seek(before)
            output = log.read().decode(errors="replace")
        for marker in CRASH_MARKERS:
            assert marker not in output, f"the authorizer crashed or hung on GET {path}:\n{output[-4000:]}"
        return status, json.loads(body) if body else {}

    def read_events(self) -> list[dict[str, Any]]:
        if not self.events.exists():
            return []
        return [json.loads(line) for line in self.events.read_text().splitlines()]

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def framework_env(home: Path) -> dict[str, str]:
    """No credentials, no telemetry, no network: dummy AWS keys, a private HOME, none of our IDP_* or AWS_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "AWS_", "SLS_", "SERVERLESS_"))}
    env.update(
        HOME=str(home),
        SLS_TELEMETRY_DISABLED="1",
        SLS_TRACKING_DISABLED="1",
        SLS_NOTIFICATIONS_MODE="off",
        SLS_DEPRECATION_DISABLE="*",
        SLS_DISABLE_AUTO_UPDATE="1",
        SLS_INTERACTIVE_SETUP_DISABLE="1",
        AWS_ACCESS_KEY_ID="offline-dummy",
        AWS_SECRET_ACCESS_KEY="offline-dummy",
        AWS_REGION="us-east-1",
        AWS_SDK_LOAD_CONFIG="0",
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def offline_env(idp: DevIdp, home: Path, events: Path) -> dict[str, str]:
    """:func:`framework_env`, the venv's python3 first on PATH (the function runtime), the IdP settings."""
    venv_bin = Path(sys.executable).parent
    assert (venv_bin / "python3").exists(), f"no python3 next to {sys.executable}"
    env = framework_env(home)
    if sys.prefix != sys.base_prefix:
        env["VIRTUAL_ENV"] = sys.prefix
    else:
        env.pop("VIRTUAL_ENV", None)
    env.update(
        PATH=f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
        IDP_ISSUER=idp.issuer,
        IDP_AUDIENCE=idp.audience,
        IDP_ROUTES=json.dumps(ROUTES),
        OFFLINE_EVENT_LOG=str(events),
    )
    return env


def start_offline(idp: DevIdp, workdir: Path) -> Offline:
    ensure_node_modules()
    node = shutil.which("node")
    assert node is not None, "node is needed for the serverless-offline tests"
    home, log, events = workdir / "home", workdir / "offline.log", workdir / "events.jsonl"
    home.mkdir()
    http_port, lambda_port, websocket_port, alb_port = (free_port() for _ in range(4))
    argv = [node, str(OFFLINE_DIR / "node_modules" / "serverless" / "bin" / "serverless.js"), "offline"]
    argv += ["--host", "127.0.0.1", "--httpPort", str(http_port), "--lambdaPort", str(lambda_port)]
    argv += ["--websocketPort", str(websocket_port), "--albPort", str(alb_port), "--noSponsor"]
    with open(log, "wb") as out:
        # A session of its own: its python3 children share the process group that stop_offline signals.
        proc = subprocess.Popen(
            argv,
            cwd=OFFLINE_DIR,
            env=offline_env(idp, home, events),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    offline = Offline(proc, http_port, log, events)
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/", timeout=2):
                break
        except urllib.error.HTTPError:
            break  # its 404 route answers: the routes are up
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                why = "exited" if proc.returncode is not None else f"did not answer within {STARTUP_SECONDS} s"
                stop_offline(offline)
                raise RuntimeError(f"serverless offline {why}:\n{offline.output()[-4000:]}") from None
            time.sleep(0.1)
    return offline


def stop_offline(offline: Offline) -> None:
    """SIGTERM to the process group we started, SIGKILL after a bounded wait (and to any child left)."""
    proc, pgid = offline.proc, offline.proc.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        proc.wait(timeout=STOP_SECONDS)
    # The leader is gone; a member still alive keeps the group id ours, so this reaches only our children.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


@pytest.fixture(scope="module")
def offline(dev_idp: DevIdp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Offline]:
    gateway = start_offline(dev_idp, tmp_path_factory.mktemp("serverless-offline"))
    try:
        yield gateway
    finally:
        stop_offline(gateway)


@pytest.fixture(scope="module")
def tokens(dev_idp: DevIdp) -> dict[str, str | None]:
    return {
        "no token": None,
        "valid": f"Bearer {dev_idp.mint(scope=f'{SCOPE} other')}",
        "garbage": f"Bearer {secrets.token_urlsafe(32)}",
        "missing scope": f"Bearer {dev_idp.mint(scope='other')}",
    }


# ----------------------------------------------------------------------------------------------
# the matrix


def _cells() -> Iterator[Any]:
    for kind in TYPES:
        expected = {"no token": 401, "valid": 200, "garbage": 401, "missing scope": 403}
        if kind == "HTTP API 2.0 simple":
            expected["garbage"] = 403  # isAuthorized: false
        for case, status in expected.items():
            yield pytest.param(kind, case, status, id=f"{kind}-{case}")


@pytest.mark.parametrize(("kind", "case", "status"), list(_cells()))
def test_matrix(offline: Offline, tokens: dict[str, str | None], dev_idp: DevIdp, kind: str, case: str, status: int):
    path, where = TYPES[kind]
    got, body = offline.get(path, tokens[case])
    assert got == status, body
    if status == 200:
        context = body["authorizer"] if where == "rest" else body["authorizer"]["lambda"]
        assert {k: context[k] for k in ("sub", "iss", "provider")} == {
            "sub": "user-123",
            "iss": dev_idp.issuer,
            "provider": "oidc",
        }
        assert set(context["scope"].split()) == {SCOPE, "other"}


@pytest.mark.parametrize("path", ["/dev/rest-request/pets/7", "/dev/rest-request/files/a/b.txt", "/v2-iam/pets/7"])
def test_parameter_routes(offline: Offline, tokens: dict[str, str | None], path: str):
    """``{id}`` and ``{proxy+}`` routes, whose ARN carries the template (``pets/{id}``, ``files/{proxy*}``)."""
    assert offline.get(path, tokens["valid"])[0] == 200
    assert offline.get(path, tokens["missing scope"])[0] == 403


# ----------------------------------------------------------------------------------------------
# what the emulator sends


def _route_fields(event: dict[str, Any]) -> dict[str, Any]:
    wanted = ("type", "version", "methodArn", "routeArn", "routeKey", "httpMethod", "resource", "path", "rawPath")
    return {k: event[k] for k in wanted if k in event} | {"requestContext": event["requestContext"]}


REST_KEYS = [
    "authorizationToken",
    "enhancedAuthContext",
    "headers",
    "httpMethod",
    "identitySource",
    "methodArn",
    "multiValueHeaders",
    "multiValueQueryStringParameters",
    "path",
    "pathParameters",
    "queryStringParameters",
    "requestContext",
    "resource",
    "type",
    "version",
]
V2_KEYS = [
    "enhancedAuthContext",
    "headers",
    "identitySource",
    "pathParameters",
    "queryStringParameters",
    "rawPath",
    "rawQueryString",
    "requestContext",
    "routeArn",
    "routeKey",
    "type",
    "version",
]


def _v1(kind: str, template: str, path: str, stage_in_path: bool = True) -> dict[str, Any]:
    full = f"/dev{path}" if stage_in_path else path
    return {
        "type": kind,
        "version": "1.0",
        "methodArn": f"{ARN}/GET{template}",
        "httpMethod": "GET",
        "resource": template,
        "path": full,
        "requestContext": {
            "accountId": "random-account-id",
            "apiId": "random-api-id",
            "httpMethod": "GET",
            "path": full,
            "resourceId": f"GET {template}",
            "resourcePath": template,
            "stage": "dev",
        },
    }


def _v2(template: str, path: str) -> dict[str, Any]:
    return {
        "type": "REQUEST",
        "version": "2.0",
        "routeArn": f"{ARN}/GET{template}",
        "routeKey": f"GET {template}",
        "rawPath": path,
        "requestContext": {
            "accountId": "random-account-id",
            "apiId": "random-api-id",
            "http": {"method": "GET", "path": template, "protocol": "HTTP/1.1"},
            "routeKey": f"GET {template}",
            "stage": "dev",
        },
    }


EMULATED_EVENTS = [
    ("/dev/rest-token/pets", REST_KEYS, _v1("TOKEN", "/rest-token/pets", "/rest-token/pets")),
    ("/dev/rest-request/pets/7", REST_KEYS, _v1("REQUEST", "/rest-request/pets/{id}", "/rest-request/pets/7")),
    (
        "/dev/rest-request/files/a/b.txt",
        REST_KEYS,
        _v1("REQUEST", "/rest-request/files/{proxy*}", "/rest-request/files/a/b.txt"),
    ),
    ("/v1/pets", REST_KEYS, _v1("REQUEST", "/v1/pets", "/v1/pets", stage_in_path=False)),
    ("/v2-simple/pets", V2_KEYS, _v2("/v2-simple/pets", "/v2-simple/pets")),
    ("/v2-iam/pets/7", V2_KEYS, _v2("/v2-iam/pets/{id}", "/v2-iam/pets/7")),
]


def test_events_serverless_offline_sends(offline: Offline, tokens: dict[str, str | None]):
    """Pins the route identity of each emulated event (see the module docstring): a new version shows here."""
    seen = []
    for path, _keys, _expected in EMULATED_EVENTS:
        before = len(offline.read_events())
        offline.get(path, tokens["valid"])
        new = offline.read_events()[before:]
        assert len(new) == 1, (path, new)
        seen.append(new[0])
    assert [(event["keys"], _route_fields(event)) for event in seen] == [
        (keys, expected) for _path, keys, expected in EMULATED_EVENTS
    ]
    # Header names as the client sent them, also for payload 2.0 (API Gateway lower-cases those).
    assert all("Authorization" in event["headerNames"] for event in seen)


# ----------------------------------------------------------------------------------------------
# the deploy example


def test_deploy_example_packages(tmp_path: Path):
    """``deploy/serverless/serverless.yml`` packages with Framework v3, and its authorizers are wired right."""
    ensure_node_modules()
    node = shutil.which("node")
    assert node is not None
    service = tmp_path / "deploy" / "serverless"
    shutil.copytree(Path(__file__).resolve().parents[2] / "deploy" / "serverless", service)
    (tmp_path / "dist").mkdir()
    with zipfile.ZipFile(tmp_path / "dist" / "idp-authorizer-lambda.zip", "w") as stub:
        stub.writestr("idp_authorizer/__init__.py", "")
    (tmp_path / "home").mkdir()
    env = framework_env(tmp_path / "home") | {"IDP_ISSUER": "https://issuer.example/", "IDP_AUDIENCE": "my-api"}
    serverless = str(OFFLINE_DIR / "node_modules" / "serverless" / "bin" / "serverless.js")
    out = tmp_path / "out"
    proc = subprocess.run(
        [node, serverless, "package", "--package", str(out)],
        cwd=service,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    template_path = out / "cloudformation-template-update-stack.json"
    resources = json.loads(template_path.read_text())["Resources"]

    def of_type(kind: str) -> dict[str, dict[str, Any]]:
        return {name: r["Properties"] for name, r in resources.items() if r["Type"] == kind}

    functions = of_type("AWS::Lambda::Function")
    response_mode = {
        name: fn["Environment"]["Variables"]["IDP_RESPONSE"]
        for name, fn in functions.items()
        if fn["Handler"] == "idp_authorizer.handler.handler"
    }
    assert response_mode == {"AuthorizerLambdaFunction": "auto", "AuthorizerIamLambdaFunction": "iam"}
    assert {fn["Runtime"] for fn in functions.values()} == {"python3.11"}

    def target(authorizer: dict[str, Any]) -> str:
        return authorizer["AuthorizerUri"]["Fn::Join"][1][-2]["Fn::GetAtt"][0]

    rest = {props["Type"]: props for props in of_type("AWS::ApiGateway::Authorizer").values()}
    assert set(rest) == {"TOKEN", "REQUEST"}
    assert all("IdentityValidationExpression" not in props for props in rest.values())
    http = {props["EnableSimpleResponses"]: props for props in of_type("AWS::ApiGatewayV2::Authorizer").values()}
    assert response_mode[target(http[True])] == "auto"  # simple responses
    assert response_mode[target(http[False])] == "iam"  # IAM policy for payload 2.0
    assert all("$context.routeKey" in props["IdentitySource"] for props in http.values())
    permitted = {p["FunctionName"]["Fn::GetAtt"][0] for p in of_type("AWS::Lambda::Permission").values()}
    assert set(response_mode) <= permitted
    # W3005 (a redundant DependsOn) is the Framework's own output, not the example's.
    lint = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--ignore-checks", "W3005", "--", str(template_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
