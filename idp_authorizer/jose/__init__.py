"""JOSE: the JWS compact serialization and JWT claims (RFC 7515, 7519, 9068), and JWK import (RFC 7517).

Pure except for key import (joserfc) and signature verification (cryptography); no network.
"""
