"""The AWS Lambda adapter: settings read once at cold start, the composition root, the runtime loop.

``idp_authorizer.handler.handler`` (the Lambda handler string) is its entry point.
"""
