"""wlbplan.certs: parsing, fingerprints, chains and the two verdicts.

Every pool verdict is checked twice: against the expected outcome written in the case,
and against ``openssl verify`` run here directly (the oracle). Where stunnel is
installed, the same cases also go through a real stunnel client configured exactly
as xapi configures it for WLB (ocaml/libs/stunnel/stunnel.ml).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from certs_factory import (
    CLIENT_AUTH_ONLY,
    DAY,
    FQDN,
    IP,
    appliance,
    expired,
    fixture,
    intermediate,
    key,
    leaf,
    make_pki,
    not_yet_valid,
    root,
    with_eku,
)
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import example, given, settings
from hypothesis import strategies as st
from property_settings import PARSER

from wlbplan import certs
from wlbplan.core import rules
from wlbplan.errors import VerifyError
from wlbplan.lab import pki

# ------------------------------------------------------------------ the oracle


def _pem(items: list[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in items)


def _spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def run_openssl_verify(
    leaf_cert: x509.Certificate,
    cafile: list[x509.Certificate],
    untrusted: list[x509.Certificate],
    flags: list[str],
) -> tuple[bool, str | None]:
    """`openssl verify` exactly as an operator would type it; (ok, first error text)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "ca.pem").write_bytes(_pem(cafile))
        (folder / "leaf.pem").write_bytes(_pem([leaf_cert]))
        argv = ["openssl", "verify", "-no-CApath", "-no-CAstore", *flags]
        argv += ["-CAfile", str(folder / "ca.pem")]
        if untrusted:
            (folder / "chain.pem").write_bytes(_pem(untrusted))
            argv += ["-untrusted", str(folder / "chain.pem")]
        done = subprocess.run([*argv, str(folder / "leaf.pem")], capture_output=True, text=True)
    if done.returncode == 0:
        return True, None
    found = re.search(r"error \d+ at \d+ depth lookup: (.+)", done.stdout + done.stderr)
    assert found, done.stderr
    return False, found.group(1).strip()


@dataclass(frozen=True)
class Case:
    served: list[x509.Certificate]
    trust: list[x509.Certificate]
    name: str = FQDN
    mode: certs.Mode = "current"
    name_check: certs.NameCheck = "checkHost"
    auth_level: int | None = None
    at: dt.datetime | None = None
    # the leaf's private key, for the real-stunnel cross-check (None: skip it there)
    leaf_key: pki.PrivateKey | None = field(default=None, compare=False)


def oracle(case: Case) -> tuple[bool, str | None]:
    """The pool's verdict spelled out with the openssl CLI.

    current (verifyChain): the whole chain to an anchor in the bundle.
    legacy (verifyPeer): only depth-0 errors count (the leaf as its own anchor), and
    then the bundle must hold a certificate with the leaf's subject and public key.
    Always: -purpose sslserver (libssl sets it for every TLS client), checkHost's
    name match (-verify_hostname even for an IP literal).
    """
    flags = ["-purpose", "sslserver"]
    is_ip = re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]+", case.name) is not None
    flags += ["-verify_ip" if case.name_check == "auto" and is_ip else "-verify_hostname"]
    flags += [case.name]
    if case.at is not None:
        flags += ["-attime", str(int(case.at.timestamp()))]
    if case.auth_level is not None:
        flags += ["-auth_level", str(case.auth_level)]
    leaf_cert = case.served[0]
    if case.mode == "current":
        return run_openssl_verify(leaf_cert, case.trust, case.served[1:], flags)
    ok, reason = run_openssl_verify(leaf_cert, [leaf_cert], [], [*flags, "-partial_chain"])
    installed = any(
        t.subject == leaf_cert.subject and _spki(t) == _spki(leaf_cert) for t in case.trust
    )
    if ok and not installed:
        return False, "certificate not found in local repository"
    return ok, reason


# ------------------------------------------------------------------------ cases


def _good(mode: certs.Mode = "current", *, with_leaf: bool = False) -> Case:
    p = make_pki()
    trust = [p.root.cert, p.leaf.cert] if with_leaf else [p.root.cert]
    return Case(p.served, trust, mode=mode, leaf_key=p.leaf.key)


def _leaf_only_trust(mode: certs.Mode) -> Case:
    p = make_pki()
    return Case(p.served, [p.leaf.cert], mode=mode, leaf_key=p.leaf.key)


def _out_of_order() -> Case:
    top = root()
    first = intermediate(top, cn="Int CA 1", label="int1")
    second = intermediate(first, cn="Int CA 2", label="int2")
    end = leaf(second)
    return Case([end.cert, first.cert, second.cert], [top.cert], leaf_key=end.key)


def _missing_intermediate() -> Case:
    p = make_pki()
    return Case([p.leaf.cert], [p.root.cert], leaf_key=p.leaf.key)


def _with_leaf(mode: certs.Mode = "current", trust_leaf: bool = False, **kw: object) -> Case:
    p = make_pki(**kw)
    trust = [p.root.cert, p.leaf.cert] if trust_leaf else [p.root.cert]
    return Case(p.served, trust, mode=mode, leaf_key=p.leaf.key)


def _expired_intermediate(mode: certs.Mode) -> Case:
    top = root()
    middle = intermediate(top, **expired())
    end = leaf(middle)
    trust = [top.cert, end.cert] if mode == "legacy" else [top.cert]
    return Case([end.cert, middle.cert], trust, mode=mode, leaf_key=end.key)


def _named(name: str, name_check: certs.NameCheck = "checkHost", **kw: object) -> Case:
    p = make_pki(**kw)
    return Case(p.served, [p.root.cert], name=name, name_check=name_check, leaf_key=p.leaf.key)


def _sha1(auth_level: int | None = None) -> Case:
    top = fixture("openssl-root.pem")
    return Case([fixture("leaf-sha1.pem")], [top], auth_level=auth_level)


def _rsa1024(auth_level: int | None = None) -> Case:
    p = make_pki(key=key("weak", "rsa", 1024))
    return Case(p.served, [p.root.cert], auth_level=auth_level, leaf_key=p.leaf.key)


def _appliance(mode: certs.Mode = "current", trusted: bool = True) -> Case:
    own = appliance()
    trust = [own.cert] if trusted else [root().cert]
    return Case([own.cert], trust, mode=mode, leaf_key=own.key)


def _openssl_appliance(name: str = "appliance-openssl.pem", auth_level: int | None = None) -> Case:
    own = fixture(name)
    return Case([own], [own], auth_level=auth_level)


def _served_foreign_root() -> Case:
    p = make_pki()
    return Case([*p.served, p.root.cert], [root("other", cn="Other Root").cert])


def _eku_client_only() -> Case:
    top = root()
    middle = intermediate(top)
    end = with_eku(middle, CLIENT_AUTH_ONLY)
    return Case([end.cert, middle.cert], [top.cert], leaf_key=end.key)


def _legacy_reissued() -> Case:
    # Same subject and key, new certificate: stunnel's verifyPeer compares those two.
    p = make_pki()
    again = leaf(p.intermediate, days=200)
    return Case(p.served, [again.cert], mode="legacy", leaf_key=p.leaf.key)


def _later(days: int) -> Case:
    p = make_pki()
    return Case(p.served, [p.root.cert], at=pki.now() + days * DAY)


NOT_LOCAL = "certificate not found in local repository"
NO_ISSUER = "unable to get local issuer certificate"
EXPIRED = "certificate has expired"
MISMATCH = "hostname mismatch"

# id: (case, expected ok, expected reason, cross-check with the local stunnel?)
# The stunnel cross-check skips cases whose outcome depends on the security level
# (Debian builds stunnel/OpenSSL at level 2), on -attime, or on -verify_ip.
CASES: dict[str, tuple[Callable[[], Case], bool, str | None, bool]] = {
    "good chain": (_good, True, None, True),
    "good chain, legacy, root only": (lambda: _good("legacy"), False, NOT_LOCAL, True),
    "good chain, legacy, leaf+root": (
        lambda: _good("legacy", with_leaf=True), True, None, True),
    "good chain, current, leaf+root": (lambda: _good(with_leaf=True), True, None, True),
    "CA-signed leaf alone in trust, current": (
        lambda: _leaf_only_trust("current"), False, NO_ISSUER, True),
    "CA-signed leaf alone in trust, legacy": (
        lambda: _leaf_only_trust("legacy"), True, None, True),
    "legacy, same subject and key reissued": (_legacy_reissued, True, None, True),
    "intermediates out of order": (_out_of_order, True, None, True),
    "missing intermediate": (_missing_intermediate, False, NO_ISSUER, True),
    "expired leaf": (lambda: _with_leaf(**expired()), False, EXPIRED, True),
    "expired leaf, legacy": (
        lambda: _with_leaf("legacy", trust_leaf=True, **expired()), False, EXPIRED, True),
    "expired intermediate": (lambda: _expired_intermediate("current"), False, EXPIRED, True),
    "expired intermediate, legacy": (
        lambda: _expired_intermediate("legacy"), True, None, True),
    "leaf not yet valid": (
        lambda: _with_leaf(**not_yet_valid()), False, "certificate is not yet valid", True),
    "checked at a later time": (lambda: _later(400), False, EXPIRED, False),
    "CN and SAN name another host": (
        lambda: _named(FQDN, cn="other.example.com", sans=["other.example.com"]),
        False, MISMATCH, True),
    "name only in SAN": (lambda: _named(FQDN, cn="WLB appliance"), True, None, True),
    "name only in CN": (lambda: _named(FQDN, sans=None), True, None, True),
    "CN matches, DNS SAN does not": (
        lambda: _named(FQDN, sans=["other.example.com"]), False, MISMATCH, True),
    "legacy, leaf trusted, wrong name": (
        lambda: Case(_good().served, _good(with_leaf=True).trust, name="x.example.com",
                     mode="legacy", leaf_key=_good().leaf_key),
        False, MISMATCH, True),
    "IP name, IP SAN, checkHost": (
        lambda: _named(IP, sans=[FQDN, IP]), False, MISMATCH, True),
    "IP name, IP SAN, auto": (
        lambda: _named(IP, "auto", sans=[FQDN, IP]), True, None, False),
    "IP name, no IP SAN, auto": (
        lambda: _named(IP, "auto"), False, "IP address mismatch", False),
    "IP name, CN=IP without SAN, checkHost": (
        lambda: _named(IP, cn=IP, sans=None), True, None, True),
    "SHA-1 signed leaf": (_sha1, True, None, False),
    "SHA-1 signed leaf, security level 1": (
        lambda: _sha1(1), False, "CA signature digest algorithm too weak", False),
    "RSA 1024 leaf": (_rsa1024, True, None, False),
    "RSA 1024 leaf, security level 2": (
        lambda: _rsa1024(2), False, "EE certificate key too weak", False),
    "self-signed CA:TRUE appliance": (_appliance, True, None, True),
    "self-signed CA:TRUE appliance, legacy": (lambda: _appliance("legacy"), True, None, True),
    "openssl req -x509 appliance": (_openssl_appliance, True, None, False),
    # an anchor's own signature is never checked, whatever the security level
    "SHA-1 self-signed appliance, security level 1": (
        lambda: _openssl_appliance("appliance-sha1.pem", 1), True, None, False),
    "self-signed appliance not trusted": (
        lambda: _appliance(trusted=False), False, "self-signed certificate", True),
    "served root not trusted": (
        _served_foreign_root, False, "self-signed certificate in certificate chain", False),
    "EKU clientAuth only": (_eku_client_only, False, "unsuitable certificate purpose", True),
}


def _verdict(case: Case) -> certs.Verdict:
    return certs.pool_accepts(
        case.served, case.trust, case.name, mode=case.mode, at=case.at,
        name_check=case.name_check, auth_level=case.auth_level,
    )


@pytest.mark.parametrize("case_id", list(CASES))
def test_pool_accepts_matches_expectation_and_openssl(case_id: str) -> None:
    build, expected_ok, expected_reason, _ = CASES[case_id]
    case = build()
    verdict = _verdict(case)
    oracle_ok, oracle_reason = oracle(case)

    assert verdict.ok is expected_ok, verdict
    assert (verdict.ok, oracle_ok) == (expected_ok, expected_ok)
    if expected_reason is not None:
        assert verdict.reason.startswith(expected_reason), verdict
        assert oracle_reason is not None
        assert verdict.reason.startswith(oracle_reason)


def test_empty_trust_is_refused_with_stunnels_words() -> None:
    verdict = certs.pool_accepts(make_pki().served, [], FQDN, mode="current")
    assert not verdict.ok
    assert verdict.reason == certs.NO_TRUST_REASON


def test_verdict_reports_depth_and_code() -> None:
    verdict = _verdict(_expired_intermediate("current"))
    assert (verdict.code, verdict.depth) == (10, 1)  # X509_V_ERR_CERT_HAS_EXPIRED
    assert str(verdict) == "refused: certificate has expired (at depth 1)"


def test_no_served_certificate_is_an_error() -> None:
    with pytest.raises(VerifyError):
        certs.pool_accepts([], [root().cert], FQDN, mode="current")


def test_system_trust_store_never_counts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A default CA directory that would trust the root must be ignored: only the
    # pool's bundle is trust (stunnel's CAfile=).
    p = make_pki()
    (tmp_path / "root.pem").write_bytes(p.root.cert_pem)
    subprocess.run(["openssl", "rehash", str(tmp_path)], check=True, capture_output=True)
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "root.pem"))
    verdict = certs.pool_accepts(p.served, [root("other", cn="Other").cert], FQDN, mode="current")
    assert not verdict.ok


def test_tls_client_checks_server_purpose_unlike_plain_openssl_verify() -> None:
    """Why pool_accepts passes -purpose sslserver: libssl does, for every TLS client."""
    case = _eku_client_only()
    assert run_openssl_verify(case.served[0], case.trust, case.served[1:], [])[0]
    assert case.leaf_key is not None
    error = _python_tls_handshake(case.served, case.leaf_key, case.trust)
    assert error == "unsuitable certificate purpose"


def _python_tls_handshake(
    served: list[x509.Certificate], leaf_key: pki.PrivateKey, trust: list[x509.Certificate]
) -> str | None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "chain.pem").write_bytes(_pem(served))
        (folder / "key.pem").write_bytes(pki.key_pem(leaf_key))
        (folder / "ca.pem").write_bytes(_pem(trust))
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.load_cert_chain(folder / "chain.pem", folder / "key.pem")
        client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client.load_verify_locations(folder / "ca.pem")
    client.check_hostname = False
    server_in, server_out, client_in, client_out = (ssl.MemoryBIO() for _ in range(4))
    ends = [
        client.wrap_bio(client_in, client_out),
        server.wrap_bio(server_in, server_out, server_side=True),
    ]
    for _ in range(10):
        for end in ends:
            try:
                end.do_handshake()
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLCertVerificationError as err:
                return err.verify_message
        server_in.write(client_out.read())
        client_in.write(server_out.read())
    return None


# ------------------------------------------- cross-check with a real stunnel client

STUNNEL = shutil.which("stunnel") or shutil.which("stunnel4")


def _serve_once(served: list[x509.Certificate], leaf_key: pki.PrivateKey, folder: Path) -> int:
    (folder / "chain.pem").write_bytes(_pem(served))
    (folder / "key.pem").write_bytes(pki.key_pem(leaf_key))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_ciphers("ALL:@SECLEVEL=0")
    context.load_cert_chain(folder / "chain.pem", folder / "key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(15)

    def answer() -> None:
        try:
            conn, _ = listener.accept()
            with context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except (OSError, ssl.SSLError):
            pass  # the client refused us: that is the point of some cases
        finally:
            listener.close()

    threading.Thread(target=answer, daemon=True).start()
    return int(listener.getsockname()[1])


def stunnel_verdict(case: Case) -> tuple[bool, str]:
    """Connect with stunnel configured as xapi's 'appliance' profile; (accepted, log)."""
    assert STUNNEL is not None
    assert case.leaf_key is not None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        port = _serve_once(case.served, case.leaf_key, folder)
        (folder / "bundle.pem").write_bytes(_pem(case.trust))
        verify = "verifyChain=yes" if case.mode == "current" else "verifyPeer=yes"
        config = [
            "client=yes", "foreground=yes", "debug=7", f"connect=127.0.0.1:{port}",
            "sslVersion = TLSv1.2",
            "ciphers = ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256",
            "curve = secp384r1", f"checkHost={case.name}", verify,
            f"CAfile={folder / 'bundle.pem'}", "",
        ]
        (folder / "client.conf").write_text("\n".join(config))
        done = subprocess.run(
            [STUNNEL, str(folder / "client.conf")], input=b"", capture_output=True, timeout=30
        )
    log = done.stderr.decode(errors="replace")
    accepted = "Certificate accepted at depth=0" in log and "Rejected by CERT" not in log
    return accepted, log


@pytest.mark.lab
@pytest.mark.skipif(STUNNEL is None, reason="stunnel is not installed")
@pytest.mark.parametrize("case_id", [k for k, v in CASES.items() if v[3]])
def test_pool_accepts_matches_real_stunnel(case_id: str) -> None:
    case = CASES[case_id][0]()
    verdict = _verdict(case)
    accepted, log = stunnel_verdict(case)
    assert verdict.ok is accepted, log
    if not accepted:  # refused by verification, not by a broken connection
        assert "Rejected by CERT" in log, log
    said = re.search(r"CERT: Pre-verification error: (.+)", log)
    if said:
        assert verdict.reason == said.group(1).strip(), log


# ------------------------------------------------------------------- order_chain


def test_order_chain_keeps_a_well_ordered_chain() -> None:
    p = make_pki()
    chain = certs.order_chain(p.leaf.cert, [p.intermediate.cert, p.root.cert])
    assert chain.certs == (p.leaf.cert, p.intermediate.cert, p.root.cert)
    assert not chain.reordered
    assert chain.complete
    assert chain.problem is None


def test_order_chain_reorders_and_says_so() -> None:
    case = _out_of_order()
    top = case.trust[0]
    first, second = case.served[1], case.served[2]
    chain = certs.order_chain(case.served[0], [top, first, second])
    assert chain.certs == (case.served[0], second, first, top)
    assert chain.reordered
    assert chain.complete


def test_order_chain_names_the_missing_issuer() -> None:
    p = make_pki()
    chain = certs.order_chain(p.leaf.cert, [p.root.cert])
    assert chain.certs == (p.leaf.cert,)
    assert chain.missing_issuer == "CN=Int CA"
    assert chain.problem is not None
    assert "'CN=Int CA'" in chain.problem
    assert chain.unused == (p.root.cert,)


def test_order_chain_ignores_an_impostor_with_the_right_name() -> None:
    p = make_pki()
    impostor = intermediate(p.root, label="impostor")  # "CN=Int CA", another key
    chain = certs.order_chain(p.leaf.cert, [impostor.cert, p.intermediate.cert, p.root.cert])
    assert chain.certs == (p.leaf.cert, p.intermediate.cert, p.root.cert)
    assert chain.unused == (impostor.cert,)


def test_order_chain_without_root_is_incomplete() -> None:
    p = make_pki()
    chain = certs.order_chain(p.leaf.cert, p.served[1:])
    assert chain.missing_issuer == "CN=Test Root CA"
    assert not chain.reordered


def test_order_chain_follows_sha1_signatures() -> None:
    # cryptography refuses verify_directly_issued_by() on SHA-1; ordering must not.
    top = fixture("openssl-root.pem")
    chain = certs.order_chain(fixture("leaf-sha1.pem"), [top])
    assert chain.certs[-1] == top
    assert chain.complete


def test_order_chain_drops_duplicates_and_the_leaf_itself() -> None:
    p = make_pki()
    chain = certs.order_chain(p.leaf.cert, [p.leaf.cert, *p.served[1:], p.intermediate.cert])
    assert chain.certs == (p.leaf.cert, p.intermediate.cert)
    assert chain.unused == ()


# ---------------------------------------------------------- describe / fingerprints


def _openssl_x509(cert: x509.Certificate, *options: str) -> str:
    done = subprocess.run(
        ["openssl", "x509", "-noout", *options], input=_pem([cert]),
        capture_output=True, check=True,
    )
    return done.stdout.decode().strip()


def test_describe_a_ca_signed_leaf() -> None:
    p = make_pki(sans=[FQDN, IP], server_auth=True)
    info = certs.describe(p.leaf.cert)
    assert info.subject == f"CN={FQDN}"
    assert info.common_name == FQDN
    assert info.dns_names == (FQDN,)
    assert info.ip_addresses == (IP,)
    assert info.issuer == "CN=Int CA"
    assert (info.key_type, info.key_bits, info.key_curve) == ("rsa", 2048, None)
    assert info.signature_hash == "sha256"
    assert not info.is_self_signed
    assert not info.is_ca
    assert info.eku == ("serverAuth",)
    assert info.not_after.tzinfo is not None
    assert info.not_after == p.leaf.cert.not_valid_after_utc


def test_describe_matches_what_openssl_prints() -> None:
    cert = make_pki().leaf.cert
    info = certs.describe(cert)
    assert _openssl_x509(cert, "-fingerprint", "-sha256").split("=", 1)[1] == (
        info.fingerprint_sha256
    )
    assert _openssl_x509(cert, "-serial") == f"serial={info.serial}"


def test_describe_self_signed_and_special_keys() -> None:
    own = certs.describe(appliance().cert)
    assert own.is_self_signed
    assert own.is_ca
    assert own.eku is None
    openssl_made = certs.describe(fixture("appliance-openssl.pem"))
    assert openssl_made.is_self_signed
    assert openssl_made.is_ca
    ec_leaf = certs.describe(make_pki(key=key("ec", "ec", 256)).leaf.cert)
    assert (ec_leaf.key_type, ec_leaf.key_bits, ec_leaf.key_curve) == ("ec", 256, "secp256r1")
    assert certs.describe(fixture("leaf-sha1.pem")).signature_hash == "sha1"
    assert certs.describe(with_eku(root(), CLIENT_AUTH_ONLY).cert).eku == ("clientAuth",)
    assert certs.describe(make_pki(sans=None).leaf.cert).dns_names == ()


def test_days_left_counts_whole_days_and_goes_negative() -> None:
    info = certs.describe(make_pki().leaf.cert)
    assert info.days_left(info.not_after - dt.timedelta(days=3, hours=1)) == 3
    assert info.days_left(info.not_after + dt.timedelta(seconds=1)) == -1


def test_not_self_signed_when_only_the_names_match() -> None:
    # issuer == subject but signed by another key: not self-signed
    other = pki.build("Loop", key=key("a"), issuer=pki.build("Loop", key=key("b")))
    assert other.cert.issuer == other.cert.subject
    assert not certs.describe(other.cert).is_self_signed


@given(st.binary(max_size=64))
def test_format_fingerprint_is_colon_separated_upper_hex(digest: bytes) -> None:
    text = certs.format_fingerprint(digest)
    assert re.fullmatch(r"([0-9A-F]{2}(:[0-9A-F]{2})*)?", text)
    assert bytes.fromhex(text.replace(":", "")) == digest
    assert len(text) == max(0, 3 * len(digest) - 1)


def test_fingerprint_is_sha256_of_der() -> None:
    cert = make_pki().leaf.cert
    der = cert.public_bytes(serialization.Encoding.DER)
    assert certs.fingerprint(cert) == certs.format_fingerprint(hashlib.sha256(der).digest())


# -------------------------------------------------------------- key <-> certificate


def _pubout(private_key: pki.PrivateKey, *options: str) -> bytes:
    """What the appliance sends: `openssl pkey -pubout` of its key."""
    done = subprocess.run(
        ["openssl", "pkey", "-pubout", *options], input=pki.key_pem(private_key),
        capture_output=True, check=True,
    )
    return done.stdout


def test_key_matches_the_appliances_public_key() -> None:
    p = make_pki()
    assert certs.key_matches(p.leaf.cert, _pubout(p.leaf.key))


def test_leaf_signed_for_another_key_does_not_match() -> None:
    p = make_pki()
    assert not certs.key_matches(p.leaf.cert, _pubout(key("someone else")))


def test_public_key_fingerprint_is_sha256_of_spki_der() -> None:
    p = make_pki()
    der = _pubout(p.leaf.key, "-outform", "DER")
    expected = certs.format_fingerprint(hashlib.sha256(der).digest())
    assert certs.public_key_fingerprint(p.leaf.cert) == expected
    assert certs.public_key_fingerprint(p.leaf.key.public_key()) == expected


def test_public_key_pem_with_noise_and_pkcs1_form() -> None:
    p = make_pki()
    noisy = b"Last login: yesterday\n" + _pubout(p.leaf.key) + b"\n$ "
    assert certs.key_matches(p.leaf.cert, noisy)
    done = subprocess.run(
        ["openssl", "rsa", "-RSAPublicKey_out"], input=pki.key_pem(p.leaf.key),
        capture_output=True, check=True,
    )
    assert certs.key_matches(p.leaf.cert, done.stdout)


def test_a_private_key_is_refused_without_echoing_it() -> None:
    secret = pki.key_pem(key("leaf"))
    with pytest.raises(VerifyError) as caught:
        certs.parse_public_key_pem(secret)
    body = secret.decode().splitlines()[1]
    assert body not in str(caught.value)
    assert "private key" in str(caught.value)


@pytest.mark.parametrize("data", [b"", b"hello", b"-----BEGIN PUBLIC KEY-----\nAAAA\n"
                                  b"-----END PUBLIC KEY-----\n"])
def test_garbage_public_key_raises_verify_error(data: bytes) -> None:
    with pytest.raises(VerifyError):
        certs.parse_public_key_pem(data)


# ---------------------------------------------------------------------- bundles


def test_parse_bundle_ignores_text_and_other_blocks() -> None:
    p = make_pki()
    data = (
        b"subject=CN = wlb\n" + p.leaf.cert_pem + b"\nsome words\n" + p.leaf.key_pem
        + p.intermediate.cert_pem.replace(b"\n", b"\r\n") + b"trailing"
    )
    assert certs.parse_pem_bundle(data) == [p.leaf.cert, p.intermediate.cert]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "no PEM certificate"),
        (b"just text", "no PEM certificate"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n", "without its END"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "certificate 1"),
    ],
)
def test_parse_bundle_refuses_garbage(data: bytes, words: str) -> None:
    with pytest.raises(VerifyError, match=words):
        certs.parse_pem_bundle(data)


def test_parse_bundle_names_the_broken_block() -> None:
    good = make_pki().leaf.cert_pem
    lines = good.splitlines()
    broken = b"\n".join([lines[0], lines[1][:10] + b"!!" + lines[1][12:], *lines[2:]])
    with pytest.raises(VerifyError, match="certificate 2"):
        certs.parse_pem_bundle(good + broken)


@PARSER
@given(st.binary(max_size=2048))
def test_parse_bundle_never_raises_anything_but_verify_error(data: bytes) -> None:
    try:
        result = certs.parse_pem_bundle(data)
    except VerifyError:
        return
    assert all(isinstance(c, x509.Certificate) for c in result)


_SAMPLE = make_pki()
_SAMPLE_PEMS = [_SAMPLE.leaf.cert_pem, _SAMPLE.intermediate.cert_pem, _SAMPLE.root.cert_pem]
_noise = st.text(alphabet=st.characters(exclude_characters="-", codec="ascii"), max_size=40)


@settings(deadline=None)
@given(st.lists(st.tuples(_noise, st.sampled_from(_SAMPLE_PEMS)), min_size=1, max_size=5), _noise)
def test_parse_bundle_finds_every_certificate_among_noise(
    parts: list[tuple[str, bytes]], tail: str
) -> None:
    data = b"".join(noise.encode() + pem for noise, pem in parts) + tail.encode()
    parsed = certs.parse_pem_bundle(data)
    assert [c.public_bytes(serialization.Encoding.PEM) for c in parsed] == [p for _, p in parts]


@PARSER
@given(st.integers(min_value=0), st.binary(min_size=1, max_size=4))
def test_parse_bundle_with_a_corrupted_body(position: int, junk: bytes) -> None:
    pem = _SAMPLE.leaf.cert_pem
    body_start = pem.index(b"\n") + 1
    body_end = pem.rindex(b"-----END")
    spot = body_start + position % (body_end - body_start)
    data = pem[:spot] + junk + pem[spot + len(junk):]
    try:
        parsed = certs.parse_pem_bundle(data)
    except VerifyError:
        return
    assert len(parsed) == 1


_DER = _SAMPLE.leaf.cert.public_bytes(serialization.Encoding.DER)


# Found by fuzzing DER: cryptography raises InvalidVersion (not a ValueError) at load,
# and ValueError only when the subject or issuer is first read.
@pytest.mark.filterwarnings("ignore:Parsed a serial number")  # fuzzed serials go negative
@pytest.mark.filterwarnings("ignore:Attribute's length")  # a fuzzed countryName
@PARSER
@example(12, b"\x42")  # the version INTEGER: "66 is not a valid X509 version"
@example(_DER.index(b"\x06\x03\x55\x04\x03") + 2, b"\x00")  # a broken CN attribute
@example(_DER.index(b"\x06\x03\x55\x1d\x0e") + 4, b"\x23")  # SKI becomes a 2nd AKI
@given(st.integers(min_value=0, max_value=len(_DER) - 1), st.binary(min_size=1, max_size=3))
def test_parse_bundle_with_mutated_der(position: int, junk: bytes) -> None:
    der = _DER[:position] + junk + _DER[position + len(junk):]
    pem = b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(der)
    pem += b"-----END CERTIFICATE-----\n"
    try:
        parsed = certs.parse_pem_bundle(pem)
    except VerifyError:
        return
    for cert in parsed:
        certs.describe(cert)  # whatever parses can be described


@PARSER
@given(st.binary(max_size=512))
def test_parse_public_key_never_raises_anything_but_verify_error(data: bytes) -> None:
    blob = b"-----BEGIN PUBLIC KEY-----\n" + base64.encodebytes(data) + b"-----END PUBLIC KEY-----"
    for candidate in (data, blob):
        with contextlib.suppress(VerifyError):
            certs.parse_public_key_pem(candidate)


def test_to_pem_round_trips() -> None:
    chain = make_pki().served
    assert certs.parse_pem_bundle(certs.to_pem(chain)) == chain


# ------------------------------------------------------------ verdict 2: modern


def _modern(case: Case) -> list[str]:
    return [f.rule_id for f in certs.modern_policy_findings(case.served, case.trust, case.name)]


def test_modern_policy_accepts_a_good_chain() -> None:
    assert _modern(_good()) == []


def test_name_only_in_cn_pool_accepts_modern_warns() -> None:
    case = _named(FQDN, sans=None)
    assert _verdict(case).ok
    findings = certs.modern_policy_findings(case.served, case.trust, case.name)
    assert [f.rule_id for f in findings] == ["WLB-CERT-NO-SAN"]
    assert findings[0].severity == "warning"
    assert "subjectAltName" in findings[0].hint
    assert "no subjectAltName" in findings[0].message  # the library's words pass through


def test_self_signed_ca_appliance_pool_accepts_modern_warns() -> None:
    for case in (_appliance(), _openssl_appliance()):
        assert _verdict(case).ok
        findings = certs.modern_policy_findings(case.served, case.trust, case.name)
        assert [f.rule_id for f in findings] == ["WLB-CERT-SELF-SIGNED-CA"]
        assert "CA:FALSE" in findings[0].hint


def test_self_signed_non_ca_appliance_meets_modern_policy() -> None:
    own = pki.build(FQDN, key=key("appliance"), sans=[FQDN], ca=False)
    assert _modern(Case([own.cert], [own.cert])) == []


def test_openssl_made_ca_without_key_usage_is_explained() -> None:
    case = Case([fixture("leaf-sha256.pem")], [fixture("openssl-root.pem")])
    assert _verdict(case).ok
    findings = certs.modern_policy_findings(case.served, case.trust, case.name)
    assert [f.rule_id for f in findings] == ["WLB-CHAIN-CA-NO-KEY-USAGE"]
    assert findings[0].subject == "CN=wlbplan test openssl root"


def test_other_modern_rejections_pass_the_message_through() -> None:
    case = _named("x.example.com")
    findings = certs.modern_policy_findings(case.served, case.trust, case.name)
    assert [f.rule_id for f in findings] == ["WLB-CHAIN-MODERN-REJECT"]
    assert "no matching subjectAltName" in findings[0].message


def test_modern_policy_matches_ip_sans_and_honours_at() -> None:
    assert _modern(_named(IP, sans=[FQDN, IP])) == []
    case = _good()
    later = certs.modern_policy_findings(case.served, case.trust, FQDN, pki.now() + 400 * DAY)
    assert [f.rule_id for f in later] == ["WLB-CHAIN-MODERN-REJECT"]


def test_modern_policy_without_trust_or_with_a_bad_name() -> None:
    case = _good()
    assert _modern(Case(case.served, [])) == ["WLB-CHAIN-MODERN-REJECT"]
    assert _modern(Case(case.served, case.trust, name="bad name!")) == ["WLB-CHAIN-MODERN-REJECT"]


# ------------------------------------------------------------ policy numbers

POLICY = {"min_days_left": 30, "min_rsa_bits": 2048, "forbid_sha1": True}


def _rules(chain: list[x509.Certificate], **overrides: object) -> list[str]:
    policy = {**POLICY, **overrides}
    return [f.rule_id for f in certs.policy_findings(chain, **policy)]  # type: ignore[arg-type]


def test_policy_clean_chain_has_no_findings() -> None:
    p = make_pki()
    assert _rules([*p.served, p.root.cert]) == []


def test_policy_validity_rules() -> None:
    assert _rules([make_pki(**expired()).leaf.cert]) == ["WLB-CERT-EXPIRED"]
    assert _rules([make_pki(**not_yet_valid()).leaf.cert]) == ["WLB-CERT-NOT-YET-VALID"]
    assert _rules([make_pki(days=10).leaf.cert]) == ["WLB-CERT-EXPIRING"]
    assert _rules([make_pki().leaf.cert], min_days_left=400) == ["WLB-CERT-EXPIRING"]
    at = pki.now() + 400 * DAY
    assert _rules([make_pki().leaf.cert], at=at) == ["WLB-CERT-EXPIRED"]


def test_policy_key_and_signature_rules() -> None:
    assert _rules([make_pki(key=key("weak", "rsa", 1024)).leaf.cert]) == ["WLB-CERT-RSA-WEAK"]
    assert _rules([make_pki(key=key("ec", "ec", 256)).leaf.cert]) == ["WLB-CERT-KEY-NOT-RSA"]
    sha1_chain = [fixture("leaf-sha1.pem"), fixture("openssl-root.pem")]
    assert _rules(sha1_chain) == ["WLB-CERT-SHA1-SIGNATURE"]
    assert _rules(sha1_chain, forbid_sha1=False) == []
    # a self-signed certificate's signature is never checked: nothing to flag
    assert _rules([fixture("appliance-sha1.pem")]) == []


def test_policy_ca_and_purpose_rules() -> None:
    top = pki.build("Root not CA", key=key("root"), ca=None)
    assert _rules([leaf(top).cert, top.cert]) == ["WLB-CHAIN-ROOT-NOT-CA"]
    top = root()
    middle = pki.build("Int not CA", key=key("int"), issuer=top, ca=False)
    end = leaf(middle)
    assert _rules([end.cert, middle.cert, top.cert]) == ["WLB-CHAIN-INTERMEDIATE-NOT-CA"]
    assert _rules([with_eku(top, CLIENT_AUTH_ONLY).cert]) == ["WLB-CERT-EKU-NO-SERVERAUTH"]


def test_policy_findings_say_which_certificate_and_what_to_do() -> None:
    top = root()
    chain = [leaf(top, **expired()).cert, top.cert]
    (finding,) = certs.policy_findings(chain, **POLICY)  # type: ignore[arg-type]
    assert finding.severity == "error"
    assert finding.subject == f"CN={FQDN}"
    assert finding.message.startswith(f"CN={FQDN}: expired on ")
    assert finding.hint


def test_every_rule_id_is_documented() -> None:
    package = Path(certs.__file__).parent
    source = "".join(module.read_text() for module in package.glob("*.py"))
    used = set(re.findall(r'"(WLB-[A-Z0-9-]+)"', source))
    assert used
    assert used <= set(rules.CATALOGUE)
