"""Helpers for the CA-signed suite: a test CA, certificates to break, and the real lab.

Everything the tests judge is read from the lab directly: files (sha256 + mode) under the
appliance's fake root and every pool host, the chain stunnel really serves (an
``openssl s_client`` handshake), the pool's flag and trust through the lab's own ``xe``.
wlbplan itself is only run as an operator runs it (a subprocess, stdin not a terminal).

The test CA (a root and an intermediate, keyUsage keyCertSign,cRLSign, CA:TRUE) is made
with the ``openssl`` CLI in the test's tmp folder; its keys never leave that folder.
Labs are always taken down by pid file in teardown, even when a test fails.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import ipaddress
import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID
from pool_state import pool_state_digest

from wlbplan.lab import control, xe_state
from wlbplan.lab.layout import TargetLayout
from wlbplan.lab.procs import alive

TARGET = "pool1"
FQDN = "wlb1.lab.test"
PYTHON = sys.executable

# Files that legitimately change while a lab runs (the brief's list): stunnel's pid and
# log, the emulator's flock file; bytecode caches and the coordinator's lock folder.
VOLATILE = {"appliance/run/stunnel.pid", "appliance/var/log/stunnel.log",
            "pool/state.json.lock"}
CACHE_PARTS = {".pycache", "__pycache__"}

Snapshot = dict[str, tuple[str, int]]

CA_EXT = """\
[v3_ca]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""


# ---- running things ----------------------------------------------------------------------

def _env() -> dict[str, str]:
    return {"NO_COLOR": "1", "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
            "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}


def wlbplan(*args: str | Path, timeout: float = 180,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``wlbplan ARGS`` as an operator runs it: a subprocess, stdin not a terminal."""
    return subprocess.run([PYTHON, "-m", "wlbplan", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env={**_env(), **(env or {})},
                          stdin=subprocess.DEVNULL,
                          check=False)


def said(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def openssl(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True,
                          check=False, timeout=60, cwd=cwd)


def must(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"{result.args}: {result.stderr}"
    return result


# ---- the test CA ------------------------------------------------------------------------

@dataclass(frozen=True)
class LabCA:
    """A root and an intermediate made with the openssl CLI (keys stay in ``folder``)."""

    folder: Path

    @property
    def root(self) -> Path:
        return self.folder / "root.pem"

    @property
    def root_key(self) -> Path:
        return self.folder / "root.key"

    @property
    def int(self) -> Path:
        return self.folder / "int.pem"

    @property
    def int_key(self) -> Path:
        return self.folder / "int.key"

    @property
    def ext(self) -> Path:
        return self.folder / "ca.ext"

    @classmethod
    def make(cls, folder: Path, name: str = "Lab") -> LabCA:
        folder.mkdir(parents=True, exist_ok=True)
        ca = cls(folder)
        ca.ext.write_text(CA_EXT)
        must(openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca.root_key,
                     "-out", ca.root, "-days", "3650", "-subj", f"/O={name}/CN={name} Root CA",
                     "-config", ca.ext, "-extensions", "v3_ca"))
        ca.sub_ca(ca.int, ca.int_key, f"/O={name}/CN={name} Intermediate CA",
                  ca.root, ca.root_key)
        return ca

    def sub_ca(self, cert: Path, key: Path, subject: str, issuer: Path, issuer_key: Path,
               days: int = 1825) -> Path:
        """One more CA under ``issuer`` (openssl CLI)."""
        csr = cert.with_suffix(".csr")
        must(openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                     "-out", csr, "-subj", subject))
        must(openssl("x509", "-req", "-in", csr, "-CA", issuer, "-CAkey", issuer_key,
                     "-CAcreateserial", "-out", cert, "-days", str(days),
                     "-extfile", self.ext, "-extensions", "v3_ca"))
        return cert

    def signer_command(self) -> list[str]:
        """The spec's ``signer.command``: the intermediate signs the CSR as it is."""
        return ["openssl", "x509", "-req", "-in", "{csr}", "-CA", str(self.int),
                "-CAkey", str(self.int_key), "-CAcreateserial", "-out", "{cert}",
                "-days", "365", "-copy_extensions", "copy"]

    def sign_csr(self, csr: Path, out: Path, *extra: str) -> Path:
        """What the signer does, by hand (``extra``: e.g. ``-sha1``)."""
        must(openssl("x509", "-req", "-in", csr, "-CA", self.int, "-CAkey", self.int_key,
                     "-CAcreateserial", "-out", out, "-days", "365", "-copy_extensions",
                     "copy", *extra))
        return out


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


def load_key(path: Path) -> Any:
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def csr_public_key(csr: Path) -> CertificatePublicKeyTypes:
    return x509.load_pem_x509_csr(csr.read_bytes()).public_key()


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def issue(out: Path, public_key: CertificatePublicKeyTypes, *, issuer: Path, issuer_key: Path,
          subject: Sequence[tuple[str, str]] = (("O", "Lab"), ("CN", FQDN)),
          sans: Sequence[str] | None = (f"DNS:{FQDN}",), ca: bool = False,
          not_before: dt.datetime | None = None, not_after: dt.datetime | None = None) -> Path:
    """A certificate for ``public_key`` signed by ``issuer`` (cryptography: any dates).

    ``sans=None`` leaves subjectAltName out; ``DNS:``/``IP:`` prefixes as in a spec.
    """
    oids = {"O": NameOID.ORGANIZATION_NAME, "CN": NameOID.COMMON_NAME}
    name = x509.Name([x509.NameAttribute(oids[k], v) for k, v in subject])
    parent = load_cert(issuer)
    start = not_before or (now() - dt.timedelta(days=1))
    end = not_after or (start + dt.timedelta(days=365))
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(parent.subject)
               .public_key(public_key).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                              critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   parent.public_key()), critical=False))  # type: ignore[arg-type]
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
    if sans is not None:
        general: list[x509.GeneralName] = []
        for item in sans:
            kind, value = item.split(":", 1)
            general.append(x509.IPAddress(ipaddress.ip_address(value)) if kind == "IP"
                           else x509.DNSName(value))
        builder = builder.add_extension(x509.SubjectAlternativeName(general), critical=False)
    cert = builder.sign(load_key(issuer_key), hashes.SHA256())
    out.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return out


@dataclass(frozen=True)
class Oracle:
    """``openssl verify``'s answer: the independent judge of "will the pool accept it"."""

    ok: bool
    output: str


def openssl_verify(root: Path, untrusted: Sequence[Path], leaf: Path,
                   host: str = FQDN, *extra: str) -> Oracle:
    """``openssl verify -CAfile root -untrusted int -verify_hostname HOST -purpose sslserver``."""
    args: list[str | Path] = ["verify", *extra, "-CAfile", root]
    if untrusted:
        bundle = leaf.with_name(leaf.name + ".untrusted.pem")
        bundle.write_bytes(b"".join(p.read_bytes() for p in untrusted))
        args += ["-untrusted", bundle]
    args += ["-verify_hostname", host, "-purpose", "sslserver", leaf]
    result = openssl(*args)
    return Oracle(result.returncode == 0, (result.stdout + result.stderr).strip())


# ---- labs ---------------------------------------------------------------------------------

@contextlib.contextmanager
def running_lab(folder: Path, **kw: Any) -> Iterator[control.Lab]:
    """A lab that is taken down (every daemon, by its pid file) whatever happens."""
    lab: control.Lab | None = None
    try:
        lab = control.up(folder, **kw)
        yield lab
    finally:
        control.down(folder)
        if lab is not None:
            for name, pid in control.pids(lab).items():  # belt and braces, by pid
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
                    raise AssertionError(f"lab process {name} (pid {pid}) survived lab down")


def layout(lab: control.Lab, target: str = TARGET) -> TargetLayout:
    return lab.layout(target)


def request_section(folder: Path, target: str = TARGET, **changes: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "common_name": FQDN, "alt_names": [f"DNS:{FQDN}"], "subject": {"O": "Lab"},
        "key": {"type": "rsa", "bits": 2048}, "csr_out": str(folder / f"{target}.csr"),
    }
    request.update(changes)
    return request


def ca_certificate(ca: LabCA, folder: Path, *, target: str = TARGET, signer: bool = True,
                   signed: Path | bool | None = True, intermediates: Sequence[Path] | None = None,
                   request: dict[str, Any] | None = None) -> dict[str, Any]:
    """A spec's ``certificate`` section for the CA-signed path (the brief's shape).

    ``signed=True``: ``folder/<target>.pem`` (where the signer writes); ``None``/``False``:
    left out (the request stage without a signer).
    """
    section: dict[str, Any] = {"source": "ca-signed",
                               "request": request or request_section(folder, target)}
    if signed:
        section["signed"] = str(folder / f"{target}.pem") if signed is True else str(signed)
        section["intermediates"] = [str(p) for p in (intermediates if intermediates is not None
                                                     else [ca.int])]
        section["root"] = str(ca.root)
        if signer:
            section["signer"] = {"command": ca.signer_command()}
    return section


def write_spec(lab: control.Lab, path: Path, certificate: dict[str, Any],
               target: str = TARGET, policy: dict[str, Any] | None = None,
               **wlb: Any) -> Path:
    """The lab's own spec with ``target``'s certificate section (and wlb fields) replaced."""
    data = yaml.safe_load(lab.spec_path.read_text())
    if policy is not None:
        data["policy"] = policy
    for item in data["targets"]:
        if item["name"] == target:
            item["certificate"] = certificate
            item["wlb"].update(wlb)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def xe(lab: control.Lab, *args: str, target: str = TARGET,
       check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(layout(lab, target).xe), *args], capture_output=True,
                            text=True, check=False, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"xe {' '.join(args)} failed: {result.stderr}")
    return result


def pool_uuid(lab: control.Lab, target: str = TARGET) -> str:
    return xe(lab, "pool-list", "--minimal", target=target).stdout.strip()


def verify_flag(lab: control.Lab, target: str = TARGET) -> str:
    return xe(lab, "pool-param-get", f"uuid={pool_uuid(lab, target)}",
              "param-name=wlb-verify-cert", target=target).stdout.strip()


def ca_names(lab: control.Lab, target: str = TARGET) -> set[str]:
    return set(xe(lab, "pool-certificate-list", target=target).stdout.split())


def host_trust(lab: control.Lab, target: str = TARGET) -> dict[str, dict[str, bytes]]:
    """Every pool host's CA certificates as files: {host dir: {name: bytes}}."""
    where = layout(lab, target)
    state = xe_state.load(where.pool_state)
    found = {}
    for host in state["hosts"]:
        certs_dir = xe_state.host_layout(where, host).certs_dir
        found[host["dir"]] = ({p.name: p.read_bytes() for p in certs_dir.iterdir()}
                              if certs_dir.exists() else {})
    return found


def bundles(lab: control.Lab, target: str = TARGET) -> dict[str, list[x509.Certificate]]:
    where = layout(lab, target)
    state = xe_state.load(where.pool_state)
    found = {}
    for host in state["hosts"]:
        bundle = xe_state.host_layout(where, host).bundle
        found[host["dir"]] = (x509.load_pem_x509_certificates(bundle.read_bytes())
                              if bundle.exists() else [])
    return found


def lock_dir(lab: control.Lab, target: str = TARGET) -> Path:
    return xe_state.coordinator(layout(lab, target)).root / "var" / "lib" / "wlbplan"


def snapshot(lab: control.Lab, target: str = TARGET) -> Snapshot:
    """{path relative to the target folder: (sha256, mode)} for every file under the
    appliance's fake root and the pool (each host's fake dom0, the pool state, the lock
    key of its other_config left out: pool_state)."""
    where = layout(lab, target)
    locks = lock_dir(lab, target)
    found: Snapshot = {}
    for top in (where.appliance, where.pool_dir):
        for path in sorted(top.rglob("*")):
            rel = path.relative_to(where.root).as_posix()
            if rel in VOLATILE or CACHE_PARTS & set(path.parts):
                continue
            if path == locks or locks in path.parents:
                continue
            info = path.lstat()
            if stat.S_ISDIR(info.st_mode):
                continue
            if stat.S_ISLNK(info.st_mode):
                digest = f"-> {os.readlink(path)}"
            elif path == where.pool_state:
                digest = pool_state_digest(path)
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            found[rel] = (digest, stat.S_IMODE(info.st_mode))
    return found


def snapshot_diff(before: Snapshot, after: Snapshot) -> list[str]:
    lines = [f"gone: {p}" for p in sorted(before.keys() - after.keys())]
    lines += [f"new: {p}" for p in sorted(after.keys() - before.keys())]
    for path in sorted(before.keys() & after.keys()):
        (h1, m1), (h2, m2) = before[path], after[path]
        if h1 != h2:
            lines.append(f"content changed: {path}")
        if m1 != m2:
            lines.append(f"mode changed: {path} {m1:o} -> {m2:o}")
    return lines


def served_chain(lab: control.Lab, target: str = TARGET,
                 tries: int = 50) -> list[x509.Certificate]:
    """What stunnel serves now: a real TLS handshake (``openssl s_client -showcerts``)."""
    port = lab.target(target).port
    last = ""
    for _ in range(tries):
        result = subprocess.run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername",
             lab.target(target).fqdn, "-showcerts"], capture_output=True, text=True,
            stdin=subprocess.DEVNULL, timeout=30, check=False)
        if "BEGIN CERTIFICATE" in result.stdout:
            return x509.load_pem_x509_certificates(result.stdout.encode())
        last = result.stderr
        time.sleep(0.1)
    raise AssertionError(f"stunnel on port {port} serves nothing: {last[-300:]}")


def fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def spki(item: x509.Certificate | Any) -> bytes:
    key = item.public_key() if isinstance(item, x509.Certificate) else item
    return bytes(key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo))


def plan_json(spec: Path, *args: str, target: str = TARGET,
              changes: bool | None = None) -> dict[str, Any]:
    """``wlbplan plan --format json`` for one target; asserts it succeeded.

    ``changes``: also ``--detailed-exitcode``, and assert it said so (exit 2) or not (0).
    """
    extra = ("--detailed-exitcode",) if changes is not None else ()
    result = wlbplan("plan", spec, "--format", "json", "--target", target, *extra, *args)
    assert result.returncode == (2 if changes else 0), said(result)
    no_key_material(result.stdout, result.stderr)
    document: dict[str, Any] = json.loads(result.stdout)
    return document["targets"][0]


def change_paths(target_plan: dict[str, Any]) -> dict[str, str]:
    return {c["path"]: c["action"] for c in target_plan["changes"]}


def step_actions(target_plan: dict[str, Any]) -> list[str]:
    return [s["action"] for s in target_plan["steps"]]


def no_key_material(*texts: str) -> None:
    for text in texts:
        assert "PRIVATE" not in text, "private key material in wlbplan's output"


def journals_text(spec: Path) -> str:
    """Every journal wlbplan kept beside the spec (live and archived)."""
    folder = spec.parent / ".wlbplan"
    return "".join(p.read_text() for p in sorted(folder.rglob("*.jsonl")))
