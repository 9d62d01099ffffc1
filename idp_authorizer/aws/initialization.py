"""Initialization off the request path: prefetch by initialization type, and the Lambda SnapStart hooks.

Lambda names how an execution environment started in ``AWS_LAMBDA_INITIALIZATION_TYPE``: ``on-demand``
(INIT runs in front of the request that caused it), ``provisioned-concurrency`` (ahead of any request),
``snap-start`` (once, when a version is published; each cold start then restores a snapshot of it).
https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html

- Prefetch (:func:`prepare`, at the end of init): where INIT is off the request's path, the last two types,
  every provider's discovery document and key set are fetched, within twice the HTTP timeout, and each
  key's verifiers run once. ``IDP_PREFETCH=true|false`` overrides the type. A failure is logged and
  leaves the lazy path as it was: the provider's first request fetches, no back-off armed.
- SnapStart runtime hooks, through ``snapshot_restore_py`` (the Lambda Python runtimes 3.12+ provide it;
  where it is absent there are no hooks and no error),
  https://docs.aws.amazon.com/lambda/latest/dg/snapstart-runtime-hooks-python.html:

  - :func:`before_snapshot`: the prefetch (unless ``IDP_PREFETCH=false``; what init fetched already is not
    fetched again), then every HTTP session, shared-cache connection and the event loop closed, so no
    socket is carried into the snapshot; then garbage collected and the heap frozen (:func:`gc.freeze`),
    so later collections do not walk (and fault in) every page of the restored heap.
  - :func:`after_restore`: the ``random`` module reseeded (its state was taken at publish time, the same
    in every restored environment). Nothing else: sessions and the loop are created by the first
    request that needs the IdP, and keys are refreshed by their stored wall-clock age as ever (a
    snapshot may be weeks old: its keys are then past their maximum age and fetched again). It cannot
    raise and takes microseconds, well within the 10 s Lambda allows.
"""

from __future__ import annotations

import gc
import logging
import os
import random
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from idp_authorizer.aws.runtime import Authorizer
    from idp_authorizer.aws.settings import Settings

logger = logging.getLogger("idp_authorizer.initialization")

INITIALIZATION_TYPE = "AWS_LAMBDA_INITIALIZATION_TYPE"
PREFETCHING_TYPES = frozenset({"provisioned-concurrency", "snap-start"})
"""The initialization types whose INIT is off the request's path: prefetch by default."""

_current: tuple[Authorizer, Settings] | None = None
"""What the last init built: the hooks act on it (one authorizer per container, like the handler's)."""
_hooks_registered = False


def wants_prefetch(setting: bool | None, initialization_type: str | None) -> bool:
    """``IDP_PREFETCH`` when set, else whether ``initialization_type`` keeps INIT off the request's path."""
    return setting if setting is not None else initialization_type in PREFETCHING_TYPES


def prepare(authorizer: Authorizer | None, settings: Settings | None, environ: Mapping[str, str] = os.environ) -> bool:
    """End of init: register the SnapStart hooks (once per process), prefetch if the initialization type
    asks for it. ``True`` when the hooks are registered (``snapshot_restore_py`` importable)."""
    global _current  # noqa: PLW0603 - what the hooks act on, set by each init
    _current = None if authorizer is None or settings is None else (authorizer, settings)
    if _current is not None and wants_prefetch(_current[1].prefetch, environ.get(INITIALIZATION_TYPE)):
        prefetch(*_current)
    return _register_hooks()


def prefetch(authorizer: Authorizer, settings: Settings) -> dict[str, str | None]:
    """Every provider's documents fetched now, bounded by twice the HTTP timeout; one log line per provider."""
    started = time.perf_counter()
    outcome = authorizer.prefetch(2 * settings.http_timeout_seconds)
    elapsed_ms = (time.perf_counter() - started) * 1e3
    for name, code in outcome.items():
        if code is None:
            logger.info("prefetched provider %s (%.0f ms for all)", name, elapsed_ms)
        else:
            logger.warning("prefetch of provider %s failed (%s): its first request fetches", name, code)
    return outcome


def before_snapshot() -> None:
    """The SnapStart before-snapshot hook (see the module docstring)."""
    if _current is not None:
        authorizer, settings = _current
        if wants_prefetch(settings.prefetch, "snap-start"):
            prefetch(authorizer, settings)
        authorizer.close()
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def after_restore() -> None:
    """The SnapStart after-restore hook (see the module docstring)."""
    random.seed()  # from os.urandom, which the kernel keeps unique per restored environment


def _register_hooks() -> bool:
    global _hooks_registered  # noqa: PLW0603 - once per process, whatever the number of inits
    if _hooks_registered:
        return True
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:
        return False
    register_before_snapshot(before_snapshot)
    register_after_restore(after_restore)
    _hooks_registered = True
    return True
