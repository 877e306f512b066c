"""Verdict 1, "will the pool accept it?": OpenSSL's own rules, as xapi's stunnel client
applies them. Runs the local ``openssl verify`` on temporary files: the verdict must come
from OpenSSL itself, not from a re-implementation."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509

from wlbplan.certs.chain import is_self_signed
from wlbplan.certs.common import _OPENSSL_TIMEOUT, Mode, NameCheck, _ip_or_none, _when
from wlbplan.certs.parse import _spki_der, to_pem
from wlbplan.children import run_child
from wlbplan.errors import VerifyError


@dataclass(frozen=True)
class Verdict:
    """Would the pool's stunnel accept the served chain? ``reason`` is OpenSSL's text."""

    ok: bool
    reason: str
    code: int | None = None  # X509_V_ERR_* number when OpenSSL gave one
    depth: int | None = None  # 0 = the leaf

    def __str__(self) -> str:
        if self.ok:
            return "accepted"
        where = f" (at depth {self.depth})" if self.depth is not None else ""
        return f"refused: {self.reason}{where}"


# stunnel's own words when a check fails outside OpenSSL's verify.
NO_TRUST_REASON: Final = "no trusted certificates found (the pool's CA bundle is empty)"
NOT_LOCAL_REASON: Final = (
    "certificate not found in local repository (xapi before 24.40 verifies the peer: "
    "the WLB certificate itself must be in the pool's bundle)"
)


@dataclass(frozen=True)
class _Check:
    name: str
    at: dt.datetime | None
    name_check: NameCheck
    auth_level: int | None


def pool_accepts(
    chain_served: Sequence[x509.Certificate],
    trust: Sequence[x509.Certificate],
    name: str,
    *,
    mode: Mode,
    at: dt.datetime | None = None,
    name_check: NameCheck = "checkHost",
    auth_level: int | None = None,
) -> Verdict:
    """The pool's verdict on what WLB serves, from ``openssl verify`` run locally.

    ``chain_served``: leaf first, then whatever else the appliance sends.
    ``trust``: the pool's bundle (xapi-stunnel-ca-bundle.pem). ``name``: the host part
    of wlb-url. ``mode``: ``current`` (xapi >= 24.40, verifyChain: a chain to any
    anchor) or ``legacy`` (verifyPeer: the leaf itself must be in the bundle).

    As a TLS client, libssl checks the ``sslserver`` purpose (EKU/keyUsage), so this
    does too - plain ``openssl verify`` would not. ``auth_level`` models the pool's
    OpenSSL security level (key sizes, SHA-1 signatures); None skips it, like
    ``openssl verify`` and OpenSSL before 1.1.0.
    """
    if not chain_served:
        raise VerifyError("the appliance served no certificate")
    if mode not in ("current", "legacy"):
        raise ValueError(f"unknown verification mode {mode!r}")
    if not trust:
        return Verdict(ok=False, reason=NO_TRUST_REASON)
    check = _Check(name=name, at=at, name_check=name_check, auth_level=auth_level)
    leaf = chain_served[0]
    if mode == "current":
        return _openssl_verify(leaf, list(chain_served[1:]), list(trust), check, partial=False)
    return _legacy_verdict(leaf, trust, check)


def _legacy_verdict(
    leaf: x509.Certificate, trust: Sequence[x509.Certificate], check: _Check
) -> Verdict:
    # stunnel verifyPeer without verifyChain rejects at depth 0 only (issuer errors
    # there and all errors above are ignored); then checkHost; then the leaf must
    # match an installed certificate by subject and public key (cert_check_local).
    # The leaf as the only partial-chain anchor gives OpenSSL's depth-0 checks.
    verdict = _openssl_verify(leaf, [], [leaf], check, partial=True)
    if verdict.ok and is_self_signed(leaf) and leaf not in trust:
        # A self-signed leaf is its own issuer: OpenSSL looks it up in the CAfile and, not
        # finding these very bytes, refuses at depth 0 (measured with stunnel 5.68), even
        # when a certificate with the same name and key is installed.
        return Verdict(ok=False, reason="self-signed certificate", code=18, depth=0)
    if verdict.ok and not locally_installed(leaf, trust):
        return Verdict(ok=False, reason=NOT_LOCAL_REASON)
    return verdict


def locally_installed(leaf: x509.Certificate, trust: Iterable[x509.Certificate]) -> bool:
    """stunnel's verifyPeer test: a trusted certificate with the same subject and key."""
    spki = _spki_der(leaf.public_key())
    return any(c.subject == leaf.subject and _spki_der(c.public_key()) == spki for c in trust)


_ERROR_LINE = re.compile(r"^error (\d+) at (\d+) depth lookup: (.+)$", re.MULTILINE)


def _openssl_verify(
    leaf: x509.Certificate,
    untrusted: list[x509.Certificate],
    anchors: list[x509.Certificate],
    check: _Check,
    *,
    partial: bool,
) -> Verdict:
    with tempfile.TemporaryDirectory(prefix="wlbplan-verify-") as tmp:
        folder = Path(tmp)
        argv = [_openssl(), "verify", *_verify_options(check, partial)]
        argv += ["-CAfile", _write(folder / "trust.pem", anchors)]
        if untrusted:
            argv += ["-untrusted", _write(folder / "untrusted.pem", untrusted)]
        argv.append(_write(folder / "leaf.pem", [leaf]))
        try:
            done = run_child(argv, timeout=_OPENSSL_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise VerifyError(f"could not run openssl verify: {err}") from None
    return _verdict_from(done.returncode, done.stdout + done.stderr)


def _verify_options(check: _Check, partial: bool) -> list[str]:
    # No default CA path/store: only the pool's bundle may count as trust, as in
    # stunnel's CAfile= (SSL_CTX_load_verify_locations never adds the system store).
    options = ["-no-CApath", "-no-CAstore", "-purpose", "sslserver"]
    options += _name_option(check.name, check.name_check)
    if partial:
        options.append("-partial_chain")
    if check.at is not None:
        options += ["-attime", str(int(_when(check.at).timestamp()))]
    if check.auth_level is not None:
        options += ["-auth_level", str(check.auth_level)]
    return options


def _name_option(name: str, name_check: NameCheck) -> list[str]:
    address = _ip_or_none(name)
    if name_check == "auto" and address is not None:
        return ["-verify_ip", str(address)]
    return ["-verify_hostname", name]


def _verdict_from(returncode: int, output: str) -> Verdict:
    if returncode == 0:
        return Verdict(ok=True, reason="ok")
    match = _ERROR_LINE.search(output)
    if match is None:
        lines = [line for line in output.splitlines() if line.strip()]
        last = lines[-1] if lines else f"exit status {returncode}"
        return Verdict(ok=False, reason=f"openssl could not verify: {last}")
    return Verdict(
        ok=False, reason=match.group(3).strip(), code=int(match.group(1)), depth=int(match.group(2))
    )


def _openssl() -> str:
    path = shutil.which("openssl")
    if path is None:
        raise VerifyError("openssl is not installed; it is needed to judge what the pool accepts")
    return path


def _write(path: Path, certs: Iterable[x509.Certificate]) -> str:
    path.write_bytes(to_pem(certs))
    return str(path)
