"""Generate the key set and token files used by the warm-path benchmark.

Writes into ``benchmarks/data/`` (gitignored):

- ``jwks.json``            public keys (one per algorithm, ``kid`` = ``bench-<alg>``)
- ``private-jwks.json``    the matching private keys (re-used on the next run unless ``--new-keys``)
- ``tokens-<ALG>.txt``     ``--count`` distinct valid access tokens, one per line
- ``warmup-<ALG>.txt``     ``--warmup`` more distinct valid tokens, never part of a timed pass
- ``negatives-<ALG>.json`` tokens every verifier must refuse (tampered, wrong iss, expired, ...)
- ``meta.json``            issuer, audience, counts and algorithms

Run from the repository root: ``.venv/bin/python benchmarks/make_tokens.py``.
"""

from __future__ import annotations

import argparse
import base64
import json
import warnings
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, KeyParameters, KeySet, OKPKey, RSAKey, import_key

ALGORITHMS: tuple[str, ...] = ("RS256", "PS256", "ES256", "EdDSA")
ISSUER = "https://issuer.example/"
AUDIENCE = "bench-api"
CLIENT_ID = "bench-client"
SCOPE = "read write"
IAT = 1_735_689_600  # 2025-01-01T00:00:00Z: fixed, so the token files are reproducible
EXP = 4_102_444_800  # 2100-01-01T00:00:00Z: "far in the future"
DEFAULT_DATA_DIR = Path(__file__).resolve().parent / "data"

Key = RSAKey | ECKey | OKPKey


def kid_for(alg: str) -> str:
    return f"bench-{alg.lower()}"


def generate_key(alg: str) -> Key:
    params: KeyParameters = {"kid": kid_for(alg), "alg": alg, "use": "sig"}
    if alg in ("RS256", "PS256"):
        return RSAKey.generate_key(2048, parameters=params, private=True)
    if alg == "ES256":
        return ECKey.generate_key("P-256", parameters=params, private=True)
    if alg == "EdDSA":
        return OKPKey.generate_key("Ed25519", parameters=params, private=True)
    raise ValueError(f"unsupported algorithm {alg}")


def load_or_generate_keys(data_dir: Path, new_keys: bool) -> dict[str, Key]:
    private_path = data_dir / "private-jwks.json"
    keys: dict[str, Key] = {}
    if private_path.exists() and not new_keys:
        for jwk in json.loads(private_path.read_text())["keys"]:
            key = import_key(jwk)
            if isinstance(key, RSAKey | ECKey | OKPKey):
                keys[str(jwk["alg"])] = key
    for alg in ALGORITHMS:
        if alg not in keys:
            keys[alg] = generate_key(alg)
    private_path.write_text(json.dumps({"keys": [keys[a].as_dict(private=True) for a in ALGORITHMS]}))
    private_path.chmod(0o600)
    return keys


def claims_for(alg: str, index: int, prefix: str = "tok") -> dict[str, Any]:
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": f"user-{prefix}-{index:07d}",
        "jti": f"{alg}-{prefix}-{index:07d}",
        "client_id": CLIENT_ID,
        "scope": SCOPE,
        "iat": IAT,
        "exp": EXP,
    }


def sign(alg: str, key: Key, claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    hdr: dict[str, Any] = {"alg": alg, "kid": kid_for(alg), "typ": "at+jwt"}
    if header:
        hdr.update(header)
    return jwt.encode(hdr, claims, key, algorithms=[alg])


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def tamper_signature(token: str) -> str:
    """The same header and payload, one bit of the signature flipped: well-formed, signature invalid."""
    head, _, sig_b64 = token.rpartition(".")
    sig = bytearray(base64.urlsafe_b64decode(sig_b64 + "=" * (-len(sig_b64) % 4)))
    sig[len(sig) // 2] ^= 0x01
    return f"{head}.{b64url(bytes(sig))}"


def negatives_for(alg: str, key: Key) -> dict[str, str]:
    """Tokens that must be refused. ``required_by`` in meta.json says which verifier must refuse which."""
    base = sign(alg, key, claims_for(alg, 0, "neg"))
    header_b64, payload_b64, sig_b64 = base.split(".")

    # Same signature, different payload (sub changed).
    tampered_claims = claims_for(alg, 0, "neg")
    tampered_claims["sub"] = "admin"
    tampered_payload = b64url(json.dumps(tampered_claims, separators=(",", ":")).encode())
    tampered = f"{header_b64}.{tampered_payload}.{sig_b64}"

    bad_signature = tamper_signature(base)  # same payload, one bit of the signature flipped

    alg_none_header = b64url(json.dumps({"alg": "none", "kid": kid_for(alg), "typ": "at+jwt"}).encode())
    alg_none = f"{alg_none_header}.{payload_b64}."

    wrong_iss = sign(alg, key, {**claims_for(alg, 1, "neg"), "iss": "https://evil.example/"})
    wrong_aud = sign(alg, key, {**claims_for(alg, 2, "neg"), "aud": "other-api"})
    expired = sign(alg, key, {**claims_for(alg, 3, "neg"), "iat": 999_990_000, "exp": 1_000_000_000})
    no_exp_claims = claims_for(alg, 4, "neg")
    del no_exp_claims["exp"]
    missing_exp = sign(alg, key, no_exp_claims)
    return {
        "tampered_payload": tampered,
        "bad_signature": bad_signature,
        "alg_none": alg_none,
        "wrong_iss": wrong_iss,
        "wrong_aud": wrong_aud,
        "expired": expired,
        "missing_exp": missing_exp,
    }


# Which negatives a verifier must refuse, by the checks it claims. missing_exp is informational:
# RFC 7519 makes exp optional, so a library may accept it; the report shows each verdict.
NEGATIVES_SIGNATURE = ("tampered_payload", "bad_signature", "alg_none")
NEGATIVES_CLAIMS = ("wrong_iss", "wrong_aud", "expired")
NEGATIVES_INFORMATIONAL = ("missing_exp",)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000, help="timed tokens per algorithm (default 1000)")
    parser.add_argument("--warmup", type=int, default=100, help="extra warm-up tokens per algorithm")
    parser.add_argument("--out", type=Path, default=DEFAULT_DATA_DIR, help="output folder")
    parser.add_argument("--new-keys", action="store_true", help="generate fresh keys even if some exist")
    parser.add_argument("--algs", default=",".join(ALGORITHMS), help="comma-separated subset")
    args = parser.parse_args(argv)

    algs = [a.strip() for a in str(args.algs).split(",") if a.strip()]
    for alg in algs:
        if alg not in ALGORITHMS:
            parser.error(f"unknown algorithm {alg}; choose from {', '.join(ALGORITHMS)}")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    # joserfc flags EdDSA as deprecated by RFC 9864; "EdDSA" is still what IdPs and aws-jwt-verify use.
    warnings.filterwarnings("ignore", message="EdDSA is deprecated")
    keys = load_or_generate_keys(out, bool(args.new_keys))
    public = KeySet([keys[a] for a in ALGORITHMS]).as_dict(private=False)
    (out / "jwks.json").write_text(json.dumps(public, indent=2))

    for alg in algs:
        key = keys[alg]
        tokens = [sign(alg, key, claims_for(alg, i)) for i in range(args.count)]
        warm = [sign(alg, key, claims_for(alg, i, "warm")) for i in range(args.warmup)]
        assert len(set(tokens) | set(warm)) == len(tokens) + len(warm), "tokens must be distinct"
        (out / f"tokens-{alg}.txt").write_text("\n".join(tokens) + "\n")
        (out / f"warmup-{alg}.txt").write_text("\n".join(warm) + "\n")
        (out / f"negatives-{alg}.json").write_text(json.dumps(negatives_for(alg, key), indent=2))
        print(f"{alg}: {len(tokens)} tokens, {len(warm)} warm-up tokens -> {out}")

    meta = {
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "count": args.count,
        "warmup": args.warmup,
        "algorithms": algs,
        "kids": {a: kid_for(a) for a in algs},
        "negatives": {
            "signature": list(NEGATIVES_SIGNATURE),
            "claims": list(NEGATIVES_CLAIMS),
            "informational": list(NEGATIVES_INFORMATIONAL),
        },
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
