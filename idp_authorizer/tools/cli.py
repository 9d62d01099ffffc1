"""``idp-authorizer``: the command line.

``dev-idp`` runs the local IdP; ``demo`` shows decisions; ``package`` builds the Lambda zip;
``doctor`` checks a configuration against the IdP and API Gateway; ``invoke`` runs the handler once.

Nothing here is imported by the Lambda handler.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from idp_authorizer.tools.devidp import DevIdp
    from idp_authorizer.tools.invoke import Shape

DEMO_AUDIENCE = "demo-api"
DEMO_SCOPE = "pets:read"
DEMO_ARN = "arn:aws:execute-api:us-east-1:123456789012:demo123/prod/{verb}/pets"
DEMO_SHAPES: tuple[tuple[str, Shape], ...] = (
    ("REST TOKEN", "rest-token"),
    ("REST REQUEST", "rest-request"),
    ("HTTP API 2.0", "http-v2"),
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="idp-authorizer", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    dev = commands.add_parser("dev-idp", help="run the local development IdP on 127.0.0.1")
    dev.add_argument("--port", type=int, default=8765)
    dev.add_argument("--audience", default=DEMO_AUDIENCE)
    dev.add_argument("--preset", choices=_preset_names(), help="mint tokens shaped as this IdP issues them")
    dev.add_argument("--latency-ms", type=float, default=0.0, help="delay each discovery and key-set answer")
    demo = commands.add_parser("demo", help="start the dev IdP in-process and print decisions for each event shape")
    demo.add_argument("--preset", choices=_preset_names(), help="configure that preset and use its token shape")
    _package_arguments(commands.add_parser("package", help="build the Lambda deployment zip from manylinux wheels"))
    _doctor_arguments(commands.add_parser("doctor", help="check the IDP_* environment, the IdP and the API pairing"))
    _invoke_arguments(commands.add_parser("invoke", help="run the handler on one event, like the console's Test tab"))
    args = parser.parse_args(argv)
    command: Callable[[argparse.Namespace], int] = {
        "dev-idp": _dev_idp,
        "demo": _demo,
        "package": _package,
        "doctor": _doctor,
        "invoke": _invoke,
    }[args.command]
    return command(args)


def _package_arguments(parser: argparse.ArgumentParser) -> None:
    from idp_authorizer.tools.package import ARCHES, PYTHONS

    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    parser.add_argument("--arch", choices=sorted(ARCHES), default="x86_64", help="Lambda architecture")
    parser.add_argument("--python", choices=PYTHONS, default=here if here in PYTHONS else "3.12", help="runtime")
    parser.add_argument("--with", dest="extras", default="", help="optional cache clients: redis,memcached")
    parser.add_argument("--out", default="dist", help="output folder (default dist/)")
    parser.add_argument("--interpreter", help="a Python of the target version to compile .pyc with")
    parser.add_argument("--no-compile", action="store_true", help="ship sources only, no .pyc")


def _package(args: argparse.Namespace) -> int:
    from pathlib import Path

    from idp_authorizer.tools.package import build

    extras = [part.strip() for part in args.extras.split(",") if part.strip()]
    try:
        result = build(
            args.arch,
            args.python,
            extras=extras,
            out_dir=Path(args.out),
            interpreter=args.interpreter,
            compile_bytecode=not args.no_compile,
        )
    except (ValueError, RuntimeError) as exc:
        print(f"package: {exc}", file=sys.stderr)
        return 1
    print(result.report())
    return 0


def _doctor_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token", help="also verify this token ('-' reads it from stdin); never printed")
    parser.add_argument("--payload", choices=("1.0", "2.0"), help="HTTP API authorizer payload format version")
    parser.add_argument(
        "--simple-responses",
        action=argparse.BooleanOptionalAction,
        help="whether the HTTP API expects simple responses",
    )
    parser.add_argument(
        "--identity-source",
        action="append",
        default=[],
        help="the authorizer's identity source(s), e.g. '$request.header.Authorization,$context.routeKey'",
    )
    parser.add_argument("--result-ttl", type=int, help="the authorizer's result cache TTL in seconds")


def _doctor(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from idp_authorizer.tools.doctor import diagnose, report_exit_code
    from idp_authorizer.tools.gateway_check import Gateway
    from idp_authorizer.tools.report import render

    logging.getLogger("idp_authorizer").setLevel(logging.ERROR)
    sources = tuple(part.strip() for value in args.identity_source for part in value.split(",") if part.strip())
    gateway = Gateway(args.payload, args.simple_responses, sources, args.result_ttl)
    findings = asyncio.run(diagnose(gateway, _read_token(args.token)))
    print(render(findings))
    return report_exit_code(findings)


def _invoke_arguments(parser: argparse.ArgumentParser) -> None:
    from idp_authorizer.tools.invoke import API, SHAPES

    parser.add_argument("event", nargs="?", help="an authorizer event as JSON ('-' reads stdin); or build one:")
    parser.add_argument("--token", help="the bearer token ('-' reads it from stdin); never printed")
    parser.add_argument("--shape", choices=SHAPES, default="rest-token", help="the event shape to build")
    parser.add_argument("--route", default="GET /pets", help="'VERB /path' of the request")
    parser.add_argument("--api", default=API, help="the API's ARN prefix: arn:aws:execute-api:REGION:ACCOUNT:ID/STAGE")
    parser.add_argument(
        "--dpop-key",
        metavar="FILE",
        help="send the token as DPoP, with a proof signed by this private JWK (created if missing; its jkt printed)",
    )


def _invoke(args: argparse.Namespace) -> int:
    from idp_authorizer.tools.invoke import (
        build_event,
        first_source,
        invoke,
        load_dpop_key,
        load_event,
        render,
        with_dpop,
    )

    try:
        if args.event is not None:
            if args.token is not None:
                raise ValueError("give an event file or --token, not both")
            event = load_event(args.event)
        else:
            token = _read_token(args.token)
            event = build_event(args.shape, token, args.route, api=args.api, source=first_source())
            if args.dpop_key is not None:
                key, created = load_dpop_key(args.dpop_key)
                if created or token is None:
                    print(f"DPoP key {args.dpop_key}: jkt {key.jkt} (mint a token bound to it: dpop_jkt={key.jkt})")
                    if token is None:
                        return 2
                if args.shape == "rest-token":
                    raise ValueError("DPoP needs a REQUEST-type shape: rest-request, http-v1 or http-v2")
                event = with_dpop(event, token, key)
    except (OSError, ValueError) as exc:
        print(f"invoke: {exc}", file=sys.stderr)
        return 2
    invocation = invoke(event)
    print(render(invocation))
    return 0 if invocation.allowed else 1


def _read_token(value: str | None) -> str | None:
    """The token from the command line or stdin, without a ``Bearer`` prefix (the tools add their own)."""
    token = sys.stdin.readline().strip() if value == "-" else value
    if token is not None and token[:7].lower() == "bearer ":
        token = token[7:].strip()
    return token


def _preset_names() -> list[str]:
    from idp_authorizer.tools.presets import PRESETS

    return sorted(PRESETS)


def _dev_idp(args: argparse.Namespace) -> int:
    from idp_authorizer.tools.devidp import DevIdp

    idp = DevIdp(port=args.port, audience=args.audience, latency=args.latency_ms / 1e3).start()
    print(f"dev IdP listening: issuer {idp.issuer}")
    print(f"  discovery  {idp.issuer}/.well-known/openid-configuration")
    print(f"  JWKS       {idp.jwks_url}")
    mint = f"-d preset={args.preset}" if args.preset else "-d scope=pets:read"
    print(f"  mint       curl -s {mint} -d alg=RS256 {idp.issuer}/token")
    print("configure the authorizer with:")
    env = " ".join(f"{name}={value}" for name, value in _demo_settings(idp, args.preset).items())
    print(f"  {env} IDP_ALLOW_LOOPBACK_HTTP=true")
    print("Ctrl-C to stop")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        idp.stop()
    return 0


def demo_events(token: str | None, verb: str) -> dict[str, dict[str, Any]]:
    """The same request in three event shapes."""
    from idp_authorizer.tools.invoke import build_event

    api = DEMO_ARN.format(verb=verb).rsplit("/", 2)[0]
    return {shape: build_event(kind, token, f"{verb} /pets", api=api) for shape, kind in DEMO_SHAPES}


def _demo_settings(idp: DevIdp, preset: str | None) -> dict[str, str]:
    """The settings that accept the dev IdP's tokens: its own OIDC issuer, or a preset's (keys from the dev IdP)."""
    if preset is None:
        return {"IDP_PROVIDER": "oidc", "IDP_ISSUER": idp.issuer, "IDP_AUDIENCE": idp.audience}
    from idp_authorizer.tools.presets import PRESETS

    return PRESETS[preset].settings(idp.jwks_url)


def _demo(args: argparse.Namespace) -> int:
    from idp_authorizer.tools.devidp import DevIdp

    with DevIdp(audience=DEMO_AUDIENCE) as idp:
        scope = DEMO_SCOPE
        mint: Callable[..., str] = functools.partial(idp.mint, scope=scope)
        if args.preset is not None:
            from idp_authorizer.tools.presets import PRESETS

            scope = PRESETS[args.preset].scope
            mint = functools.partial(idp.mint_preset, args.preset)
        routes = {"GET /pets": [scope], "POST /pets": ["pets:write"]}
        os.environ.update(
            _demo_settings(idp, args.preset),
            IDP_ALLOW_LOOPBACK_HTTP="true",
            IDP_ROUTES=json.dumps(routes),
            IDP_LOG_LEVEL="WARNING",
        )
        from idp_authorizer import handler

        handler.init()
        valid = mint()
        cases = {
            f"valid token ({scope}), GET /pets": (valid, "GET"),
            "expired token, GET /pets": (mint(exp=int(time.time()) - 60), "GET"),
            f"missing scope ({scope} only), POST /pets": (valid, "POST"),
            "no token, GET /pets": (None, "GET"),
        }
        shape = f"{args.preset}-shaped tokens, " if args.preset else ""
        print(f"dev IdP at {idp.issuer}; {shape}routes {json.dumps(routes)}\n")
        for case, (token, verb) in cases.items():
            print(case)
            for shape, event in demo_events(token, verb).items():
                arn = event.get("methodArn") or event["routeArn"]
                print(f"  {shape:<13} {describe(lambda e=event: handler.handler(e, None), arn)}")  # type: ignore[misc]
            print()
        handler.close()
    return 0


def describe(call: Callable[[], dict[str, Any] | str], arn: str) -> str:
    """One line: what API Gateway would do with the handler's answer for the request ``arn``."""
    from idp_authorizer.tools.invoke import answer

    found = answer(call, arn)
    if found.status == "401":
        return f"401 Unauthorized ({found.detail.partition(' ')[0]} 'Unauthorized')"
    if found.status == "500":
        return f"500 ({found.detail.removeprefix('raised ').partition(':')[0]})"
    status = "DENY 403" if found.status == "403" else "ALLOW"
    if found.detail == "simple response":
        return f"{status:<9} simple response, context keys {sorted((found.response or {}).get('context', {}))}"
    return f"{status:<9} {found.detail}"


if __name__ == "__main__":
    sys.exit(main())
