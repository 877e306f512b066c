"""The lab's ``xe`` and ``certs.pool_accepts`` must give the same verdict on what WLB serves.

Two independent models of xapi's stunnel client judge each case: the emulator, making a
real TLS handshake (Python's ``ssl``) against a real stunnel serving the certificates on
127.0.0.1, and ``wlbplan.certs.pool_accepts``, which runs ``openssl verify``. The expected
columns are what real stunnel 5.68 did and logged (`CERT: <reason>`, what xapi reports as
SSL_VERIFY_ERROR's reason), configured as xapi configures it (stunnel.ml: ``client=yes``,
``checkHost=<host>``, ``CAfile=<bundle>``, ``verifyChain=yes`` on xapi >= 24.40 or
``verifyPeer=yes`` before, ``sslVersion = TLSv1.2``, ECDHE-RSA suites, ``curve =
secp384r1``).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from wlbplan import certs
from wlbplan.lab import procs, xe_state
from wlbplan.lab.layout import TargetLayout
from wlbplan.lab.pki import (
    Issued,
    PrivateKey,
    appliance_self_signed,
    build,
    make_key,
    now,
    write_private,
)
from wlbplan.lab.procs import Daemon, free_port, port_open, wait_for

pytestmark = pytest.mark.lab

FQDN = "wlb.lab.test"
IP = "127.0.0.1"
USER, PASSWORD = "wlbuser", "Sup3r-s3cret-pw"
DAY = dt.timedelta(days=1)
STUNNEL = shutil.which("stunnel4") or shutil.which("stunnel")


def stop_wlb(pid_file: Path) -> None:
    """Stop a stunnel this test started as ``stunnel FOLDER/stunnel.conf``."""
    procs.stop(Daemon(pid_file, STUNNEL, (str(pid_file.with_name("stunnel.conf")),)))
VERIFY_ERROR = (
    "The remote system's SSL certificate failed to verify against our certificate library.")
CONNECTION_RESET = "The connection to the WLB server was reset.\n"


# --- certificates ---------------------------------------------------------------------


@functools.cache
def rsa_key() -> PrivateKey:
    """One RSA key for what WLB serves (the only kind xapi's ECDHE-RSA suites can use).

    Shared on purpose: verifyPeer matches an installed certificate by subject and key,
    so a re-issue on the same key is one of the cases. Each case has its own pool, so no
    other case's certificate can match by accident."""
    return make_key("rsa", 2048)


def ca(name: str, issuer: Issued | None = None, **kw: object) -> Issued:
    return build(name, key=make_key("ec", 256), issuer=issuer, ca=True, **kw)  # type: ignore[arg-type]


def served(name: str | None, issuer: Issued | None, *, sans: list[str] | None = None,
           **kw: object) -> Issued:
    return build(name, key=rsa_key(), issuer=issuer, sans=sans, server_auth=True, **kw)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Case:
    """``chain``: what stunnel serves, leaf first (its key is the leaf's); ``trust``: what
    is installed with ``xe pool-install-ca-certificate``; ``host``: the host of wlb-url."""

    chain: tuple[Issued, ...]
    trust: tuple[Issued, ...]
    host: str = FQDN


@dataclass(frozen=True)
class Row:
    make: Callable[[], Case]
    mode: certs.Mode  # "current" (verifyChain) or "legacy" (verifyPeer)
    accepted: bool  # what real stunnel 5.68 did
    reason: str = ""  # the `CERT: ` line stunnel logged, which xapi reports as the reason
    oracle: bool = True  # whether pool_accepts can judge it (it cannot see the handshake)
    lab: str = ""  # the lab's xapi mode, when not ``mode`` itself (ch82 verifies as legacy)


def self_signed_trusted() -> Case:
    appliance = appliance_self_signed(FQDN, key=rsa_key())  # CA:TRUE, as `openssl req -x509`
    return Case((appliance,), (appliance,))


def root_only() -> Case:
    root = ca("Lab Root CA")
    return Case((served(FQDN, root, sans=[FQDN]),), (root,))


def leaf_only() -> Case:
    leaf = served(FQDN, ca("Lab Root CA"), sans=[FQDN])
    return Case((leaf,), (leaf,))


def leaf_reissued_on_the_same_key() -> Case:
    """verifyPeer compares subject and public key, not bytes: a re-issue still matches."""
    root = ca("Lab Root CA")
    return Case((served(FQDN, root, sans=[FQDN]),), (served(FQDN, root, sans=[FQDN]),))


def expired_leaf() -> Case:
    """The installed re-issue (an expired certificate cannot be installed) makes the leaf
    local for verifyPeer, so its own expiry is what refuses it there."""
    root = ca("Lab Root CA")
    old = served(FQDN, root, sans=[FQDN], not_before=now() - 400 * DAY,
                 not_after=now() - 35 * DAY)
    return Case((old,), (root, served(FQDN, root, sans=[FQDN])))


@functools.cache
def _expired_intermediate_pki() -> tuple[Issued, Issued, Issued]:
    root = ca("Lab Root CA", days=3650)
    intermediate = ca("Lab Issuing CA", root, not_before=now() - 400 * DAY,
                      not_after=now() - 35 * DAY)
    return root, intermediate, served(FQDN, intermediate, sans=[FQDN])


def expired_intermediate_root_trusted() -> Case:
    root, intermediate, leaf = _expired_intermediate_pki()
    return Case((leaf, intermediate), (root,))


def expired_intermediate_leaf_trusted() -> Case:
    """verifyPeer ignores every error above depth 0."""
    _, intermediate, leaf = _expired_intermediate_pki()
    return Case((leaf, intermediate), (leaf,))


def cn_mismatch() -> Case:
    root = ca("Lab Root CA")
    leaf = served("other.lab.test", root, sans=["other.lab.test"])
    return Case((leaf,), (root, leaf))


def name_only_in_cn() -> Case:
    """No subjectAltName at all (the seed's CN-only CSR): X509_check_host falls back to CN."""
    root = ca("Lab Root CA")
    leaf = served(FQDN, root)
    return Case((leaf,), (root, leaf))


def partial_wildcard() -> Case:
    """X509_check_host without flags takes `w*.lab.test` (Python's check_hostname does not)."""
    root = ca("Lab Root CA")
    leaf = served(FQDN, root, sans=["w*.lab.test"])
    return Case((leaf,), (root, leaf))


def by_ip_with_ip_san() -> Case:
    """checkHost compares an IP literal with DNS SANs (and CN), never with IP SANs."""
    root = ca("Lab Root CA")
    leaf = served(FQDN, root, sans=[FQDN, IP])
    return Case((leaf,), (root, leaf), host=IP)


def by_ip_with_cn_ip() -> Case:
    root = ca("Lab Root CA")
    leaf = served(IP, root)  # CN=127.0.0.1, no subjectAltName
    return Case((leaf,), (root, leaf), host=IP)


def ec_leaf() -> Case:
    """An EC key has no cipher in common with xapi's ECDHE-RSA suites: the handshake fails."""
    root = ca("Lab Root CA")
    leaf = build(FQDN, key=make_key("ec", 256), issuer=root, sans=[FQDN], server_auth=True)
    return Case((leaf,), (root, leaf))


def empty_bundle() -> Case:
    return Case((served(FQDN, ca("Lab Root CA"), sans=[FQDN]),), ())


NO_ISSUER = "Pre-verification error: unable to get local issuer certificate"
EXPIRED = "Pre-verification error: certificate has expired"
NOT_LOCAL = "Certificate not found in local repository"
SUBJECT = "Subject checks failed"
ROWS: dict[str, Row] = {
    "self-signed CA:TRUE leaf trusted, current": Row(self_signed_trusted, "current", True),
    "self-signed CA:TRUE leaf trusted, legacy": Row(self_signed_trusted, "legacy", True),
    "root only, current": Row(root_only, "current", True),
    "root only, legacy": Row(root_only, "legacy", False, NOT_LOCAL),
    "CA-signed leaf only, current": Row(leaf_only, "current", False, NO_ISSUER),
    "CA-signed leaf only, legacy": Row(leaf_only, "legacy", True),
    "leaf re-issued on the same key, current": Row(leaf_reissued_on_the_same_key, "current",
                                                   False, NO_ISSUER),
    "leaf re-issued on the same key, legacy": Row(leaf_reissued_on_the_same_key, "legacy",
                                                  True),
    "expired leaf, current": Row(expired_leaf, "current", False, EXPIRED),
    "expired leaf, legacy": Row(expired_leaf, "legacy", False, EXPIRED),
    "expired intermediate, root trusted, current": Row(expired_intermediate_root_trusted,
                                                       "current", False, EXPIRED),
    "expired intermediate, leaf trusted, legacy": Row(expired_intermediate_leaf_trusted,
                                                      "legacy", True),
    "CN mismatch, current": Row(cn_mismatch, "current", False, SUBJECT),
    "CN mismatch, legacy": Row(cn_mismatch, "legacy", False, SUBJECT),
    "name only in CN, current": Row(name_only_in_cn, "current", True),
    "name only in CN, legacy": Row(name_only_in_cn, "legacy", True),
    "partial wildcard, current": Row(partial_wildcard, "current", True),
    "by IP, IP SAN, current": Row(by_ip_with_ip_san, "current", False, SUBJECT),
    "by IP, IP SAN, legacy": Row(by_ip_with_ip_san, "legacy", False, SUBJECT),
    "by IP, CN=IP, current": Row(by_ip_with_cn_ip, "current", True),
    "by IP, CN=IP, legacy": Row(by_ip_with_cn_ip, "legacy", True),
    # stunnel logs `sslv3 alert handshake failure` and no certificate error
    "EC leaf, current": Row(ec_leaf, "current", False, oracle=False),
    "EC leaf, legacy": Row(ec_leaf, "legacy", False, oracle=False),
    # Real stunnel does not even start without a CA ("No trusted certificates found",
    # "Configuration failed"); the emulator lets the verification fail instead.
    "empty bundle, current": Row(empty_bundle, "current", False, NO_ISSUER),
    "empty bundle, legacy": Row(empty_bundle, "legacy", False, NOT_LOCAL),
    # Citrix Hypervisor 8.2 (xapi 1.249) verifies as legacy xapi does.
    "root only, ch82": Row(root_only, "legacy", False, NOT_LOCAL, lab="ch82"),
    "CA-signed leaf only, ch82": Row(leaf_only, "legacy", True, lab="ch82"),
    "self-signed CA:TRUE leaf trusted, ch82": Row(self_signed_trusted, "legacy", True,
                                                  lab="ch82"),
}


# --- a real stunnel serving WLB, an emulated pool -------------------------------------












def _pem(issued: Sequence[Issued]) -> bytes:
    return b"".join(i.cert_pem for i in issued)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[Sequence[Issued]], int]]:
    """Start a real stunnel serving a chain on 127.0.0.1 (like the appliance's)."""
    if STUNNEL is None:
        pytest.skip("stunnel4 is not installed")
    pid_files: list[Path] = []

    def start(chain: Sequence[Issued]) -> int:
        folder = tmp_path / f"wlb{len(pid_files)}"
        folder.mkdir()
        write_private(folder / "server.pem", _pem(chain), mode=0o644)
        write_private(folder / "server.key", chain[0].key_pem)
        port, pid_file = free_port(), folder / "stunnel.pid"
        (folder / "stunnel.conf").write_text(
            f"foreground = no\npid = {pid_file}\noutput = {folder / 'stunnel.log'}\n"
            f"[wlb]\naccept = 127.0.0.1:{port}\ncert = {folder / 'server.pem'}\n"
            f"key = {folder / 'server.key'}\nconnect = 127.0.0.1:{free_port()}\n"
        )
        subprocess.run([str(STUNNEL), str(folder / "stunnel.conf")], check=True, timeout=30)
        pid_files.append(pid_file)
        wait_for(lambda: pid_file.exists() and port_open(port), 10, "stunnel")
        return port

    yield start
    for pid_file in pid_files:
        stop_wlb(pid_file)


def emulator_verdict(root: Path, case: Case, mode: str, port: int, *,
                     verify: bool = True) -> subprocess.CompletedProcess[str]:
    """A pool of `mode` with WLB at host:port, the case's trust installed with its ``xe``,
    wlb-verify-cert=true; the result of ``xe pool-retrieve-wlb-configuration``."""
    layout = TargetLayout(root / "pool")
    xe_state.create_pool(layout, hosts=2, xapi=mode, wlb_url=f"{case.host}:{port}",
                         wlb_username=USER, wlb_password=PASSWORD, resolve={FQDN: IP})
    xe_state.write_xe_wrapper(layout)
    write_private(layout.wlb_accounts,
                  json.dumps({"username": USER, "password": PASSWORD}).encode())
    cwd = root / "cwd"
    cwd.mkdir()

    def xe(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(layout.xe), *args], capture_output=True, text=True,
                              cwd=cwd, timeout=60)

    for index, issued in enumerate(case.trust):
        (cwd / f"trust{index}.pem").write_bytes(issued.cert_pem)
        # The 1.249 line (ch82) has only the deprecated name.
        command = "pool-certificate-install" if mode == "ch82" else "pool-install-ca-certificate"
        done = xe(command, f"filename=trust{index}.pem")
        assert (done.returncode, done.stderr) == (0, ""), done.stderr
    uuid = json.loads(layout.pool_state.read_text())["pool"]["uuid"]
    done = xe("pool-param-set", f"uuid={uuid}", f"wlb-verify-cert={str(verify).lower()}")
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    return xe("pool-retrieve-wlb-configuration")


def pool_verdict(case: Case, mode: certs.Mode) -> certs.Verdict:
    """The oracle: ``openssl verify`` as the pool's stunnel would judge the served chain."""
    return certs.pool_accepts([i.cert for i in case.chain], [i.cert for i in case.trust],
                              case.host, mode=mode)


# --- the cross-check ------------------------------------------------------------------


@pytest.mark.parametrize("row_id", list(ROWS))
def test_xe_matches_pool_accepts(row_id: str, tmp_path: Path,
                                 serve: Callable[[Sequence[Issued]], int]) -> None:
    row = ROWS[row_id]
    case = row.make()
    result = emulator_verdict(tmp_path, case, row.lab or row.mode, serve(case.chain))
    accepted = result.returncode == 0
    assert accepted is row.accepted, result.stderr
    if not accepted:
        assert result.stdout == ""
        expected = f"{VERIFY_ERROR}\nreason: {row.reason}\n" if row.oracle else CONNECTION_RESET
        assert result.stderr == expected
    if row.oracle:
        verdict = pool_verdict(case, row.mode)
        assert verdict.ok is accepted, (verdict.reason, result.stderr)


def self_signed_mimic() -> Case:
    """The appliance's self-signed certificate regenerated on its old key: same name, same
    key, other bytes than the installed one. OpenSSL trusts a self-signed certificate only
    if it is the anchor itself (a "mimic" is error 18 at depth 0, which verifyPeer does not
    ignore): stunnel 5.68 logs `CERT: Pre-verification error: self-signed certificate`."""
    installed = appliance_self_signed(FQDN, key=rsa_key())
    return Case((appliance_self_signed(FQDN, key=rsa_key()),), (installed,))


@pytest.mark.parametrize("mode", ["current", "legacy"])
def test_a_self_signed_mimic_is_refused(mode: certs.Mode, tmp_path: Path,
                                        serve: Callable[[Sequence[Issued]], int]) -> None:
    case = self_signed_mimic()
    result = emulator_verdict(tmp_path, case, mode, serve(case.chain))
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (f"{VERIFY_ERROR}\n"
                             "reason: Pre-verification error: self-signed certificate\n")
    if mode == "current":
        assert not pool_verdict(case, mode).ok


def test_pool_accepts_refuses_a_self_signed_mimic_under_verify_peer() -> None:
    assert not pool_verdict(self_signed_mimic(), "legacy").ok


@pytest.mark.parametrize("mode", ["current", "legacy"])
def test_the_cipher_profile_holds_without_verification(
        mode: str, tmp_path: Path, serve: Callable[[Sequence[Issued]], int]) -> None:
    """xapi writes `sslVersion`, `ciphers` and `curve` whatever wlb-verify-cert says: an
    EC-keyed WLB fails the handshake even unverified (the seed's troubleshooting step of
    turning verification off does not make it connect)."""
    case = ec_leaf()
    result = emulator_verdict(tmp_path, case, mode, serve(case.chain), verify=False)
    assert (result.returncode, result.stdout, result.stderr) == (1, "", CONNECTION_RESET)
