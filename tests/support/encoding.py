"""Byte helpers for building tokens by hand."""

import base64


def b64(data: bytes) -> str:
    """base64url without padding, as in a JWS."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
