"""Infrastructure the providers use: the HTTP client, the caches (in-process and shared), key sets, logs, metrics.

Depends on the core and JOSE, never on providers, the AWS adapter or the tools.
"""
