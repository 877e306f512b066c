"""Bad input gives a clear error, never a traceback (issue 10): every broken spec, and every
broken certificate file a spec names, stops every command that reads the spec with exit 1
and a message that says what is wrong where (FILE:LINE:COL), before any host is touched.

The table below is the spec side of SECURITY.md's "Bad input" list. What hosts print and
what state folders hold are tested on the lab: tests/commands/test_bad_host_output_lab.py,
tests/run/test_bad_state_files.py, tests/run/test_journal_trust.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from wlbplan.cli import main
from wlbplan.limits import PEM, SPEC

CERTS = Path(__file__).resolve().parents[1] / "data" / "certs"
ROOT_PEM = (CERTS / "openssl-root.pem").read_bytes()
ROOT_DER = x509.load_pem_x509_certificate(ROOT_PEM).public_bytes(serialization.Encoding.DER)
# A fixed key (no key generation per run); the test checks it never reaches the output.
KEY_PEM = ec.derive_private_key(0x5EC2E7, ec.SECP256R1()).private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
    serialization.NoEncryption())
KEY_BODY = KEY_PEM.splitlines()[1].decode()

# Python's own words for a failure: none may reach the operator.
INTERNALS = re.compile(r"Traceback|Internal error|\b\w+(Error|Exception)\b|cryptography\.io|"
                       r"ParseError|InvalidData")

TARGET = """
  - name: p1
    pool: {{coordinator: localhost, xe: {xe}, connection: local, state_dir: {d}/state}}
    wlb:
      address: wlb.example.test
      connection: local
      paths: {{cert: {d}/server.pem, key: {d}/server.key}}
    certificate: {certificate}
"""
SELF_SIGNED = "{source: self-signed}"


def spec_text(folder: Path, certificate: str = SELF_SIGNED) -> str:
    target = TARGET.format(xe=folder / "xe", d=folder, certificate=certificate)
    return f"version: 1\ntargets:{target}"


def ca_signed(where: str) -> str:
    """A ca-signed certificate section whose file at ``where`` (signed, intermediate or
    root) is ``bad.pem``; the others hold a good certificate."""
    files = {"signed": "good.pem", "intermediate": "good.pem", "root": "good.pem", where: "bad.pem"}
    return ("{source: ca-signed, request: {common_name: wlb.example.test}, "
            f"signed: {files['signed']}, intermediates: [{files['intermediate']}], "
            f"root: {files['root']}}}")


def alias_bomb(folder: Path) -> bytes:
    lines = ["version: 1", "x-0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"x-{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]
    return ("\n".join(lines) + "\n").encode() + spec_text(folder).split("\n", 1)[1].encode()


def over_cap(folder: Path) -> bytes:
    return spec_text(folder).encode() + b"#" * SPEC.size


Spec = Callable[[Path], bytes]


def text(make: Callable[[Path], str]) -> Spec:
    return lambda folder: make(folder).encode()


# (id, the spec's bytes, the certificate file bad.pem's bytes or None, words the message holds)
SPECS: list[tuple[str, Spec, bytes | None, str]] = [
    ("alias-bomb", alias_bomb, None, "the document is too large (an alias expanding too often?)"),
    ("over-the-size-cap", over_cap, None, f"larger than {SPEC}, the most wlbplan reads from a "
                                          "spec file"),
    ("not-utf8", lambda f: spec_text(f).replace("p1", "caf\xe9").encode("latin-1"), None,
     ":3:14: error: the file is not UTF-8 (byte 0xe9)"),
    ("duplicate-key", text(lambda f: spec_text(f) + "    verify: true\n    verify: false\n"),
     None, "targets[0].verify: duplicate key 'verify' (first at line"),
    ("wrong-type", text(lambda f: spec_text(f).replace("version: 1", "version: '1'")), None,
     ":1:10: error: version: must be an integer, got a string"),
    ("wrong-type-deep", text(lambda f: spec_text(f).replace("local, state_dir", "5, state_dir")),
     None, "error: targets[0].pool.connection: 5 is not one of: ssh, local"),
    ("a-list", text(lambda f: "- version: 1\n- targets: []\n"), None,
     ":1:1: error: must be a mapping, got a list"),
    ("a-scalar", text(lambda f: "just some words\n"), None,
     ":1:1: error: must be a mapping, got a string"),
    ("a-number", text(lambda f: "42\n"), None, ":1:1: error: must be a mapping, got an integer"),
    ("empty", text(lambda f: ""), None, ":1:1: error: the spec is empty"),
    ("only-comments", text(lambda f: "# version: 1\n\n  # targets: []\n"), None,
     ":1:1: error: the spec is empty"),
    ("nested-too-deeply", text(lambda f: "x: " + "[" * 3000 + "]" * 3000 + "\n"), None,
     "nested too deeply"),
    ("yaml-syntax", text(lambda f: spec_text(f) + "  - name: [unclosed\n"), None,
     "error: YAML syntax error"),
    ("malformed-pem", text(lambda f: spec_text(f, ca_signed("signed"))),
     b"-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
     "certificate.signed: {d}/bad.pem: certificate 1 in the bundle is not valid: its base64 "
     "text is damaged"),
    ("not-a-certificate-inside", text(lambda f: spec_text(f, ca_signed("root"))),
     b"-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n",
     "certificate.root: {d}/bad.pem: certificate 1 in the bundle is not valid: its content is "
     "not a well-formed X.509 certificate (DER)"),
    ("der-as-pem", text(lambda f: spec_text(f, ca_signed("intermediate"))), ROOT_DER,
     "certificate.intermediates[0]: {d}/bad.pem: no PEM certificate found: it is binary, "
     "DER-encoded perhaps; wlbplan reads PEM: convert it with `openssl x509 -inform DER"),
    ("private-key-not-certificate", text(lambda f: spec_text(f, ca_signed("signed"))), KEY_PEM,
     "certificate.signed: {d}/bad.pem: no PEM certificate found: it holds a private key where "
     "a certificate is expected"),
    ("empty-bundle", text(lambda f: spec_text(f, ca_signed("root"))), b"",
     "certificate.root: {d}/bad.pem: no PEM certificate found: it is empty"),
    ("blank-bundle", text(lambda f: spec_text(f, ca_signed("signed"))), b"\n \n",
     "certificate.signed: {d}/bad.pem: no PEM certificate found: it is empty"),
    ("truncated-pem", text(lambda f: spec_text(f, ca_signed("signed"))), ROOT_PEM[:300],
     "certificate.signed: {d}/bad.pem: certificate bundle has a BEGIN CERTIFICATE line without "
     "its END line"),
    ("bundle-over-the-size-cap", text(lambda f: spec_text(f, ca_signed("root"))),
     ROOT_PEM + b"\n" * PEM.size, f"larger than {PEM}, the most wlbplan reads from a "
                                  "certificate file"),
]


COMMANDS = [["validate"], ["inspect"], ["plan"], ["apply", "--auto-approve"], ["audit"],
            ["rollback", "--target", "p1"]]


@pytest.fixture
def place(tmp_path: Path) -> Path:
    """A folder with an ``xe`` that leaves a marker when run: a host was contacted."""
    xe = tmp_path / "xe"
    xe.write_text(f"#!/bin/sh\ntouch {tmp_path / 'touched'}\nexit 1\n")
    xe.chmod(0o755)
    (tmp_path / "good.pem").write_bytes(ROOT_PEM)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as done:
        main(argv)
    out, err = capsys.readouterr()
    assert isinstance(done.value.code, int)
    return done.value.code, out + err


@pytest.mark.parametrize(("make", "pem", "says"), [c[1:] for c in SPECS],
                         ids=[c[0] for c in SPECS])
def test_a_bad_spec_stops_every_command_with_exit_1_and_says_where(
        place: Path, capsys: pytest.CaptureFixture[str], make: Spec, pem: bytes | None,
        says: str) -> None:
    spec = place / "spec.yaml"
    spec.write_bytes(make(place))
    if pem is not None:
        (place / "bad.pem").write_bytes(pem)
    for command in COMMANDS:
        code, said = run(capsys, [command[0], str(spec), *command[1:]])
        assert code == 1, (command, said)
        assert says.format(d=place) in said, (command, said)
        assert str(spec) in said, (command, said)
        assert not INTERNALS.search(said), (command, said)
        assert KEY_BODY not in said, (command, said)
        assert "PRIVATE" not in said, (command, said)
    assert not (place / "touched").exists(), "a host was contacted"


def test_the_marker_shows_when_a_host_is_contacted(place: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """The table's own check can fail: with a good certificate, plan runs the pool's xe."""
    spec = place / "spec.yaml"
    spec.write_text(spec_text(place, ca_signed("signed")).replace("bad.pem", "good.pem"))
    code, said = run(capsys, ["plan", str(spec)])
    assert code == 1, said
    assert (place / "touched").exists()


def _odd_country_root() -> bytes:
    """A CA certificate whose countryName has six letters: cryptography warns as it reads
    it (a host may serve or trust one just as well)."""
    import datetime as dt

    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = ec.derive_private_key(0xC0C0A, ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "ABCDEF", _validate=False),
                      x509.NameAttribute(NameOID.COMMON_NAME, "Odd Root")])
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.mark.filterwarnings("ignore:Attribute's length")  # made here on purpose
def test_no_python_warning_reaches_the_operator(place: Path) -> None:
    """Before: `validate` printed ``…/certs/parse.py:109: UserWarning: Attribute's length
    must be >= 2 and <= 2, but it was 6`` and the source line on stderr."""
    (place / "bad.pem").write_bytes(_odd_country_root())
    spec = place / "spec.yaml"
    spec.write_text(spec_text(place, ca_signed("root")))
    done = subprocess.run([sys.executable, "-m", "wlbplan", "validate", str(spec)],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "PYTHONWARNINGS": ""})
    assert (done.returncode, done.stdout, done.stderr) == (
        0, "Success! The spec is valid.\n", "")


# A saved plan is read back by `show` and `apply`: (id, its bytes, words the message holds).
PLANS = [
    ("nested-too-deeply", b"[" * 100_000, "is not a plan file: its JSON is nested too deeply"),
    ("not-utf8", b'{"format_version": "1.2", "x": "\xe9"}', "is not a plan file (not UTF-8"),
    ("not-json", b'{"format_version": "1.2",', "is not a plan file: invalid JSON at line 1"),
    ("a-list", b"[1, 2]", "is not a wlbplan plan file (no format_version)"),
    ("wrong-types", b'{"format_version": 1.2}', "is not a valid plan file"),
]


@pytest.mark.parametrize(("raw", "says"), [c[1:] for c in PLANS], ids=[c[0] for c in PLANS])
def test_a_bad_plan_file_is_exit_1_in_words(place: Path, capsys: pytest.CaptureFixture[str],
                                            raw: bytes, says: str) -> None:
    """Before: a plan nested past Python's JSON reader (RecursionError) was exit 3."""
    plan = place / "tfplan"
    plan.write_bytes(raw)
    code, said = run(capsys, ["show", str(plan)])
    assert code == 1, said
    assert f"{plan} {says}" in said, said
    assert not INTERNALS.search(said), said
    # apply reads what does not look like a plan as a spec: refused all the same
    code, said = run(capsys, ["apply", str(plan)])
    assert code == 1, said
    assert not INTERNALS.search(said), said
