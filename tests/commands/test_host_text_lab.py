"""A hostile appliance and pool on a real lab: the certificate WLB serves, and a CA
certificate the pool trusts, carry subjects with line breaks, workflow commands, terminal
escapes, a mention and rich markup. Through both connectors, every output of inspect, plan
and audit shows them escaped on their own line: no forged plan line, no workflow command
in a CI log, no raw ESC or BEL, no live @mention (issue 16 #16, #17)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from wlbplan.lab import control, pki, stunnel
from wlbplan.lab.layout import TargetLayout

pytestmark = pytest.mark.lab

HOSTILE = ("evil\n::error file=a,line=1::forged\r\n  ::add-mask::secret\x0b\x0cvt\x85nel"
           "\u2028ls\u2029ps\x1b]0;title\x07\x1b[2J @org/team [bold]b[/bold]\n+ fake line")
WORKFLOW = re.compile(r"^\s*::")


def wlbplan(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {"NO_COLOR": "1", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.run([sys.executable, "-m", "wlbplan", *map(str, args)],
                          capture_output=True, text=True, timeout=180, env=env)


def certificate(subject: x509.Name, key: pki.PrivateKey, *, ca: bool,
                san: str | None = None, days: int = 365) -> bytes:
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(pki.now() - dt.timedelta(days=1))
               .not_valid_after(pki.now() + dt.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]),
                                        critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def make_hostile(lab: control.Lab, folder: Path) -> None:
    target = lab.targets[0]
    layout: TargetLayout = lab.layout(target.name)
    # WLB serves a certificate for its own name (the key it has), O= the hostile text;
    # it expires soon, so the audit's WLB-CERT-EXPIRING message quotes its subject.
    key = serialization.load_pem_private_key(layout.key.read_bytes(), password=None)
    served = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, HOSTILE),
                        x509.NameAttribute(NameOID.COMMON_NAME, target.fqdn)])
    pem = certificate(served, key, ca=True, san=target.fqdn, days=10)  # type: ignore[arg-type]
    layout.cert.write_bytes(pem)
    restarted = stunnel.restart(layout)
    assert restarted.returncode == 0, restarted.stderr
    # The pool trusts a CA whose subject is hostile (xapi checks the name, not the subject).
    ca = folder / "foreign-ca.pem"
    ca.write_bytes(certificate(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME,
                                                             HOSTILE)]),
                               pki.make_key("ec", 256), ca=True))
    subprocess.run([str(layout.xe), "pool-install-ca-certificate", f"filename={ca}"],
                   check=True, capture_output=True)


@pytest.fixture(scope="module", params=["local", "ssh"])
def hostile(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[control.Lab]:
    folder = tmp_path_factory.mktemp(f"hostile-{request.param}")
    lab = control.up(folder / "lab", hosts=2, ssh=request.param == "ssh")
    try:
        make_hostile(lab, folder)
        yield lab
    finally:
        control.down(lab.dir)


def assert_contained(out: str, *, commands: bool = False) -> None:
    for line in out.split("\n"):
        assert line.isprintable(), repr(line)
        if not commands:
            assert not WORKFLOW.match(line), line
            assert not line.startswith("+ fake line"), line


def without_code(text: str) -> str:
    text = re.sub(r"^(\s*)(`{3,}).*?^\1\2\s*$", "", text, flags=re.S | re.M)
    return re.sub(r"(`+).*?\1", "", text)


def test_inspect(hostile: control.Lab) -> None:
    for fmt in ("text", "json"):
        result = wlbplan("inspect", hostile.spec_path, "--format", fmt)
        assert result.returncode == 0, result.stderr
        assert_contained(result.stdout + result.stderr)
    text = wlbplan("inspect", hostile.spec_path).stdout
    assert "O=evil\\n::error file=a\\,line=1::forged\\r\\n  ::add-mask::secret" in text
    assert text.count("[bold]b[/bold]") == 4  # served + file, subject + issuer; not markup
    assert "CA certificate   foreign-ca.pem" in text


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_plan(hostile: control.Lab, fmt: str) -> None:
    result = wlbplan("plan", hostile.spec_path, "--format", fmt, "--detailed-exitcode")
    assert result.returncode == 2, result.stdout + result.stderr
    assert_contained(result.stdout + result.stderr)
    if fmt == "text":
        assert ("+ subject:     CN=wlb1.lab.test,O=evil\\n::error file=a\\,line=1::forged"
                in result.stdout)
    if fmt == "markdown":
        assert "@org/team" not in without_code(result.stdout)
        body = result.stdout.split("```diff\n", 1)[1].split("\n```", 1)[0]
        assert {line[:1] for line in body.splitlines()} <= {"+", "-", "~", "#", " ", ""}
        assert "forged" in body


@pytest.mark.parametrize("fmt", ["text", "json", "markdown", "sarif", "junit", "github"])
def test_audit(hostile: control.Lab, fmt: str) -> None:
    result = wlbplan("audit", hostile.spec_path, "--format", fmt, "--fail-on", "never")
    assert result.returncode == 0, result.stdout + result.stderr
    assert_contained(result.stdout + result.stderr, commands=fmt == "github")
    out = result.stdout
    assert "forged" in out
    if fmt == "github":
        for line in out.splitlines():
            assert re.match(r"^::(error|warning|notice) [^:]*::", line), line
        # The toolkit's %-encoded line breaks, every other control visibly escaped: the
        # hostile commands are text inside one annotation.
        assert "evil%0A::error file=a" in out
        assert "\\x0b\\x0cvt\\u0085nel\\u2028ls\\u2029ps\\x1b]0" in out
    if fmt == "junit":
        ET.fromstring(out)
    if fmt in ("json", "sarif"):
        json.loads(out)
    if fmt == "markdown":
        assert "@org/team" not in without_code(out)
        assert "@&#8203;org/team" in out
