"""Appliance steps: key and CSR (request stage), backup, install, restart (install stage).

The private key is generated on the appliance and only ever moved there; no step reads
it back.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from wlbplan.core.steps import Step
from wlbplan.model.command import Command
from wlbplan.model.spec import CertificateRequest, Signer, Target

PENDING = ".pending"
BACKUP = "_orig"


def pending_key(target: Target) -> str:
    return str(target.wlb.paths.key) + PENDING


def pending_csr(target: Target) -> str:
    key = target.wlb.paths.key
    return str(key.with_suffix(".csr")) + PENDING


def _show(*argv: str) -> str:
    return Command(argv).display()


def subject_line(request: CertificateRequest) -> str:
    """``/C=CA/.../CN=name`` for ``openssl req -subj``, each value escaped so that it stays
    one attribute's value whatever it holds.

    OpenSSL's -subj grammar (apps/lib/apps.c parse_name): ``/`` starts an RDN, ``+`` adds
    an attribute to it, the first ``=`` ends the type, and a backslash takes the next
    character as it is. Those characters (and ``,``, which other DN syntaxes split on)
    are escaped in every value, so none can end its RDN, add one, or add an attribute
    (``O: "Acme+CN=evil"``); the rest reads as written in the plan.
    """
    parts = [*request.subject.items(), ("CN", request.common_name)]
    return "".join(f"/{name}={subj_escape(value)}" for name, value in parts)


SUBJ_SPECIAL = frozenset("\\/+=,")


def subj_escape(value: str) -> str:
    return "".join(f"\\{ch}" if ch in SUBJ_SPECIAL else ch for ch in value)


def csr_argv(key: str, subject: str, alt_names: list[str] | tuple[str, ...],
             out: str) -> tuple[str, ...]:
    """The CSR command, shown in the plan and run by apply. ``-utf8``: the values are
    UTF-8 (without it OpenSSL reads each byte as Latin-1)."""
    argv = ["openssl", "req", "-new", "-key", key, "-utf8", "-subj", subject]
    if alt_names:
        argv += ["-addext", "subjectAltName=" + ",".join(alt_names)]
    return (*argv, "-out", out)


def key_args(request: CertificateRequest) -> tuple[str, ...]:
    return key_args_for(request.key.type, request.key.bits)


def key_args_for(kind: str, bits: int) -> tuple[str, ...]:
    if kind == "ec":
        curve = {256: "P-256", 384: "P-384", 521: "P-521"}[bits]
        return ("-algorithm", "EC", "-pkeyopt", f"ec_paramgen_curve:{curve}")
    return ("-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{bits}")


OLD = ".wlbplan-old"


def generate_key(target: Target, request: CertificateRequest, *, replace: bool = False) -> Step:
    key = pending_key(target)
    gen = _show("openssl", "genpkey", *key_args(request), "-out", key)
    aside = (_show("mv", "-f", "--", key, key + OLD),) if replace else ()
    undo = (_show("mv", "-f", "--", key + OLD, key),) if replace else \
        (_show("rm", "-f", "--", key),)
    return Step(
        action="appliance.generate_key",
        on="appliance",
        summary=f"make a new {request.key.type.upper()} {request.key.bits}-bit key on the "
                f"appliance at {key} (it never leaves the appliance)"
                + ("; the old pending key is kept as " + key + OLD if replace else ""),
        commands=(*aside, f"(umask 077 && {gen})"),
        undo=undo,
        params={"path": key, "type": request.key.type, "bits": request.key.bits,
                "replace": replace},
    )


def make_csr(target: Target, request: CertificateRequest, *, replace: bool = False) -> Step:
    csr = pending_csr(target)
    argv = csr_argv(pending_key(target), subject_line(request), request.alt_names, csr)
    return Step(
        action="appliance.make_csr",
        on="appliance",
        summary=f"make a CSR for CN={request.common_name} at {csr}",
        commands=(_show(*argv),),
        undo=(_show("mv", "-f", "--", csr + OLD, csr),) if replace else
        (_show("rm", "-f", "--", csr),),
        params={"path": csr, "subject": subject_line(request),
                "alt_names": list(request.alt_names), "replace": replace},
    )


def fetch_csr(target: Target, out: Path) -> Step:
    return Step(
        action="appliance.fetch_csr",
        on="local",
        summary=f"save the CSR to {out}, to send to the CA",
        commands=(f"download {pending_csr(target)} to {out}",),
        params={"remote": pending_csr(target), "local": str(out)},
    )


def sign(target: Target, signer: Signer, csr: Path, cert: Path) -> Step:
    argv = signer.argv(csr, cert)
    return Step(
        action="local.sign",
        on="local",
        summary=f"have the CA sign {csr} into {cert} with the spec's signer",
        commands=(Command(argv).display(),),
        undo=(_show("rm", "-f", "--", str(cert)),),
        params={"argv": list(argv), "csr": str(csr), "cert": str(cert)},
    )


def backup(target: Target, existing: tuple[str, ...], stamp: datetime) -> Step:
    """Seed: rename to *_orig. An existing *_orig is kept; a timestamped copy is added."""
    commands, made = [], []
    for path in (str(target.wlb.paths.cert), str(target.wlb.paths.key)):
        dest = path + BACKUP
        if dest in existing:
            dest += "." + stamp.strftime("%Y%m%dT%H%M%SZ")
        commands.append(_show("cp", "-p", "--", path, dest))
        made.append(dest)
    return Step(
        action="appliance.backup",
        on="appliance",
        summary="back up server.pem and server.key (an existing *_orig is never overwritten)",
        commands=tuple(commands),
        undo=tuple(_show("rm", "-f", "--", dest) for dest in made),
        params={"backups": made},
    )


def install_chain(target: Target, chain: tuple[str, ...], backups: list[str],
                  key_source: str = "pending") -> Step:
    cert, key = str(target.wlb.paths.cert), str(target.wlb.paths.key)
    staged = cert + ".wlbplan-new"
    moves: tuple[str, ...] = (_show("mv", "-f", "--", staged, cert),)
    what = f"install the CA-signed chain (leaf → root, {len(chain)} in all) as {cert}"
    if key_source == "pending":
        moves = (_show("chmod", "600", "--", pending_key(target)), *moves,
                 _show("mv", "-f", "--", pending_key(target), key))
        what += f" and the pending key as {key} (0600)"
    else:
        what += f" (the certificate is for the key already in {key})"
    return Step(
        action="appliance.install_chain",
        on="appliance",
        summary=what,
        commands=(f"upload the chain to {staged} (0644)", *moves),
        undo=(
            _show("cp", "-p", "--", backups[0], cert),
            _show("cp", "-p", "--", backups[1], key),
            f"{target.wlb.restart}   (then wait until the original certificate is served)",
        ),
        params={"chain": list(chain), "backups": backups, "key_source": key_source},
    )


def clear_request(target: Target, csr_pem: str) -> Step:
    """After an install with the pending key: its CSR has served its turn. Left behind, it
    would stand for a request that is no longer pending."""
    csr = pending_csr(target)
    return Step(
        action="appliance.clear_request",
        on="appliance",
        summary=f"remove the request's CSR {csr}: its key is now the live key",
        commands=(_show("rm", "-f", "--", csr),),
        undo=(f"put {csr} back as it was (same content and mode)",),
        params={"path": csr, "csr": csr_pem},
    )


def restart(target: Target, leaf_fingerprint: str) -> Step:
    return Step(
        action="appliance.restart",
        on="appliance",
        summary=f"restart stunnel and wait until port {target.wlb.port} serves the new "
                "certificate",
        commands=(target.wlb.restart,),
        undo=(),  # undoing install_chain restores the files and restarts
        params={"fingerprint": leaf_fingerprint},
    )
