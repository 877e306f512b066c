"""The preflight's verdict on what ``openssl s_client`` printed on the coordinator.

The captures in data/ are real s_client runs (OpenSSL 3.0) against the lab's stunnel,
with the preflight's own arguments; session secrets are cut out.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import threading
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st
from property_settings import PARSER

from wlbplan import certs
from wlbplan.actions.pool import handshake_verdict
from wlbplan.core.steps.pool import bundle_path, preflight_argv
from wlbplan.inspect.script import RawFact
from wlbplan.lab import pki
from wlbplan.model.spec import CertificateSpec, PoolSpec, Target, WlbSpec

DATA = Path(__file__).resolve().parent / "data"
BUNDLE = RawFact("-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----", 0)


def _verdict(output: str, exit_code: int) -> str | None:
    return handshake_verdict({"handshake": RawFact(output, exit_code), "bundle": BUNDLE},
                             legacy=False)


def _capture(name: str) -> str:
    return (DATA / f"{name}.txt").read_text()


def test_a_complete_handshake_passes() -> None:
    assert _verdict(_capture("handshake-ok"), 0) is None


def test_a_peer_that_resets_after_a_complete_handshake_passes() -> None:
    """stunnel resets the connection when the service behind it is down; the handshake
    (certificate, name, chain, cipher) already passed, which is what the pool checks."""
    output = _capture("handshake-ok-then-reset")
    assert "read:errno=104" in output
    assert _verdict(output, 104) is None


def test_no_handshake_is_no_pass_although_openssl_says_verify_ok() -> None:
    """An Ed25519 WLB certificate against xapi's ECDHE-RSA suites: the server aborts with
    an alert, no certificate arrives, and s_client still prints "Verify return code: 0
    (ok)" (issue 16 #18)."""
    output = _capture("ed25519-no-handshake")
    assert "Verify return code: 0 (ok)" in output
    assert "no peer certificate available" in output
    reason = _verdict(output, 1)
    assert reason is not None
    assert "no TLS handshake" in reason
    assert "sslv3 alert handshake failure" in reason
    assert "80FB8F00337F0000" not in reason  # OpenSSL's thread id is not a reason


def test_the_same_output_with_exit_zero_is_still_no_pass() -> None:
    assert _verdict(_capture("ed25519-no-handshake"), 0) is not None


def test_a_certificate_but_no_cipher_is_no_pass() -> None:
    output = _capture("handshake-ok").replace(
        "New, TLSv1.2, Cipher is ECDHE-RSA-AES256-GCM-SHA384", "New, (NONE), Cipher is (NONE)")
    reason = _verdict(output, 0)
    assert reason is not None
    assert "no cipher was negotiated" in reason


def test_a_certificate_without_any_cipher_line_is_no_pass() -> None:
    output = "\n".join(line for line in _capture("handshake-ok").splitlines()
                       if "Cipher is" not in line)
    assert _verdict(output, 0) is not None


@pytest.mark.parametrize("code", [1, 124])
def test_a_failed_s_client_without_a_peer_close_is_no_pass(code: int) -> None:
    """Exit 124 is `timeout` ending it; exit 1 with OpenSSL's own error lines is a
    failure after the certificate came."""
    output = _capture("handshake-ok") + (
        "\n4007A1B2C3D40000:error:0A000126:SSL routines:ssl3_read_n:unexpected eof while "
        "reading:../ssl/record/rec_layer_s3.c:308:\n" if code == 1 else "")
    reason = _verdict(output, code)
    assert reason is not None
    assert f"exit {code}" in reason


def test_a_reset_with_an_openssl_error_is_no_pass() -> None:
    output = _capture("handshake-ok-then-reset") + (
        "\n4007A1B2C3D40000:error:0A000410:SSL routines:ssl3_read_bytes:sslv3 alert "
        "handshake failure:../ssl/record/rec_layer_s3.c:1601:SSL alert number 40\n")
    assert _verdict(output, 1) is not None


# ---- any output (issue 10) ------------------------------------------------------------------

CAPTURES = [(DATA / name).read_text() for name in sorted(p.name for p in DATA.glob("*.txt"))]
LINES = [line for text in CAPTURES for line in text.splitlines()] + [
    "verify error:num=62:hostname mismatch", "Verify return code: 10 (certificate has expired)",
    "New, TLSv1.2, Cipher is (NONE)", "read:errno=104", "closed", "-----BEGIN CERTIFICATE-----",
    "-----END CERTIFICATE-----", "connect:errno=111", "x:error:y:z:w:v"]


LINE = st.sampled_from(LINES) | st.text(max_size=30)
# (where, how many lines to drop there, lines to put in their place)
EDIT = st.tuples(st.integers(0, 60), st.integers(0, 3), st.lists(LINE, max_size=2))


def _edited(capture: str, edits: list[tuple[int, int, list[str]]], cut: int | None) -> str:
    lines = capture.splitlines()
    for at, drop, put in edits:
        lines[at:at + drop] = put
    text = "\n".join(lines)
    return text if cut is None else text[:cut]


# A capture with lines dropped, replaced or added, perhaps cut short; or lines in any order.
OUTPUT = st.one_of(
    st.builds(_edited, st.sampled_from(CAPTURES), st.lists(EDIT, max_size=4),
              st.none() | st.integers(0, 2500)),
    st.lists(LINE, max_size=8).map("\n".join),
)
FACT = st.builds(RawFact, OUTPUT, st.sampled_from([0, 1, 124, 255]))


@PARSER
@given(st.fixed_dictionaries({}, optional={"handshake": FACT, "bundle": FACT}),
       st.booleans())
def test_any_output_gives_a_pass_or_a_reason(raw: dict[str, RawFact], legacy: bool) -> None:
    verdict = handshake_verdict(raw, legacy=legacy)
    assert verdict is None or (isinstance(verdict, str) and verdict)
    if verdict is None:
        assert "Verify return code: 0 (ok)" in raw["handshake"].output


# ---- the preflight's own command over IPv6 (issue 16 #13) ---------------------------------


def _serve_once(folder: Path, fqdn: str,
                issued: pki.Issued | None = None) -> tuple[int, threading.Thread]:
    """A TLS server on [::1] with an RSA certificate for ``fqdn`` (self-signed unless
    ``issued``): one handshake."""
    issued = issued or pki.appliance_self_signed(fqdn)
    (folder / "server.pem").write_bytes(issued.cert_pem)
    pki.write_private(folder / "server.key", issued.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "server.pem", folder / "server.key")
    listener = socket.socket(socket.AF_INET6)
    listener.bind(("::1", 0))
    listener.listen(1)
    listener.settimeout(20)

    def answer() -> None:
        with listener:
            conn, _ = listener.accept()
            with contextlib.suppress(OSError), context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread


def test_the_preflight_reaches_an_ipv6_address(tmp_path: Path) -> None:
    """``-connect ::1:PORT`` is refused by s_client ("malformed or ambiguous"): the
    address must be in brackets, as in a wlb-url."""
    fqdn = "wlb.example.com"
    port, thread = _serve_once(tmp_path, fqdn)
    trust = tmp_path / "stunnel"
    trust.mkdir()
    target = Target(name="t", pool=PoolSpec("xs1", trust_dir=PurePosixPath(trust)),
                    wlb=WlbSpec(fqdn, port=port), certificate=CertificateSpec("self-signed"))
    Path(bundle_path(target)).write_bytes((tmp_path / "server.pem").read_bytes())
    argv = preflight_argv(target, fqdn, "::1", port, legacy=False)
    assert argv[argv.index("-connect") + 1] == f"[::1]:{port}"
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL, check=False)
    thread.join(timeout=20)
    bundle = RawFact(Path(bundle_path(target)).read_text(), 0)
    output = done.stdout + done.stderr
    assert handshake_verdict({"handshake": RawFact(output, done.returncode),
                              "bundle": bundle}, legacy=False) is None, output


# ---- legacy xapi: the leaf itself must be in the bundle (issue 12) ------------------------

def _preflight(folder: Path, served: pki.Issued, bundle: bytes, legacy: bool) -> str | None:
    """The preflight's own s_client against ``served``, with ``bundle`` as the pool's."""
    fqdn = "wlb.example.com"
    folder.mkdir()
    port, thread = _serve_once(folder, fqdn, served)
    trust = folder / "stunnel"
    trust.mkdir()
    target = Target(name="t", pool=PoolSpec("xs1", trust_dir=PurePosixPath(trust)),
                    wlb=WlbSpec(fqdn, port=port), certificate=CertificateSpec("self-signed"))
    Path(bundle_path(target)).write_bytes(bundle)
    done = subprocess.run(preflight_argv(target, fqdn, "::1", port, legacy=legacy),
                          capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL, check=False)
    thread.join(timeout=20)
    return handshake_verdict({"handshake": RawFact(done.stdout + done.stderr, done.returncode),
                              "bundle": RawFact(bundle.decode(), 0)}, legacy=legacy)


def test_a_leaf_not_in_the_bundle_is_refused_for_that_by_legacy_xapi_issuer_or_not(
        tmp_path: Path) -> None:
    """Legacy xapi (verifyPeer) ignores the leaf's issuer and refuses a leaf that is not in
    its bundle: that is the reason, whether the bundle holds the issuer (the coordinator's)
    or not (over XenAPI, the bundle never holds a CA wlbplan has no PEM of). Before:
    without the issuer, OpenSSL's "unable to get local issuer certificate", which sent the
    operator after the root instead of the leaf."""
    root = pki.build("Corp Root CA", ca=True)
    leaf = pki.build("wlb.example.com", issuer=root, sans=["wlb.example.com"])
    before = pki.appliance_self_signed("wlb.example.com").cert_pem  # what it served before
    without_root = _preflight(tmp_path / "a", leaf, before, legacy=True)
    with_root = _preflight(tmp_path / "b", leaf, before + root.cert_pem, legacy=True)
    assert without_root == with_root == certs.NOT_LOCAL_REASON
    # xapi >= 24.40 checks the chain: there the missing root is the reason.
    chain = _preflight(tmp_path / "c", leaf, before, legacy=False)
    assert chain == "unable to get local issuer certificate"
