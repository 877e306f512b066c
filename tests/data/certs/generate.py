"""Regenerate the committed PEM fixtures in this folder with the openssl CLI.

Why fixtures at all: cryptography 50 refuses to *sign* with SHA-1
("Hash algorithm 'sha1' not supported for signatures"), so a SHA-1-signed
certificate can only come from openssl. The others are here because they are what
operators really get from openssl's defaults (no keyUsage on a CA made with
``openssl req -x509``), which wlbplan.lab.pki does not reproduce exactly.

Files (certificates only; the throw-away keys stay in a temporary directory):
  openssl-root.pem       CA made by `openssl req -x509` with Debian's [v3_ca]
                         (basicConstraints=critical,CA:true, SKI, AKI, no keyUsage)
  leaf-sha1.pem          CN+DNS SAN wlb.example.com, signed by openssl-root with SHA-1
  leaf-sha256.pem        the same leaf request signed with SHA-256
  appliance-openssl.pem  `openssl req -x509 -subj /CN=wlb.example.com
                         -addext subjectAltName=DNS:wlb.example.com` (CA:TRUE, no keyUsage)
  appliance-sha1.pem     the same, self-signed with SHA-1

All are valid for 100 years from generation. Run: python tests/data/certs/generate.py
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
FQDN = "wlb.example.com"
DAYS = "36500"

# Debian's openssl.cnf [req] and [v3_ca], spelled out so the result does not depend
# on the machine that regenerates the fixtures.
REQ_CONFIG = """\
[req]
distinguished_name = dn
x509_extensions = v3_ca
string_mask = utf8only
prompt = no
[dn]
[v3_ca]
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always,issuer
basicConstraints = critical,CA:true
"""

LEAF_EXTENSIONS = f"""\
basicConstraints = CA:FALSE
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
subjectAltName = DNS:{FQDN}
"""


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def self_signed(work: Path, name: str, subject: str, *extra: str, digest: str = "sha256") -> Path:
    out = work / f"{name}.pem"
    openssl(
        "req", "-x509", "-config", str(work / "req.cnf"), "-newkey", "rsa:2048", "-nodes",
        "-keyout", str(work / f"{name}.key"), "-out", str(out), "-subj", subject,
        "-days", DAYS, f"-{digest}", *extra,
    )
    return out


def signed_leaf(work: Path, digest: str, serial: str) -> Path:
    out = work / f"leaf-{digest}.pem"
    openssl(
        "x509", "-req", "-in", str(work / "leaf.csr"), "-CA", str(work / "openssl-root.pem"),
        "-CAkey", str(work / "openssl-root.key"), "-set_serial", serial, "-days", DAYS,
        f"-{digest}", "-extfile", str(work / "leaf.ext"), "-out", str(out),
    )
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "req.cnf").write_text(REQ_CONFIG)
        (work / "leaf.ext").write_text(LEAF_EXTENSIONS)
        outputs = [self_signed(work, "openssl-root", "/CN=wlbplan test openssl root")]
        openssl(
            "req", "-new", "-config", str(work / "req.cnf"), "-newkey", "rsa:2048", "-nodes",
            "-keyout", str(work / "leaf.key"), "-out", str(work / "leaf.csr"),
            "-subj", f"/CN={FQDN}",
        )
        outputs += [signed_leaf(work, "sha1", "0x1001"), signed_leaf(work, "sha256", "0x1002")]
        san = ("-addext", f"subjectAltName=DNS:{FQDN}")
        outputs.append(self_signed(work, "appliance-openssl", f"/CN={FQDN}", *san))
        outputs.append(
            self_signed(work, "appliance-sha1", f"/CN={FQDN}", *san, digest="sha1")
        )
        for path in outputs:
            (HERE / path.name).write_bytes(path.read_bytes())
            print(f"wrote {HERE / path.name}")


if __name__ == "__main__":
    main()
