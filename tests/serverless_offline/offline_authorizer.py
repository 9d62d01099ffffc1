"""The real handler behind serverless-offline 13, recording what the emulator sends.

The handler itself copes with serverless-offline's Python runner (it sets ``IS_OFFLINE``; the handler
then returns the string ``"Unauthorized"`` for a 401 instead of raising, see
:mod:`idp_authorizer.handler`). This wrapper only adds a record: when ``OFFLINE_EVENT_LOG`` names a
file, the route identity of every event and its header names (never a header value or token) are
appended to it as one JSON line, so the tests can pin what serverless-offline sends.
"""

import json
import os

from idp_authorizer import handler as lambda_handler

ROUTE_FIELDS = ("type", "version", "methodArn", "routeArn", "routeKey", "httpMethod", "resource", "path", "rawPath")
CONTEXT_FIELDS = ("httpMethod", "path", "resourcePath", "resourceId", "stage", "routeKey", "http", "accountId", "apiId")


def handler(event, context):
    _record(event)
    return lambda_handler.handler(event, context)


def _record(event):
    path = os.environ.get("OFFLINE_EVENT_LOG")
    if not path:
        return
    request_context = event.get("requestContext") or {}
    line = {
        "function": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
        "keys": sorted(event),
        "headerNames": sorted(event.get("headers") or {}),
        **{name: event[name] for name in ROUTE_FIELDS if name in event},
        "requestContext": {name: request_context[name] for name in CONTEXT_FIELDS if name in request_context},
    }
    with open(path, "a", encoding="utf-8") as log:
        log.write(json.dumps(line, sort_keys=True) + "\n")
