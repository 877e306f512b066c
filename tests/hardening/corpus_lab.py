"""The lab side of the injection tests: hostile folders the lab's files are reached
through, a signer and a restart wrapper that record the arguments they were given, and
subject values packed into CSRs.

Every value goes where it can be checked afterwards: a path with hostile folders names a
real file (through a symlink at the end of the chain), so a step that quoted it wrongly
fails or writes elsewhere; an argument is recorded by the program that received it.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from wlbplan.lab import pki
from wlbplan.model.names import MAX_FILE_NAME

# ---- hostile folders ---------------------------------------------------------------------

def parts(values: Iterable[str]) -> list[str]:
    """The folder names a path made of ``values`` has (``/`` splits a value)."""
    return [part for value in values for part in value.split("/") if part]


def fits_a_folder_name(value: str) -> bool:
    return all(0 < len(p.encode()) <= MAX_FILE_NAME for p in value.split("/") if p) \
        and "\x00" not in value


def hostile_chain(base: Path, values: Sequence[str]) -> tuple[str, Path]:
    """A folder reached through one folder per part of ``values`` (``..`` climbs back):
    returns the path as text (every value in it, as written) and the folder it is."""
    text, real = str(base), base
    base.mkdir(parents=True, exist_ok=True)
    for part in parts(values):
        text += "/" + part
        if part == ".":
            continue
        if part == "..":
            real = real.parent
            continue
        real = real / part
        real.mkdir(exist_ok=True)
    assert base == real or base in real.parents, f"the chain left {base}: {real}"
    return text, real


# ---- programs that record what they received ------------------------------------------------

_SIGNER = """#!{python}
# The spec's signer: keeps the arguments it was given, then signs the CSR with the
# test's intermediate CA.
import datetime as dt, json, sys
from pathlib import Path
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

Path({record!r}).write_text(json.dumps(sys.argv[1:]))
csr = x509.load_pem_x509_csr(Path(sys.argv[1]).read_bytes())
ca = x509.load_pem_x509_certificate(Path({ca!r}).read_bytes())
key = serialization.load_pem_private_key(Path({ca_key!r}).read_bytes(), None)
now = dt.datetime.now(dt.timezone.utc)
sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
cert = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(ca.subject)
        .public_key(csr.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(sans, critical=False)
        .sign(key, hashes.SHA256()))
Path(sys.argv[2]).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
"""

_RESTART = """#!{python}
# The appliance's restart command: keeps the arguments it was given, then restarts.
import json, os, sys
from pathlib import Path

Path({record!r}).write_text(json.dumps(sys.argv[1:]))
os.execv({restart!r}, [{restart!r}])
"""


def _program(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


@dataclass(frozen=True)
class LabCA:
    """A root and an intermediate (keys in the test's tmp folder)."""

    root: Path
    intermediate: Path
    intermediate_key: Path

    @classmethod
    def make(cls, folder: Path) -> LabCA:
        folder.mkdir(parents=True, exist_ok=True)
        root = pki.build("Corpus Root CA", ca=True)
        intermediate = pki.build("Corpus Intermediate CA", ca=True, issuer=root)
        made = cls(folder / "root.pem", folder / "int.pem", folder / "int.key")
        made.root.write_bytes(root.cert_pem)
        made.intermediate.write_bytes(intermediate.cert_pem)
        pki.write_private(made.intermediate_key, intermediate.key_pem)
        return made

    def signer(self, path: Path, record: Path) -> Path:
        return _program(path, _SIGNER.format(python=sys.executable, record=str(record),
                                             ca=str(self.intermediate),
                                             ca_key=str(self.intermediate_key)))


def restart_wrapper(path: Path, record: Path, restart: Path) -> Path:
    return _program(path, _RESTART.format(python=sys.executable, record=str(record),
                                          restart=str(restart)))


def recorded(record: Path) -> list[str]:
    got: list[str] = json.loads(record.read_text())
    return got


def shell_command(argv: Sequence[str]) -> str:
    """What an operator writes in ``wlb.restart`` to run ``argv`` as it is."""
    return shlex.join(argv)


# ---- subject values, packed into CSRs -------------------------------------------------------

SUBJECT_CAPS = {"ST": 128, "L": 128, "O": 64, "OU": 64, "emailAddress": 128}


def pack_subjects(accepted: dict[str, list[str]], csrs: int) -> list[dict[str, str]] | None:
    """Subjects for ``csrs`` CSRs in which every value accepted by some subject field sits
    in one it is accepted by, side by side with others within that field's cap (a value
    stays one attribute's value whatever it is next to: the CSR must hold it exactly).
    None when they do not fit."""
    slots = [{name: "" for name in SUBJECT_CAPS} for _ in range(csrs)]
    values = sorted({v for vs in accepted.values() for v in vs}, key=len, reverse=True)
    for value in values:
        for slot in slots:
            name = next((n for n in SUBJECT_CAPS if value in accepted.get(n, ())
                         and len(slot[n]) + len(value) <= SUBJECT_CAPS[n]), None)
            if name is not None:
                slot[name] += value
                break
        else:
            return None
    return [{n: v for n, v in slot.items() if v} for slot in slots]
