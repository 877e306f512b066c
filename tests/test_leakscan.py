"""The leak scan itself (tests/leakscan.py): it finds what it promises to find, in every
form, and does not cry wolf over public halves (certificates, .pub files, known_hosts)."""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from leakscan import (
    WINDOW,
    FileCache,
    Secrets,
    find_leaks,
    private_keys,
    scan_files,
)

from wlbplan.lab import pki

TESTS = Path(__file__).resolve().parent
PKCS8 = serialization.PrivateFormat.PKCS8
PEM = serialization.Encoding.PEM
NONE = serialization.NoEncryption()


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _ec() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


KEYS: dict[str, Callable[[], bytes]] = {
    "rsa-pkcs8": lambda: _rsa().private_bytes(PEM, PKCS8, NONE),
    "rsa-traditional": lambda: _rsa().private_bytes(
        PEM, serialization.PrivateFormat.TraditionalOpenSSL, NONE),
    "ec-sec1": lambda: _ec().private_bytes(
        PEM, serialization.PrivateFormat.TraditionalOpenSSL, NONE),
    "ec-pkcs8": lambda: _ec().private_bytes(PEM, PKCS8, NONE),
    "ed25519-openssh": lambda: ed25519.Ed25519PrivateKey.generate().private_bytes(
        PEM, serialization.PrivateFormat.OpenSSH, NONE),
    "rsa-encrypted": lambda: _rsa().private_bytes(
        PEM, PKCS8, serialization.BestAvailableEncryption(b"passphrase")),
}


def body_of(pem: bytes) -> str:
    return "".join(line for line in pem.decode().splitlines() if "-----" not in line)


def secrets_of(pem: bytes) -> Secrets:
    secrets = Secrets()
    for key in private_keys(pem.decode(), "in test.key"):
        secrets.add_key(key)
    return secrets


@pytest.fixture(scope="module", params=sorted(KEYS))
def pem(request: pytest.FixtureRequest) -> bytes:
    return KEYS[request.param]()


def test_the_header_of_every_kind_of_private_key_is_found(pem: bytes) -> None:
    header = pem.decode().splitlines()[0]
    assert find_leaks(f"oops: {header}", Secrets()) == ["a private-key PEM header"]


def _public_encodings(pem: bytes) -> list[str]:
    """The public key's blobs in base64 at each of the three alignments: where a stretch
    of the private body is public (an RSA modulus, an EC point), it is in one of these."""
    data = pem
    try:
        key = serialization.load_pem_private_key(data, None)
    except (ValueError, TypeError):
        try:
            key = serialization.load_ssh_private_key(data, None)
        except (ValueError, TypeError):
            return []  # encrypted: nothing public in it
    public = key.public_key()
    blobs = [public.public_bytes(serialization.Encoding.DER,
                                 serialization.PublicFormat.SubjectPublicKeyInfo),
             base64.b64decode(public.public_bytes(serialization.Encoding.OpenSSH,
                                                  serialization.PublicFormat.OpenSSH).split()[1])]
    return [base64.b64encode(b"\0" * pad + blob).decode() for blob in blobs for pad in range(3)]


def test_every_private_40_character_slice_is_found_however_it_is_wrapped(pem: bytes) -> None:
    secrets, body = secrets_of(pem), body_of(pem)
    public = _public_encodings(pem)
    leak = [f"{WINDOW}+ characters of the private key in test.key"]
    checked = 0
    for at in [*range(0, len(body) - WINDOW, 11), len(body) - WINDOW]:
        piece = body[at:at + WINDOW]
        if any(piece in text for text in public):
            assert find_leaks(f"x={piece};", secrets) == [], at  # the public half
            continue
        checked += 1
        wrapped = "\n".join(textwrap.wrap(body[max(0, at - 7):at + WINDOW + 9], 17))
        for text in (f"x={piece};", json.dumps({"leak": wrapped}), f"<v>{wrapped}</v>",
                     f"| `{piece}` |"):
            assert find_leaks(text, secrets) == leak, (at, text)
        assert find_leaks(f"x={piece[1:]};", secrets) == [], at  # 39 characters: no promise
    assert checked >= 5


def _public_texts(key: object) -> list[str]:
    """What may be shown of a key: its certificate, public key, .pub and known_hosts."""
    public = key.public_key()  # type: ignore[attr-defined]
    texts = [public.public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()]
    ssh_line = public.public_bytes(serialization.Encoding.OpenSSH,
                                   serialization.PublicFormat.OpenSSH).decode()
    texts += [ssh_line, f"[127.0.0.1]:2222 {ssh_line}\n", json.dumps({"pub": ssh_line})]
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        issued = pki.build("wlb1.lab.test", key=key)  # type: ignore[arg-type]
        texts += [issued.cert_pem.decode(), json.dumps({"pem": issued.cert_pem.decode()})]
    return texts


@pytest.mark.parametrize("make", [_rsa, _ec, ed25519.Ed25519PrivateKey.generate])
def test_the_public_half_of_a_key_is_no_leak(make: Callable[[], object]) -> None:
    """Certificates and public keys share long stretches with the private key's body (an
    RSA modulus, an EC point, an Ed25519 public key): those are not key material."""
    key = make()
    form = serialization.PrivateFormat.OpenSSH if isinstance(key, ed25519.Ed25519PrivateKey) \
        else PKCS8
    secrets = secrets_of(key.private_bytes(PEM, form, NONE))  # type: ignore[attr-defined]
    for text in _public_texts(key) * 3:
        assert find_leaks(text, secrets) == [], text


def test_every_form_of_a_password_is_found_and_short_values_are_not_searched() -> None:
    secrets = Secrets()
    secrets.add_password("pa ss'wo\"rd", "$T_WLB_PASS")
    secrets.add_password("short", "$T_XS_PASS")
    value = "pa ss'wo\"rd"
    for text in (value, json.dumps({"p": value}), f"echo {shlex.quote(value)}"):
        assert find_leaks(text, secrets) == ["the password $T_WLB_PASS"], text
    assert find_leaks("a short story", secrets) == []


@pytest.fixture
def planted() -> Iterator[Path]:
    """A folder outside this test's own: the leaks planted there are not this test's."""
    folder = Path(tempfile.mkdtemp(prefix="leakscan-planted-"))
    yield folder
    shutil.rmtree(folder)


def test_files_left_are_searched_and_key_files_are_told_from_leaks(planted: Path) -> None:
    """A lab-like tree: keys where keys live, passwords where the lab keeps them; what
    wlbplan writes (journal, report, a fetched CSR) must hold neither."""
    tmp_path = planted
    key_pem = KEYS["rsa-pkcs8"]()
    body = body_of(key_pem)
    lab = tmp_path / "lab"
    certs = lab / "pool1" / "appliance" / "etc" / "ssl" / "certs"
    certs.mkdir(parents=True)
    (certs / "server.key").write_bytes(key_pem)
    # The appliance's own files hold keys by design, even in a malformed server.pem.
    issued = pki.build("wlb1.lab.test", key=pki.make_key())
    (certs / "server.pem").write_bytes(issued.cert_pem[:-30] + key_pem + issued.cert_pem)
    (lab / "logins.env").write_text("# logins\nPOOL1_WLB_USER=wlbuser\n"
                                    "POOL1_WLB_PASS=Zq8-secret-value\n")
    state = lab / "pool1" / "pool" / "hosts" / "xs1-01" / "var" / "lib" / "wlbplan"
    state.mkdir(parents=True)
    journal = state / "pool1" / "journal.jsonl"
    journal.parent.mkdir()
    clean = {"report.json": '{"ok": true}', "plan.md": "# plan\n"}
    for name, text in clean.items():
        (tmp_path / name).write_text(text)

    def scan() -> list[str]:
        return scan_files([tmp_path], Secrets(), FileCache(), tmp_path)

    assert scan() == []
    journal.write_text(json.dumps({"undo": body[-345:-300]}) + "\n")  # the primes
    (tmp_path / "request.csr").write_bytes(key_pem)  # a key fetched in place of a CSR
    (tmp_path / "chain.pem").write_bytes(issued.cert_pem + issued.key_pem)  # signed, keyed
    trust = lab / "pool1" / "pool" / "hosts" / "xs1-01" / "etc" / "stunnel" / "certs"
    trust.mkdir(parents=True)
    (trust / "wlb.pem").write_bytes(issued.cert_pem + key_pem)  # a pool host's trust store
    (tmp_path / "id").write_bytes(issued.key_pem)  # an identity a test made: a key file
    (tmp_path / "report.sarif").write_text(json.dumps({"msg": "Zq8-secret-value"}))
    found = scan()
    where = "lab/pool1/pool/hosts/xs1-01/var/lib/wlbplan/pool1/journal.jsonl"
    assert sorted(found) == sorted([
        f"file {where}: {WINDOW}+ characters of the private key in {certs / 'server.key'}",
        "file request.csr: a private key in a file that is not a key file",
        "file chain.pem: a private key in a file that is not a key file",
        "file lab/pool1/pool/hosts/xs1-01/etc/stunnel/certs/wlb.pem: a private key in a file "
        "that is not a key file",
        "file report.sarif: the password POOL1_WLB_PASS of logins.env",
    ])


INNER = '''
import os, subprocess, sys
import pytest
from click.testing import CliRunner
from wlbplan.errors import WlbplanError
from wlbplan.lab import pki

def key_pem():
    return pki.key_pem(pki.make_key("ec", 256)).decode()

def body(pem):
    return "".join(pem.splitlines()[1:-1])

def test_prints_a_key():
    print(key_pem())

def test_leaves_a_journal_with_a_key_slice(tmp_path):
    pem = key_pem()
    (tmp_path / "server.key").write_text(pem)
    (tmp_path / "journal.jsonl").write_text('{"x": "%s"}' % body(pem)[20:62])

def test_prints_a_password(monkeypatch):
    monkeypatch.setenv("T_WLB_PASS", os.urandom(8).hex())
    print("password:", os.environ["T_WLB_PASS"])

def test_a_subprocess_shows_a_password_it_was_given():
    value = os.urandom(8).hex()
    subprocess.run(["sh", "-c", 'echo "$APP_PASSWORD"'], env={"APP_PASSWORD": value},
                   capture_output=True, check=True)

def test_a_cli_result_shows_a_key_header():
    import click
    pem = key_pem()
    CliRunner().invoke(click.command()(lambda: click.echo(pem.splitlines()[0])))

def test_an_error_message_quotes_a_key(tmp_path):
    pem = key_pem()
    (tmp_path / "id_lab").write_text(pem)
    with pytest.raises(WlbplanError):
        raise WlbplanError("bad key: " + body(pem)[10:60])

def test_an_in_process_run_shows_a_password(monkeypatch):
    import inprocess
    monkeypatch.setenv("T_XS_PASS", os.urandom(8).hex())
    inprocess.wlbplan("validate", "/nowhere/" + os.environ["T_XS_PASS"] + ".yaml")

def test_a_key_file_and_its_certificate_shown_are_fine(tmp_path):
    issued = pki.build("x", key=pki.make_key("rsa", 2048))
    (tmp_path / "server.key").write_bytes(issued.key_pem)
    print(issued.cert_pem.decode())
    (tmp_path / "plan.json").write_text(repr(issued.cert_pem))
'''


def test_the_fixture_fails_a_test_that_leaks_and_passes_one_that_does_not(
    tmp_path: Path
) -> None:
    """An inner pytest run with the plugin: every leaking test ends in a teardown error
    naming the place; the clean one passes. Its tmp folders lie outside this test's (its
    planted leaks are not this test's), and it shows no captured output."""
    (tmp_path / "test_inner.py").write_text(INNER)
    inner_tmp = Path(tempfile.mkdtemp(prefix="leakscan-inner-"))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "leakscan", "-p", "no:cacheprovider",
             "-p", "no:xdist", "-q", "-rE", "--show-capture=no", "--tb=line",
             "--basetemp", str(inner_tmp / "t"), "test_inner.py"],
            cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
            env={**os.environ, "PYTHONPATH": str(TESTS)})
    finally:
        shutil.rmtree(inner_tmp, ignore_errors=True)
    out = done.stdout
    assert "8 passed, 7 errors" in out, out + done.stderr
    expected = {
        "test_prints_a_key": "captured stdout call: a private-key PEM header",
        "test_leaves_a_journal_with_a_key_slice":
            f"file test_leaves_a_journal_with_a_k0/journal.jsonl: {WINDOW}+ characters "
            "of the private key in test_leaves_a_journal_with_a_k0/server.key",
        "test_prints_a_password": "captured stdout call: the password $T_WLB_PASS",
        "test_a_subprocess_shows_a_password_it_was_given":
            "the output of `sh -c echo \"$APP_PASSWORD\" …` (stdout): the password "
            "$APP_PASSWORD",
        "test_a_cli_result_shows_a_key_header":
            "a CliRunner result (stdout): a private-key PEM header",
        "test_an_in_process_run_shows_a_password":
            "the output of `wlbplan validate` in-process: the password $T_XS_PASS",
        "test_an_error_message_quotes_a_key":
            f"a WlbplanError message: {WINDOW}+ characters of the private key in "
            "test_an_error_message_quotes_a0/id_lab",
    }
    for name, leak in expected.items():
        assert re.search(rf"ERROR at teardown of {name} _+\n(.*\n)*?  - {re.escape(leak)}\n",
                         out), (name, out)
    assert "ERROR at teardown of test_a_key_file_and_its_certificate" not in out
