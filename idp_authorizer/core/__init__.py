"""The pure core: events, route rules, IAM policies, outcomes, the Principal and the errors.

No I/O and no third-party imports (no aiohttp, aiocache, pydantic or cryptography): everything here is
decided from values, so it is tested with tables and property tests and costs nothing at cold start.
"""
