"""The token pools of a load run, minted up front: valid and invalid JWTs, valid and unknown opaque tokens.

With a key rotation, phase B (after ``--rotate-at``) has its own JWTs, signed with keys the dev IdP
publishes only then; opaque tokens do not care about JWT keys, so both phases share them.
"""

from __future__ import annotations

import secrets
import sys
import warnings
from dataclasses import dataclass, field

from joserfc.jwk import Key

from benchmarks.load_config import LoadConfig
from benchmarks.load_introspection import IntrospectionServer
from benchmarks.load_servers import AUDIENCE
from benchmarks.load_wire import Kind
from benchmarks.make_tokens import tamper_signature
from idp_authorizer.tools.devidp import ALG_KEY, DevIdp

INVALID_JWT_KINDS = ("expired", "bad_signature", "wrong_audience", "wrong_issuer")
Sizes = dict[Kind, int]
Pool = dict[Kind, list[str]]


@dataclass
class Pools:
    """Token pools per kind for phase A and (with a rotation) phase B, and the keys phase B needs."""

    a: Pool = field(default_factory=dict)
    b: Pool = field(default_factory=dict)
    invalid_reasons: dict[str, int] = field(default_factory=dict)
    next_keys: dict[str, Key] = field(default_factory=dict)


def pool_sizes(config: LoadConfig, opaque: bool) -> Sizes:
    """How many distinct tokens of each kind ``--distinct`` stands for."""
    invalid = max(round(config.distinct * config.invalid_share), 1) if config.invalid_share > 0 else 0
    n_opaque = max(round(config.distinct * config.opaque_share), 1) if opaque and config.opaque_share > 0 else 0
    unknown_opaque = invalid // 5 if n_opaque else 0
    jwt = max(config.distinct - n_opaque - invalid, 1)
    return {"j": jwt, "o": n_opaque, "x": invalid - unknown_opaque, "r": unknown_opaque}


def mint_jwts(idp: DevIdp, alg: str, count: int, key: Key, label: str, progress: bool) -> list[str]:
    tokens = []
    for i in range(count):
        tokens.append(idp.mint(alg=alg, ttl=7200, sub=f"user-{label}{i}", key=key))
        if progress and (i % 2000 == 0 or i == count - 1):
            print(f"\rminting {label} {alg} tokens {i + 1}/{count}", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    return tokens


def _invalid_jwt(idp: DevIdp, alg: str, reason: str, i: int, key: Key) -> str:
    if reason == "expired":
        return idp.mint(alg=alg, ttl=-120, sub=f"expired-{i}", key=key)
    if reason == "bad_signature":
        return tamper_signature(idp.mint(alg=alg, ttl=7200, sub=f"tampered-{i}", key=key))
    if reason == "wrong_audience":
        return idp.mint(alg=alg, ttl=7200, sub=f"aud-{i}", aud="someone-else", key=key)
    return idp.mint(alg=alg, ttl=7200, sub=f"iss-{i}", iss="https://issuer.invalid/", key=key)


def mint_invalid(idp: DevIdp, alg: str, count: int, key: Key) -> tuple[list[str], dict[str, int]]:
    """``count`` JWTs the authorizer must refuse, the reasons taken in turn, and how many of each."""
    reasons = [INVALID_JWT_KINDS[i % len(INVALID_JWT_KINDS)] for i in range(count)]
    tokens = [_invalid_jwt(idp, alg, reason, i, key) for i, reason in enumerate(reasons)]
    return tokens, {reason: reasons.count(reason) for reason in dict.fromkeys(reasons)}


def _opaque(introspection: IntrospectionServer | None, sizes: Sizes) -> tuple[list[str], list[str]]:
    """Opaque tokens the server knows (active) and tokens it never issued (inactive)."""
    if introspection is None:
        return [], []
    known = [introspection.issue(scope="read", ttl=7200, sub=f"opaque-{i}", aud=AUDIENCE) for i in range(sizes["o"])]
    return known, [secrets.token_urlsafe(32) for _ in range(sizes["r"])]


def _mint_phase(config: LoadConfig, idp: DevIdp, sizes: Sizes, key: Key, label: str) -> tuple[Pool, dict[str, int]]:
    valid = mint_jwts(idp, config.alg, sizes["j"], key, label, progress=sizes["j"] >= 5000)
    invalid, reasons = mint_invalid(idp, config.alg, sizes["x"], key)
    return {"j": valid, "x": invalid}, reasons


def build_pools(config: LoadConfig, idp: DevIdp, introspection: IntrospectionServer | None, sizes: Sizes) -> Pools:
    warnings.filterwarnings("ignore", message=".*EdDSA is deprecated.*")
    slot = ALG_KEY[config.alg]
    published = dict(idp.keys)
    pools = Pools()
    pools.a, pools.invalid_reasons = _mint_phase(config, idp, sizes, published[slot], "a")
    pools.a["o"], pools.a["r"] = _opaque(introspection, sizes)
    if sizes["r"]:
        pools.invalid_reasons["inactive (unknown opaque)"] = sizes["r"]
    if config.rotate_at:
        idp.rotate_keys()  # new keys, not yet published: mint phase B with them, publish at --rotate-at
        pools.next_keys, idp.keys, idp.retired = dict(idp.keys), published, {}
        pools.b, _ = _mint_phase(config, idp, sizes, pools.next_keys[slot], "b")
        pools.b["o"], pools.b["r"] = pools.a["o"], pools.a["r"]
    return pools


def publish_next_keys(idp: DevIdp, pools: Pools) -> None:
    """The key rotation: the dev IdP publishes phase B's keys; the old ones leave the key set."""
    idp.retired.update(idp.keys)
    idp.keys = pools.next_keys
