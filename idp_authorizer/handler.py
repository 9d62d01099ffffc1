"""The Lambda adapter: ``idp_authorizer.handler.handler`` is the function Lambda calls.

Settings are read and providers built once, at cold start. A configuration error is logged once;
every request then fails closed with :class:`AuthorizerUnavailable` (API Gateway answers 500 and
does not cache it). Async callers use :func:`authorize`.

Behind serverless-offline (which sets ``IS_OFFLINE``), the 401 is *returned* as the string
``"Unauthorized"``: its Python runner has no error channel (a raised exception ends its interpreter
and every later request to the function times out), and that string is its convention for a 401.
On AWS the handler raises ``Exception("Unauthorized")``, as the Lambda runtime requires.

Where INIT is off the request's path (provisioned concurrency, SnapStart) the providers' keys are
fetched during it, and SnapStart's runtime hooks are registered: :mod:`idp_authorizer.aws.initialization`.
The garbage collector is off while this module imports and builds the authorizer: everything made
then lives as long as the container, so a collection would walk it all (a full pass costs tens of
milliseconds, as much as a fifth of the import) and free next to nothing. What init made is then
frozen out of later collections (:func:`gc.freeze`), and collection resumes.
"""

from __future__ import annotations

import gc

_collecting = gc.isenabled()
gc.disable()

import logging
import os
from typing import Any

from idp_authorizer.aws import initialization
from idp_authorizer.aws.compose import build_authorizer
from idp_authorizer.aws.runtime import Authorizer
from idp_authorizer.aws.scheduled import is_scheduled, scheduled_refresh
from idp_authorizer.aws.settings import load_settings
from idp_authorizer.core.errors import AuthorizerUnavailable, ConfigurationError
from idp_authorizer.infra.log import configure_logging

logger = logging.getLogger("idp_authorizer.handler")

_authorizer: Authorizer | None = None
_offline = False


def init() -> Authorizer | None:
    """(Re)build the authorizer from the environment; ``None`` when the configuration is bad."""
    global _authorizer, _offline  # noqa: PLW0603 - one authorizer per container is the point
    _authorizer = None
    _offline = os.environ.get("IS_OFFLINE", "").lower() in ("1", "true")
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        configure_logging()
        logger.error("invalid configuration, every request will fail closed: %s", exc.description)
        initialization.prepare(None, None)
        return None
    configure_logging(settings.log_level)
    try:
        _authorizer = build_authorizer(settings)
    except ConfigurationError as exc:
        logger.error("invalid configuration, every request will fail closed: %s", exc.description)
    initialization.prepare(_authorizer, settings)
    return _authorizer


def handler(event: Any, context: Any = None) -> dict[str, Any] | str:
    """Lambda entry point for every authorizer shape (REST TOKEN/REQUEST, HTTP API 1.0/2.0, WebSocket)."""
    if is_scheduled(event):  # EventBridge / Scheduler: refresh keys and rules (idp_authorizer.aws.scheduled)
        return scheduled_refresh(_authorizer)
    if _authorizer is None:
        raise AuthorizerUnavailable("configuration_error")
    if not _offline:
        return _authorizer.handle(event)
    try:
        return _authorizer.handle(event)
    except Exception as exc:
        if type(exc) is Exception and exc.args == ("Unauthorized",):
            return "Unauthorized"
        raise


async def authorize(event: Any) -> dict[str, Any]:
    """The same as :func:`handler`, for callers already running an event loop."""
    if _authorizer is None:
        raise AuthorizerUnavailable("configuration_error")
    return await _authorizer.authorize(event)


def close() -> None:
    """Release HTTP sessions and the event loop (before a snapshot, command-line tools and tests)."""
    if _authorizer is not None:
        _authorizer.close()


try:
    init()
finally:
    gc.freeze()
    if _collecting:
        gc.enable()
