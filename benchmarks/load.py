"""Load test: N simulated Lambda instances calling the sync handler, against IdPs on 127.0.0.1 that count calls.

    .venv/bin/python benchmarks/load.py --preset targets   # issue 5: 4 instances, 100k requests, 1k tokens, Redis
    .venv/bin/python benchmarks/load.py --preset memory    # issue 5: 200k distinct tokens, default cache bound
    .venv/bin/python benchmarks/load.py --smoke            # tiny; checks every decision, never timing

Each instance is a fresh process (``benchmarks/load_instance.py``) that sets ``IDP_*`` from the run's configuration,
imports ``idp_authorizer.handler`` (building the authorizer, as Lambda's init does) and then calls
``handler(event, None)`` one REST TOKEN event at a time, sleeping a random idle gap between requests (mean
``--idle-ms``, exponential), as one Lambda execution environment serves one request at a time.

Tokens are minted up front by the runner and streamed to each instance from a schedule file (so the
instance's memory is the authorizer's, not the token list's): JWTs from the product's dev IdP (run on a
thread of this process, its ``hits`` counting discovery and key-set requests), opaque tokens registered with
a counting introspection endpoint (``benchmarks/load_introspection.py``, also on a thread here), and invalid
tokens (expired, bad signature, wrong audience, wrong issuer, and unknown opaque tokens when opaque tokens
are on). Each request's kind is drawn with the configured shares; which token of that kind with
Zipf(``--zipf``) over the pool, or, with ``--zipf 0``, each instance walks the whole pool in a shuffled
order (every token once before any repeats).

``--rotate-at N`` rotates the dev IdP's keys once N requests are done (the old keys leave the key set);
from then on every instance sends tokens signed with the new keys. ``--redis`` starts ``redis-server`` on a
free loopback port and sets ``IDP_CACHE_URL`` when the build has the shared tier.

Every decision is checked: a valid token must get an Allow policy for the ``methodArn``, an invalid one
exactly ``Exception("Unauthorized")``. Anything else is an error, and the exit status is 1. Cache hits come
from the decision log (``IDP_LOG_LEVEL=INFO``, each instance's stdout captured to a file); peak RSS is the
instance's ``VmHWM`` (``ru_maxrss`` alongside). The report goes to ``benchmarks/results/load.md`` and, when
matplotlib is installed (``pip install -r benchmarks/requirements.txt``), a plot to ``load.png``.

This file is the entry point (``python benchmarks/load.py`` or ``python -m benchmarks.load``); the test
lives in the ``benchmarks/load_*.py`` modules (``load_main`` runs it).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: the repository's packages
    from benchmarks.load_main import main

    sys.exit(main(description=__doc__))
