"""Operator tools: the ``idp-authorizer`` command (doctor, invoke, package, dev IdP, demo).

Never imported on the Lambda path (a test pins it) and left out of the Lambda zip.
"""
