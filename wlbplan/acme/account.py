"""The ACME account key: read from ``acme.account.key_file``, or made on first use in the
state folder (0600 from its first instant). Never printed, journaled or logged; a key file
that group or others can read is refused, as OpenSSH refuses such a private key."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from josepy.jwa import ES256, RS256, JWASignature
from josepy.jwk import JWK, JWKEC, JWKRSA

from wlbplan.errors import AcmeError
from wlbplan.limits import PEM, read_file
from wlbplan.model.spec import AcmeSpec
from wlbplan.spec.files import secret_file_problem


def key_path(acme: AcmeSpec, state_dir: Path) -> Path:
    """Where the account key is: the spec's, else one per directory in the state folder."""
    if acme.account.key_file is not None:
        return acme.account.key_file
    short = hashlib.sha256(acme.directory.encode()).hexdigest()[:16]
    return state_dir / "acme" / f"account-{short}.key"


def load_or_create(path: Path, *, create: bool) -> tuple[JWK, JWASignature]:
    """The account key and the JWS algorithm it signs with. ``create``: make a new key
    when there is none (the default location); a key_file the spec names must exist."""
    if not path.exists():
        if not create:
            raise AcmeError(f"the ACME account key {path} (acme.account.key_file) does not "
                            "exist; leave key_file out to have wlbplan make one")
        _create(path)
    problem = secret_file_problem(path)
    if problem:
        raise AcmeError(f"refusing the ACME account key {path}: {problem}")
    try:
        key = serialization.load_pem_private_key(read_file(path, PEM), password=None)
    except (OSError, ValueError, TypeError) as err:
        # Never the content: only why it cannot be used.
        why = err.strerror if isinstance(err, OSError) else "not an unencrypted PEM private key"
        raise AcmeError(f"cannot use the ACME account key {path}: {why}") from None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1":
        return JWKEC(key=key), ES256
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048:
        return JWKRSA(key=key), RS256
    raise AcmeError(f"the ACME account key {path} must be an EC P-256 or RSA (2048 bits or "
                    "more) key")


def _create(path: Path) -> None:
    folder = path.parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    # O_EXCL: never through a file (or link) someone put there first; 0600 from the start.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
