"""The real handler behind serverless-offline 13, plus the one piece of the Lambda runtime its Python runner lacks.

On AWS, the Lambda runtime reports an exception the handler raises as an error result, and API Gateway
answers 401 when its message is exactly ``Unauthorized`` (500 for any other error). serverless-offline's
Python runner (``python-runner/invoke.py``) has no error channel: an exception ends its interpreter, the
request waits for the function timeout, and every later request to that function times out as well.
Its own convention for a 401 is a result equal to the string ``"Unauthorized"``, so that is what this
adapter returns for exactly ``Exception("Unauthorized")``. Any other exception propagates unchanged
(AWS: 500; here: a traceback in the emulator's log, then a timeout), and the tests look for that.

When ``OFFLINE_EVENT_LOG`` names a file, the route identity of every event and its header names
(never a header value or token) are appended to it as one JSON line, so the tests can pin what
serverless-offline sends.
"""

import json
import os

from idp_authorizer import handler as lambda_handler

ROUTE_FIELDS = ("type", "version", "methodArn", "routeArn", "routeKey", "httpMethod", "resource", "path", "rawPath")
CONTEXT_FIELDS = ("httpMethod", "path", "resourcePath", "resourceId", "stage", "routeKey", "http", "accountId", "apiId")


def handler(event, context):
    _record(event)
    try:
        return lambda_handler.handler(event, context)
    except Exception as exc:
        if type(exc) is Exception and exc.args == ("Unauthorized",):
            return "Unauthorized"
        raise


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
