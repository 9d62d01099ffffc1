"""A private certificate authority made for one test, and the dev IdP served over TLS with its certificate.

:class:`PrivateCa` writes ``ca.pem`` (what ``IDP_CA_BUNDLE`` names) and signs a server certificate for
``127.0.0.1`` and ``localhost``; :class:`TlsIdp` is :class:`~idp_authorizer.tools.devidp.DevIdp` on
``https://127.0.0.1:<port>`` with that certificate, so only a client trusting the CA can talk to it.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from idp_authorizer.tools.devidp import DevIdp
from idp_authorizer.tools.devserver import BackgroundServer


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


class PrivateCa:
    """A self-signed CA and one server certificate it issued, as PEM files under ``directory``."""

    def __init__(self, directory: Path) -> None:
        now = datetime.datetime.now(datetime.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = (
            x509.CertificateBuilder()
            .subject_name(_name("idp-authorizer test CA"))
            .issuer_name(_name("idp-authorizer test CA"))
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        server_key = ec.generate_private_key(ec.SECP256R1())
        names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
        server = (
            x509.CertificateBuilder()
            .subject_name(_name("127.0.0.1"))
            .issuer_name(ca.subject)
            .public_key(server_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        self.bundle = directory / "ca.pem"
        """The PEM file a client trusts (``IDP_CA_BUNDLE``)."""
        self.bundle.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        self._chain = directory / "server.pem"
        self._key = directory / "server.key"
        self._chain.write_bytes(server.public_bytes(serialization.Encoding.PEM))
        self._key.write_bytes(
            server_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self._chain, self._key)
        return context


class TlsIdp(DevIdp):
    """The dev IdP on ``https://127.0.0.1:<port>``, its certificate issued by ``ca``."""

    def __init__(self, ca: PrivateCa, audience: str = "demo-api") -> None:
        super().__init__(audience=audience)
        self._ca = ca

    @property
    def issuer(self) -> str:
        return f"https://{self.host}:{self.port}"

    def start(self) -> TlsIdp:
        self._server = BackgroundServer("tls-idp", self.host, self.port)
        self.port = self._server.start(self.app(), self._ca.server_context())
        return self
