"""Writes the public example certificates the example specs name (no keys are kept):
a root CA, an issuing CA and leaves for the example FQDNs. Run it again to renew them:

    .venv/bin/python examples/certs/make-examples.py
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HERE = Path(__file__).resolve().parent
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key: rsa.RSAPrivateKey, issuer: x509.Name, signer: rsa.RSAPrivateKey,
          days: int, ca: bool, dns: str | None = None) -> x509.Certificate:
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW).not_valid_after(NOW + dt.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
    else:
        assert dns is not None
        builder = (builder
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), False)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                                  False))
    return builder.sign(signer, hashes.SHA256())


def _write(name: str, cert: x509.Certificate) -> None:
    (HERE / name).write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def main() -> None:
    root_key, int_key = (rsa.generate_private_key(65537, 3072) for _ in range(2))
    root = _cert("Example Root CA", root_key, _name("Example Root CA"), root_key, 3650, True)
    issuing = _cert("Example Issuing CA", int_key, root.subject, root_key, 1825, True)
    for names in (("root.pem", "example-root-ca.pem"), ("intermediate.pem",
                                                        "example-issuing-ca.pem")):
        for name in names:
            _write(name, root if "root" in name else issuing)
    for name, fqdn in (("wlb-vpx.pem", "wlb-vpx.example.com"),
                       ("prod-east.pem", "wlb-east.example.com")):
        leaf_key = rsa.generate_private_key(65537, 3072)
        _write(name, _cert(fqdn, leaf_key, issuing.subject, int_key, 397, False, fqdn))


if __name__ == "__main__":
    main()
