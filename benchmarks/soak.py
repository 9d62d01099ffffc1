"""Soak: many distinct tokens through one authorizer instance for a bounded time; memory stays flat.

Loopback only: the product's dev IdP on 127.0.0.1 serves discovery and the key set. One authorizer,
built from ``IDP_*`` variables as at a cold start, sees a stream of tokens that are almost all new:
valid ones (EdDSA, signed here with the dev IdP's key), repeats, and invalid ones (bad signature,
unknown kid, expired, garbage), through every event shape. The verdict cache fills to
``IDP_CACHE_MAX_ENTRIES`` and must stay there; resident memory, sampled every second, must stay
flat once the cache is full.

    .venv/bin/python benchmarks/soak.py --seconds 60 --max-entries 10000

Prints one line per sample (elapsed, tokens, tokens/s, cache entries, RSS) and PASS or FAIL;
exit status 0 on PASS.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from idp_authorizer.tools.devidp import DevIdp
from idp_authorizer.tools.invoke import build_event

API = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod"
SHAPES = ("rest-token", "rest-request", "http-v2")


def rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Tokens:
    """Distinct tokens, cheaply: a fixed EdDSA header, a counter in the claims, one Ed25519 signature each."""

    def __init__(self, idp: DevIdp, seed: int = 6) -> None:
        self.idp = idp
        key = idp.keys["okp"]
        self._sign = key.private_key.sign
        self._header = b64(json.dumps({"alg": "EdDSA", "typ": "at+jwt", "kid": key.kid}).encode())
        self._unknown = b64(json.dumps({"alg": "EdDSA", "typ": "at+jwt", "kid": "unknown-kid"}).encode())
        self._rng = random.Random(seed)
        self._count = 0
        self._recent: list[str] = []

    def _claims(self, **changes: Any) -> str:
        self._count += 1
        now = int(time.time())
        claims = {
            "iss": self.idp.issuer,
            "sub": f"user-{self._count}",
            "aud": self.idp.audience,
            "iat": now,
            "exp": now + 600,
            "scope": "read",
            "jti": f"{self._count:x}",
            **changes,
        }
        return b64(json.dumps(claims, separators=(",", ":")).encode())

    def _signed(self, header: str, claims: str) -> str:
        signing_input = f"{header}.{claims}"
        return f"{signing_input}.{b64(self._sign(signing_input.encode()))}"

    def next(self) -> tuple[str, bool]:
        """``(token, valid)``."""
        roll = self._rng.random()
        if roll < 0.55:
            token = self._signed(self._header, self._claims())
            self._recent = [*self._recent[-63:], token]
            return token, True
        if roll < 0.65 and self._recent:
            return self._rng.choice(self._recent), True
        if roll < 0.75:
            return self._signed(self._header, self._claims())[:-6] + "AAAAAA", False
        if roll < 0.85:
            return self._signed(self._unknown, self._claims()), False
        if roll < 0.95:
            return self._signed(self._header, self._claims(exp=int(time.time()) - 5)), False
        return f"opaque-garbage-{self._count}-{self._rng.getrandbits(64):x}", False


def event_for(token: str, shape: int) -> dict[str, Any]:
    return build_event(SHAPES[shape], token, "GET /pets", api=API)


def decide(event: dict[str, Any]) -> bool:
    """Whether the handler allowed; any exception other than the deliberate 401 ends the soak."""
    from idp_authorizer import handler

    try:
        response = handler.handler(event, None)
    except Exception as exc:
        if type(exc) is not Exception or exc.args != ("Unauthorized",):
            raise
        return False
    if "isAuthorized" in response:
        return response["isAuthorized"] is True
    return any(s["Effect"] == "Allow" for s in response["policyDocument"]["Statement"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measured time after warm-up (default 30)")
    parser.add_argument("--max-entries", type=int, default=5000, help="IDP_CACHE_MAX_ENTRIES (default 5000)")
    parser.add_argument("--tolerance-mb", type=float, default=6.0, help="allowed RSS growth after warm-up (MB)")
    args = parser.parse_args()

    with DevIdp(audience="demo-api") as idp:
        os.environ.update(
            {
                "IDP_PROVIDER": "oidc",
                "IDP_ISSUER": idp.issuer,
                "IDP_AUDIENCE": idp.audience,
                "IDP_ALGORITHMS": "RS256,ES256,EdDSA",
                "IDP_ALLOW_LOOPBACK_HTTP": "true",
                "IDP_CACHE_MAX_ENTRIES": str(args.max_entries),
                "IDP_TOKEN_CACHE_SECONDS": "300",
                "IDP_NEGATIVE_CACHE_SECONDS": "300",
                "IDP_JWKS_COOLDOWN_SECONDS": "3600",
                "IDP_LOG_LEVEL": "WARNING",
            }
        )
        from idp_authorizer import handler  # imported once the environment is set: its import builds the handler

        authorizer = handler.init()
        assert authorizer is not None, "configuration refused"
        tokens = Tokens(idp)
        shape = 0
        seen = wrong = 0

        def step() -> None:
            nonlocal shape, seen, wrong
            token, valid = tokens.next()
            shape = (shape + 1) % 3
            if decide(event_for(token, shape)) is not valid:
                wrong += 1
            seen += 1

        # Warm-up: fill the cache twice over, so what follows is steady state.
        while seen < 3 * args.max_entries:
            step()
        gc.collect()
        baseline = rss_mb()
        print(f"warm-up: {seen} tokens, cache {len(authorizer.cache)}/{args.max_entries}, RSS {baseline:.1f} MB")
        print(f"{'elapsed s':>9} {'tokens':>9} {'tokens/s':>9} {'cache':>7} {'RSS MB':>8}")
        samples: list[float] = []
        peak_entries = len(authorizer.cache)
        started = last = time.perf_counter()
        last_seen = seen
        while (now := time.perf_counter()) - started < args.seconds:
            for _ in range(200):
                step()
            peak_entries = max(peak_entries, len(authorizer.cache))
            if now - last >= 1.0:
                samples.append(rss_mb())
                rate = (seen - last_seen) / (now - last)
                print(f"{now - started:9.1f} {seen:9d} {rate:9.0f} {len(authorizer.cache):7d} {samples[-1]:8.1f}")
                last, last_seen = now, seen
        gc.collect()
        final = rss_mb()
        hits = dict(idp.hits)
        handler.close()

    third = max(1, len(samples) // 3)
    early, late = statistics.median(samples[:third] or [baseline]), statistics.median(samples[-third:] or [final])
    growth = final - baseline
    checks = {
        f"cache never above its bound ({peak_entries} <= {args.max_entries})": peak_entries <= args.max_entries,
        f"RSS growth after warm-up {growth:+.1f} MB <= {args.tolerance_mb} MB": growth <= args.tolerance_mb,
        f"RSS late vs early median {late - early:+.1f} MB <= {args.tolerance_mb / 2} MB": late - early
        <= args.tolerance_mb / 2,
        f"every decision right ({wrong} wrong of {seen})": wrong == 0,
        f"IdP requests stayed at the cold-start two ({hits})": sum(hits.values()) <= 2,
    }
    for name, ok in checks.items():
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    passed = all(checks.values())
    print("PASS" if passed else "FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
