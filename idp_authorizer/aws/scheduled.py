"""Scheduled refresh: an EventBridge or EventBridge Scheduler invocation keeps the authorizer's state fresh.

A rule or schedule that invokes the function every few minutes (``"source": "aws.events"`` or
``"aws.scheduler"``, ``"detail-type": "Scheduled Event"``) is not an authorizer request: it refreshes the
discovery documents and key sets that leave their maximum age within :data:`MARGIN_SECONDS`, reloads the
route rules (``IDP_ROUTES_URL``), writes one log line and returns a small JSON status. It raises nothing,
so the scheduler never retries it; every other event that is not API Gateway's still fails closed.
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-run-lambda-schedule.html
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from idp_authorizer.core.errors import UpstreamUnavailable

if TYPE_CHECKING:
    from idp_authorizer.aws.runtime import Authorizer

logger = logging.getLogger("idp_authorizer.scheduled")
SOURCES = frozenset({"aws.events", "aws.scheduler"})
MARGIN_SECONDS = 600.0
"""A document that would age out within this long is fetched now (two runs of a 5-minute schedule)."""


def is_scheduled(event: object) -> bool:
    """Whether ``event`` is a scheduled invocation (a dict lookup, cheap enough for every request)."""
    return type(event) is dict and event.get("detail-type") == "Scheduled Event" and event.get("source") in SOURCES


async def refresh(authorizer: Authorizer) -> dict[str, Any]:
    """Refresh what is about to age out; the status says how many documents were fetched and what failed."""
    fetched, failed = 0, []
    for document in authorizer.documents:
        if not document.expires_within(MARGIN_SECONDS):
            continue
        try:
            await document.refresh()
            fetched += 1
        except UpstreamUnavailable as exc:
            failed.append(str(exc.code))
    status: dict[str, Any] = {"status": "ok" if not failed else "degraded", "refreshed": fetched, "failed": failed}
    if authorizer.routes is not None:
        loaded = await authorizer.routes.reload()
        problem = authorizer.routes.problem
        status["routes"] = "loaded" if problem is None else str(problem.code)
        if loaded is None or problem is not None:
            status["status"] = "degraded"
    return status


def scheduled_refresh(authorizer: Authorizer | None) -> dict[str, Any]:
    """The handler's answer to a scheduled event, on the container's event loop; one log line, never an error."""
    if authorizer is None:
        status: dict[str, Any] = {"status": "configuration_error"}
    else:
        status = authorizer._run(refresh(authorizer))
    log = logger.info if status["status"] == "ok" else logger.warning
    log("scheduled refresh: %s", status)
    return status
