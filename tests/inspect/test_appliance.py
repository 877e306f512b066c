"""Appliance facts: the pure parsers on captured script output, edge cases, properties.

Each ``data/<situation>.appliance.txt`` is what the real script printed against a real
lab in that situation (``capture.py``); the expectations below say what an operator would
conclude from it.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given
from hypothesis import strategies as st
from property_settings import PARSER

from wlbplan import certs
from wlbplan.connectors.local import LocalRunner
from wlbplan.inspect import appliance
from wlbplan.inspect import script as facts
from wlbplan.inspect.script import RawFact
from wlbplan.lab import pki
from wlbplan.model.checks import Leftover
from wlbplan.model.command import script as shell_script
from wlbplan.model.observed import ApplianceFacts, CertFile, KeyFile, Served
from wlbplan.model.spec import Target

DATA = Path(__file__).resolve().parent / "data"
FQDN = "wlb1.lab.test"
LAB_CHAIN = ("CN=wlb1.lab.test", "CN=Lab Intermediate CA", "CN=Lab Root CA")


@dataclass(frozen=True)
class Expect:
    """What the appliance facts of one captured situation must say."""

    cert: tuple[str, ...] | str = (f"CN={FQDN}",)
    """Subjects of the file's chain, leaf first; or a text its error must contain."""
    key: str = "match"
    """match | mismatch | missing | der (present, but stunnel cannot load it)"""
    served: str = "file"
    """file (the same chain as the file) | old (not the file's, e.g. garbage file) | TEXT
    its error must contain."""
    backups: tuple[str, ...] = ()
    pending: bool = False
    """A pending key is there (an abandoned request)."""


EXPECTED: dict[str, Expect] = {
    "fresh": Expect(),
    "trusted-verify": Expect(),
    "legacy-xapi": Expect(),
    "ch82-verify": Expect(),
    "fault-desync-host": Expect(),
    "fault-by-ip": Expect(),
    "two-ca-one-unreadable": Expect(),
    "fault-restart-fails": Expect(served="nothing listens on the port (connection refused)"),
    "stunnel-stopped": Expect(served="nothing listens on the port (connection refused)"),
    "fault-expire": Expect(),
    "fault-key-mismatch": Expect(key="mismatch"),
    "fault-cn-mismatch": Expect(cert=(f"CN=other-{FQDN}",)),
    "key-missing": Expect(key="missing"),
    "key-der": Expect(key="der"),
    "cert-garbage": Expect(cert="the file holds no complete PEM certificate", served="old"),
    "backups": Expect(backups=("server.key_orig", "server.pem_orig")),
    "fault-stale-backups": Expect(backups=("server.key_orig", "server.pem_orig"), pending=True),
    "fault-wlb-unresolvable": Expect(),
    "fault-wlb-resolves-elsewhere": Expect(),
    "ca-signed": Expect(cert=LAB_CHAIN),
}


def load(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def subjects(chain: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(load(pem).subject.rfc4514_string() for pem in chain)


def parsed(situation: str, target: Target) -> ApplianceFacts:
    return appliance.parse(facts.parse((DATA / f"{situation}.appliance.txt").read_text()), target)


def test_every_appliance_capture_has_expectations() -> None:
    captured = {p.name.removesuffix(".appliance.txt") for p in DATA.glob("*.appliance.txt")}
    assert captured == set(EXPECTED)


@pytest.mark.parametrize("situation", sorted(EXPECTED))
def test_captured_certificate_file(situation: str, target: Target) -> None:
    expect, got = EXPECTED[situation], parsed(situation, target).cert
    assert got.path == str(target.wlb.paths.cert)
    assert got.present
    if isinstance(expect.cert, str):
        assert got.chain == ()
        assert got.error is not None
        assert expect.cert in got.error
    else:
        assert got.error is None
        assert subjects(got.chain) == expect.cert
        for pem in got.chain:  # each one normalised PEM, as certs.to_pem writes it
            assert pem == load(pem).public_bytes(Encoding.PEM).decode()


@pytest.mark.parametrize("situation", sorted(EXPECTED))
def test_captured_key_file(situation: str, target: Target) -> None:
    found = parsed(situation, target)
    expect, key = EXPECTED[situation], found.key
    assert key.path == str(target.wlb.paths.key)
    if expect.key == "missing":
        assert key == KeyFile(path=key.path, present=False)
        return
    assert key.present
    if expect.key == "der":
        # openssl alone reads a DER key; the appliance's stunnel loads PEM only (issue 16
        # #14: the public key came back and nothing was reported).
        assert key.public_key is None
        assert key.error is not None
        assert "DER-encoded" in key.error
        assert "stunnel loads PEM keys only" in key.error
        return
    assert key.error is None
    assert key.mode == "600"
    assert key.owner
    assert key.group
    assert key.public_key is not None
    assert key.public_key.startswith("-----BEGIN PUBLIC KEY-----\n")
    assert key.public_key.endswith("-----END PUBLIC KEY-----\n")
    leaf = load((found.cert.chain or found.served.chain)[0])
    assert certs.key_matches(leaf, key.public_key.encode()) is (expect.key == "match")


@pytest.mark.parametrize("situation", sorted(EXPECTED))
def test_captured_served_chain(situation: str, target: Target) -> None:
    found = parsed(situation, target)
    expect, served = EXPECTED[situation], found.served
    if expect.served in ("file", "old"):
        assert served.error is None
        assert served.chain
        if expect.served == "file":
            assert served.chain == found.cert.chain
        else:  # stunnel still serves what it loaded before the file was broken
            assert subjects(served.chain) == (f"CN={FQDN}",)
    else:
        assert served.chain == ()
        assert served.error is not None
        assert served.error.startswith("no certificate served")
        assert expect.served in served.error


@pytest.mark.parametrize("situation", sorted(EXPECTED))
def test_captured_backups_and_hostname(situation: str, target: Target) -> None:
    found = parsed(situation, target)
    assert tuple(Path(p).name for p in found.backups) == EXPECTED[situation].backups
    assert all(p.startswith("/") for p in found.backups)
    assert found.hostname
    assert found.hostname == found.hostname.strip()
    # No certificate request under way in these labs, but an abandoned pending key.
    assert (found.pending_key is not None) is EXPECTED[situation].pending
    assert found.pending_csr is None


def test_expired_capture_is_expired_and_fresh_one_is_not_yet_expired(target: Target) -> None:
    now = dt.datetime.now(dt.UTC)
    expired = load(parsed("fault-expire", target).cert.chain[0])
    assert expired.not_valid_after_utc < now
    fresh = load(parsed("fresh", target).cert.chain[0])
    assert fresh.not_valid_after_utc - fresh.not_valid_before_utc > dt.timedelta(days=300)


def test_ca_signed_capture_is_a_real_chain(target: Target) -> None:
    chain = [load(p) for p in parsed("ca-signed", target).cert.chain]
    assert certs.issued_by(chain[0], chain[1])
    assert certs.issued_by(chain[1], chain[2])
    assert certs.is_self_signed(chain[2])


def test_key_mismatch_capture_serves_the_old_pair(target: Target) -> None:
    found = parsed("fault-key-mismatch", target)
    assert found.key.public_key is not None
    served_leaf = load(found.served.chain[0])
    assert not certs.key_matches(served_leaf, found.key.public_key.encode())


# ------------------------------------------------------------------- hand-written edges


def test_no_facts_at_all_means_nothing_was_inspected(target: Target) -> None:
    got = appliance.parse({}, target)
    assert got.cert == CertFile(path=str(target.wlb.paths.cert), present=False,
                                error="not inspected")
    assert got.key == KeyFile(path=str(target.wlb.paths.key), present=False)
    assert got.served == Served(error="not inspected")
    assert got.backups == ()
    assert got.hostname is None


def test_a_missing_key_public_fact_is_reported(target: Target) -> None:
    raw = facts.parse((DATA / "fresh.appliance.txt").read_text())
    del raw["key.public"]
    key = appliance.parse(raw, target).key
    assert key.present
    assert key.mode == "600"
    assert key.public_key is None
    assert key.error == "not inspected"


@pytest.mark.parametrize("words", [
    "cat: /etc/ssl/certs/server.pem: No such file or directory",
    "sed: can't read /etc/ssl/certs/server.pem: No such file or directory",
])
def test_a_missing_cert_file_is_absent_not_an_error(words: str) -> None:
    assert appliance.parse_cert(RawFact(words, 2), "/p") == CertFile(path="/p", present=False)


def test_an_unreadable_cert_file_is_present_with_the_commands_words() -> None:
    raw = RawFact("cat: /etc/ssl/certs/server.pem: Permission denied", 1)
    got = appliance.parse_cert(raw, "/p")
    assert got.present
    assert got.error == "cat: /etc/ssl/certs/server.pem: Permission denied (exit 1)"


def test_an_empty_cert_file() -> None:
    got = appliance.parse_cert(RawFact("", 0), "/p")
    assert got.present
    assert got.chain == ()
    assert got.error is not None


def test_a_cert_file_that_also_holds_the_key_keeps_only_certificates() -> None:
    """stunnel accepts key + certificate in one file; only the certificate is kept."""
    issued = pki.build(FQDN, key=pki.make_key("ec", 256), sans=[FQDN])
    text = (issued.key_pem + issued.cert_pem).decode()
    got = appliance.parse_cert(RawFact(text, 0), "/p")
    assert subjects(got.chain) == (f"CN={FQDN}",)
    assert "PRIVATE" not in repr(got)


def test_a_failing_openssl_is_reported_without_echoing_what_it_printed() -> None:
    secret = "-----BEGIN PRIVATE KEY-----\nMIIsecret\n-----END PRIVATE KEY-----"
    got = appliance.parse_key(RawFact("600 root root", 0), RawFact(f"bad key\n{secret}", 1), "/k")
    assert got.present
    assert got.public_key is None
    assert got.error == "openssl could not read the key (exit 1)"
    assert "secret" not in repr(got)


def test_a_key_whose_stat_fails_otherwise() -> None:
    got = appliance.parse_key(RawFact("stat: cannot statx '/k': Permission denied", 1), None, "/k")
    assert got.present
    assert got.error is not None
    assert "Permission denied" in got.error


@pytest.mark.parametrize(("output", "exit_code", "error"), [
    ("socket: Bad file descriptor\nconnect:errno=111\n", 1,
     "no certificate served: nothing listens on the port (connection refused)"),
    ("4067A0C1BC7F0000:error:8000006F:system library:BIO_connect:Connection refused:"
     "../crypto/bio/bio_sock2.c:114:calling connect()\n", 1,
     "no certificate served: nothing listens on the port (connection refused)"),
    ("40F7:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:ssl/record.c:354:\n",
     1, "no certificate served: the TLS handshake failed"),
    ("", 124, "no certificate served: no answer within 10 s"),
    ("something else\n", 1, "no certificate served (openssl s_client exit 1)"),
])
def test_served_error_says_why_nothing_was_served(output: str, exit_code: int,
                                                  error: str) -> None:
    assert appliance.parse_served(RawFact(output, exit_code)).error == error


def test_served_with_a_truncated_certificate_is_an_error() -> None:
    pem = facts.parse((DATA / "fresh.appliance.txt").read_text())["cert"].output
    got = appliance.parse_served(RawFact(pem[: len(pem) // 2], 0))
    assert got.chain == ()
    assert got.error is not None


def test_backups_listing() -> None:
    assert appliance.parse_lines(RawFact("  /b\n\n/a  \n", 0)) == ("/a", "/b")
    assert appliance.parse_lines(RawFact("/a", 1)) == ()
    assert appliance.parse_lines(None) == ()


def _x509(pem: str) -> str:
    """The same certificate under the old ``X509 CERTIFICATE`` label."""
    return pem.replace("CERTIFICATE-----", "X509 CERTIFICATE-----")


def _no_end(pem: str) -> str:
    """A certificate block whose END line is missing (truncated or hand-edited)."""
    return "".join(ln for ln in pem.splitlines(keepends=True) if not ln.startswith("-----END"))


def _no_begin(pem: str) -> str:
    """A certificate block whose BEGIN line is missing."""
    return "".join(ln for ln in pem.splitlines(keepends=True)
                   if not ln.startswith("-----BEGIN"))


# server.pem layouts holding the private key too (stunnel accepts key and certificate in
# one file): (the file's text from cert PEM and key PEM, the chain inspect should see;
# () when no complete certificate is left).
KEY_IN_CERT_FILE: dict[str, tuple[Callable[[str, str], str], tuple[str, ...]]] = {
    "key then cert": (lambda c, k: k + c, (f"CN={FQDN}",)),
    "cert then key": (lambda c, k: c + k, (f"CN={FQDN}",)),
    "key between two certs": (lambda c, k: c + k + c, (f"CN={FQDN}", f"CN={FQDN}")),
    "CRLF line ends": (lambda c, k: (k + c).replace("\n", "\r\n"), (f"CN={FQDN}",)),
    # The sed range the 'cert' fact used to print stayed open to the end of the file when
    # a certificate lost its END line, and sent the key after it back in the output.
    "cert missing its END line, then key": (lambda c, k: _no_end(c) + k, ()),
    "X509 CERTIFICATE label, key after": (lambda c, k: _x509(c) + k, (f"CN={FQDN}",)),
    "X509 CERTIFICATE missing its END line, then key": (lambda c, k: _no_end(_x509(c)) + k, ()),
    "key, then cert missing its END line": (lambda c, k: k + _no_end(c), ()),
    "cert, cert missing its END line, key, cert": (
        lambda c, k: c + _no_end(c) + k + c, (f"CN={FQDN}", f"CN={FQDN}")),
    "key with CRLF after cert missing its END line": (
        lambda c, k: (_no_end(c) + k).replace("\n", "\r\n"), ()),
    # An END line after the key would close a block that ran on through the key.
    "cert missing its END line, key, cert missing its BEGIN line": (
        lambda c, k: _no_end(c) + k + _no_begin(c), ()),
}


def _run_appliance_script(tmp_path: Path, make_target: Callable[..., Target], server_pem: str,
                          key_pem: bytes) -> tuple[str, Target]:
    """The real appliance script run by the local connector on a server.pem in tmp_path:
    its raw stdout, and the target. The files stand for the appliance's own, in a folder
    named so: keys belong there (tests/leakscan.py looks for them everywhere else)."""
    root = tmp_path / "appliance"
    root.mkdir()
    cert = root / "server.pem"
    cert.write_bytes(server_pem.encode())
    key = root / "server.key"
    key.write_bytes(key_pem)
    target = make_target(cert=str(cert), key=str(key), port=1)
    result = LocalRunner().run(shell_script(appliance.script(target)), timeout=60)
    assert result.exit_code == 0, result.stderr
    return result.stdout, target


def _assert_no_key_material(stdout: str, key_pem: str) -> None:
    """Neither the raw output nor any fact in it holds the private key (its label or any
    line of its base64 body)."""
    outputs = "".join(fact.output for fact in facts.parse(stdout).values())
    body = [ln for ln in key_pem.splitlines() if ln and not ln.startswith("-----")]
    assert body
    for text in (stdout, outputs):
        assert "PRIVATE KEY" not in text
        assert not [ln for ln in body if ln in text]


@pytest.mark.parametrize("layout", sorted(KEY_IN_CERT_FILE))
def test_a_private_key_inside_server_pem_is_not_sent_over_the_wire(
    layout: str, tmp_path: Path, make_target: Callable[..., Target]
) -> None:
    """The module promises the private key never leaves the appliance (DESIGN.md 3: no key
    material in any output); the raw script output is checked, not just the parsed facts."""
    issued = pki.build(FQDN, key=pki.make_key("ec", 256), sans=[FQDN])
    build, chain = KEY_IN_CERT_FILE[layout]
    stdout, target = _run_appliance_script(
        tmp_path, make_target, build(issued.cert_pem.decode(), issued.key_pem.decode()),
        issued.key_pem)
    _assert_no_key_material(stdout, issued.key_pem.decode())
    got = appliance.parse(facts.parse(stdout), target).cert
    assert got.present
    assert subjects(got.chain) == chain
    if not chain:
        assert got.error


def test_the_cert_fact_holds_exactly_the_complete_certificates(
    tmp_path: Path, make_target: Callable[..., Target]
) -> None:
    """server.pem = cert A, cert B missing its END line, a PRIVATE KEY, cert C: the cert
    fact is A and C, byte for byte, and nothing of B or of the key."""
    a, b, c = (pki.build(f"{n}.{FQDN}", key=pki.make_key("ec", 256), sans=[f"{n}.{FQDN}"])
               for n in ("a", "b", "c"))
    server_pem = (a.cert_pem.decode() + _no_end(b.cert_pem.decode()) + a.key_pem.decode()
                  + c.cert_pem.decode())
    stdout, target = _run_appliance_script(tmp_path, make_target, server_pem, a.key_pem)
    cert = facts.parse(stdout)["cert"]
    # $(...) drops the trailing newline of what awk printed.
    assert cert == RawFact((a.cert_pem + c.cert_pem).decode().rstrip("\n"), 0)
    b_body = [ln for ln in b.cert_pem.decode().splitlines() if not ln.startswith("-----")]
    assert not [ln for ln in b_body if ln in cert.output]
    _assert_no_key_material(stdout, a.key_pem.decode())
    got = appliance.parse(facts.parse(stdout), target).cert
    assert subjects(got.chain) == (f"CN=a.{FQDN}", f"CN=c.{FQDN}")


# ------------------------------------------------------------------------- properties


def _captured_ders() -> list[bytes]:
    found = []
    for situation in ("fresh", "ca-signed"):
        raw = facts.parse((DATA / f"{situation}.appliance.txt").read_text())
        found += [load(p).public_bytes(Encoding.DER) for p in
                  appliance.parse_cert(raw["cert"], "/p").chain]
    return found


DERS = _captured_ders()


def _pem_block(label: str, body: bytes) -> str:
    text = base64.encodebytes(body).decode()
    return f"-----BEGIN {label}-----\n{text}-----END {label}-----\n"


@st.composite
def mutated_der(draw: st.DrawFn) -> bytes:
    der = bytearray(draw(st.sampled_from(DERS)))
    for _ in range(draw(st.integers(0, 4))):
        der[draw(st.integers(0, len(der) - 1))] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(der)))
    return bytes(der[:cut] if draw(st.booleans()) else der)


LABELS = st.sampled_from(["CERTIFICATE", "X509 CERTIFICATE", "PUBLIC KEY", "RSA PUBLIC KEY",
                          "PRIVATE KEY", "TRUSTED CERTIFICATE", "X"])
PEMISH = st.one_of(
    st.builds(_pem_block, LABELS, st.binary(max_size=300)),
    st.builds(_pem_block, st.just("CERTIFICATE"), mutated_der()),
    st.builds(lambda der: _pem_block("CERTIFICATE", der)[:-20], mutated_der()),  # no END
    st.just("-----BEGIN CERTIFICATE-----\n"),
    st.just("-----END CERTIFICATE-----\n"),
)
OUTPUTS = st.one_of(
    st.text(max_size=200),
    st.lists(st.one_of(PEMISH, st.text(max_size=40)), max_size=5).map("".join),
    st.sampled_from([r.output for p in sorted(DATA.glob("*.appliance.txt"))
                     for r in facts.parse(p.read_text()).values()]),
)
RAW = st.builds(RawFact, output=OUTPUTS, exit_code=st.integers(-(2**31), 2**31))


def _check_cert(raw: RawFact | None) -> None:
    got = appliance.parse_cert(raw, "/p")
    assert isinstance(got, CertFile)
    assert not (got.chain and got.error), "a chain or an error, not both"
    for pem in got.chain:
        load(pem)
    if raw is not None and raw.ok and not got.chain:
        assert got.error


def _check_key(stat: RawFact | None, public: RawFact | None) -> None:
    got = appliance.parse_key(stat, public, "/k")
    assert isinstance(got, KeyFile)
    if got.public_key is not None:
        assert re.fullmatch(r"-----BEGIN PUBLIC KEY-----.+-----END PUBLIC KEY-----\n",
                            got.public_key, re.S)
    if stat is not None and stat.ok:
        # openssl read a private key file: its words are never repeated, only its status.
        expected = "not inspected" if public is None else (
            f"openssl could not read the key (exit {public.exit_code})")
        assert got.error in (None, expected)


def _check_served(raw: RawFact | None) -> None:
    got = appliance.parse_served(raw)
    assert isinstance(got, Served)
    assert bool(got.chain) != bool(got.error), "exactly one of a chain and an error"


def _check_csr(raw: RawFact | None) -> None:
    got = appliance.parse_csr(raw)
    assert got is None or got.startswith("-----BEGIN CERTIFICATE REQUEST-----")


def _check_lines(raw: RawFact | None) -> None:
    got = appliance.parse_lines(raw)
    assert isinstance(got, tuple)
    assert list(got) == sorted(got)
    assert all(line and line == line.strip() for line in got)


FACT_NAMES = ["cert", "key.stat", "key.public", "key.der", "backups", "served", "hostname",
              "pending.key.public", "pending.csr", "other"]


# One draw feeds every parser of the appliance's output (each is tested on every one of
# the 2,000 examples), then the whole.
@PARSER
@given(st.dictionaries(st.sampled_from(FACT_NAMES), RAW, max_size=6))
def test_every_appliance_parser_on_any_output(raw: dict[str, RawFact]) -> None:
    outputs = list(raw.values()) or [None]
    for one in (*outputs, None):
        _check_cert(one)
        _check_served(one)
        _check_csr(one)
        _check_lines(one)
    _check_key(raw.get("key.stat"), raw.get("key.public"))
    _check_key(outputs[0], outputs[-1])
    assert isinstance(appliance.parse(raw, _TARGET), ApplianceFacts)


def _target() -> Target:
    from wlbplan.model.spec import CertificateSpec, PoolSpec, WlbSpec

    return Target(name="t", pool=PoolSpec(coordinator="c"), wlb=WlbSpec(address=FQDN),
                  certificate=CertificateSpec(source="self-signed"))


_TARGET = _target()


# ---------------------------------------------------------------------- script safety

# Path parts a shell would act on if they were ever interpolated unquoted; each one that
# could run something would create tmp_path/pwnedN (the scripts run with tmp_path as cwd).
NASTY = [
    "two words", "it's", 'say "hi"', "$(touch pwned1)", "`touch pwned2`", "; touch pwned3 #",
    "&& touch pwned4", "| touch pwned5", "$HOME*?[a]{a,b}~", "back\\slash", "-n",
    "é ü 漢字", "> pwned6", "x\ntouch pwned7\n", "'$(touch pwned8)'", '"$(touch pwned9)"',
]
MARKERS = [f"pwned{i}" for i in range(1, 12)]


def _nasty_target(tmp_path: Path, part: str, make_target: Callable[..., Target]) -> Target:
    folder = tmp_path / part
    folder.mkdir(parents=True)
    issued = pki.build(FQDN, key=pki.make_key("ec", 256), sans=[FQDN])
    cert, key = folder / f"server{part}.pem", folder / f"server{part}.key"
    cert.write_bytes(issued.cert_pem)
    key.write_bytes(issued.key_pem)
    key.chmod(0o600)
    (folder / f"server{part}.pem_orig").write_bytes(issued.cert_pem)
    from wlbplan.lab.procs import free_port

    return make_target(cert=str(cert), key=str(key), address=f"wlb{part}.test",
                       port=free_port())


@pytest.mark.parametrize("part", NASTY)
def test_appliance_script_is_valid_sh(part: str, tmp_path: Path,
                                      make_target: Callable[..., Target]) -> None:
    text = appliance.script(_nasty_target(tmp_path, part, make_target))
    checked = subprocess.run(["sh", "-n", "-c", text], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize("part", NASTY)
def test_appliance_script_runs_nothing_injected(part: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                make_target: Callable[..., Target]) -> None:
    target = _nasty_target(tmp_path, part, make_target)
    monkeypatch.chdir(tmp_path)
    result = LocalRunner().run(shell_script(appliance.script(target)), timeout=60)
    assert [m for m in MARKERS if (tmp_path / m).exists()] == []
    assert result.exit_code == 0, result.stderr
    got = appliance.parse(facts.parse(result.stdout), target)
    # The files at the odd paths really were read, each by its own path.
    assert subjects(got.cert.chain) == (f"CN={FQDN}",)
    assert got.key.public_key is not None
    assert certs.key_matches(load(got.cert.chain[0]), got.key.public_key.encode())
    assert got.served.chain == ()  # nothing listens on that port
    if "\n" not in part:
        assert got.backups == (str(target.wlb.paths.cert) + "_orig",)


def test_appliance_script_with_an_absolute_marker_path(tmp_path: Path,
                                                       make_target: Callable[..., Target]) -> None:
    """The brief's own example: a path /…/x$(touch /…/pwned) must not create the marker."""
    marker = tmp_path / "pwned-abs"
    cert = f"{tmp_path}/x$(touch {marker})"
    target = make_target(cert=cert, key=cert + ".key", port=1)
    result = LocalRunner().run(shell_script(appliance.script(target)), timeout=60)
    assert not marker.exists()
    got = appliance.parse(facts.parse(result.stdout), target)
    assert got.cert == CertFile(path=cert, present=False)
    assert got.key == KeyFile(path=cert + ".key", present=False)


# --------------------------------------------------- leftovers and addresses (audit only)


def _capture_target(situation: str, make_target: Callable[..., Target]) -> Target:
    """A target whose paths are those of the lab the capture was made in."""
    said = facts.parse((DATA / f"{situation}.appliance.txt").read_text())["leftovers"].output
    folder = next((line.split(" ", 1)[1].rsplit("/", 1)[0] for line in said.splitlines()[1:]),
                  "/etc/ssl/certs")
    return make_target(cert=f"{folder}/server.pem", key=f"{folder}/server.key")


@pytest.mark.parametrize("situation", sorted(EXPECTED))
def test_captured_leftovers_and_their_ages(situation: str,
                                           make_target: Callable[..., Target]) -> None:
    target = _capture_target(situation, make_target)
    raw = facts.parse((DATA / f"{situation}.appliance.txt").read_text())
    got = appliance.parse_checks(raw, target)
    key = str(target.wlb.paths.key)
    if situation == "fault-stale-backups":  # made 45 days before the capture's clock
        assert got.leftovers == (
            Leftover(key + ".pending", "pending key", 45),
            Leftover(key + "_orig", "backup", 45),
            Leftover(str(target.wlb.paths.cert) + "_orig", "backup", 45),
        )
    elif situation == "backups":
        assert {(i.kind, i.age_days) for i in got.leftovers} == {("backup", 0)}
        assert len(got.leftovers) == 2
    else:
        assert got.leftovers == ()
    assert got.addresses  # the capture machine's own
    assert all(str(ipaddress.ip_address(a)) == a for a in got.addresses)


@pytest.mark.parametrize(("output", "expected"), [
    # a name with a newline in it cannot pass a forged line for a file of its own
    ("1000000\n100 /etc/ssl/certs/server.pem_orig\n/etc/passwd\n5 /etc/passwd\n",
     (("/etc/ssl/certs/server.pem_orig", "backup", 11),)),
    ("1000000\n999999999 /etc/ssl/certs/server.key.pending\n",  # dated in the future
     (("/etc/ssl/certs/server.key.pending", "pending key", 0),)),
    ("1000000\n0 /etc/ssl/certs/server.key.pending.wlbplan-old\n"
     "0 /etc/ssl/server.csr.pending.wlbplan-old\n",
     (("/etc/ssl/certs/server.key.pending.wlbplan-old", "set aside", 11),)),
    ("not a clock\n100 /etc/ssl/certs/server.pem_orig\n", ()),
    ("", ()),
])
def test_leftover_lines(output: str, expected: tuple[tuple[str, str, int], ...],
                        target: Target) -> None:
    got = appliance.parse_leftovers(RawFact(output, 0), target)
    assert got == tuple(Leftover(*item) for item in expected)


@PARSER
@given(st.text(max_size=600), st.integers(0, 255))
def test_parse_leftovers_and_addresses_on_any_output(output: str, code: int) -> None:
    got = appliance.parse_leftovers(RawFact(output, code), _TARGET)
    assert len(got) <= appliance.MAX_LEFTOVERS
    assert [i.path for i in got] == sorted({i.path for i in got})
    for item in got:
        assert item.age_days >= 0
        assert item.kind in ("backup", "set aside", "pending key")
        assert item.path.startswith(str(_TARGET.wlb.paths.cert.parent))
    addresses = appliance.parse_addresses(RawFact(output, code))
    assert len(addresses) <= appliance.MAX_LEFTOVERS
    assert all(str(ipaddress.ip_address(a)) == a for a in addresses)
