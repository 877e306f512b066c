"""The local files a spec names, checked when it is loaded from disk, so that a missing
certificate or an impossible output folder stops ``validate`` (and ``plan``, ``apply``)
before any host is touched, every problem at once, each at its line.

Certificate files live with the spec (a repository): missing, or not a PEM certificate
(DER, a key, empty, damaged), is an error. SSH files live on the machine that runs
wlbplan: missing here is a warning, since a laptop that only validates need not hold the
runner's key.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wlbplan.errors import WlbplanError
from wlbplan.limits import PEM, read_file
from wlbplan.spec.build import local_path
from wlbplan.spec.report import PathT, Report

Data = dict[str, Any]


def check_local_files(data: Any, base: Path, report: Report) -> None:
    if not isinstance(data, dict) or not isinstance(data.get("targets"), list):
        return
    defaults = data.get("defaults")
    ssh = defaults.get("ssh") if isinstance(defaults, dict) else None
    uses_ssh = any(_uses_ssh(t) for t in data["targets"] if isinstance(t, dict))
    if isinstance(ssh, dict) and uses_ssh:
        _check_ssh(ssh, ("defaults", "ssh"), base, report)
    for index, target in enumerate(data["targets"]):
        if not isinstance(target, dict):
            continue
        path: PathT = ("targets", index)
        if isinstance(target.get("ssh"), dict) and _uses_ssh(target):
            _check_ssh(target["ssh"], (*path, "ssh"), base, report)
        certificate = target.get("certificate")
        if isinstance(certificate, dict):
            _check_certificate(certificate, (*path, "certificate"), base, report)
        ca_file = _dig(target, "pool", "tls", "ca_file")
        if isinstance(ca_file, str):
            _must_read(local_path(ca_file, base), (*path, "pool", "tls", "ca_file"), report)


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _uses_ssh(target: Data) -> bool:
    pool, wlb = target.get("pool"), target.get("wlb")
    pool_ssh = isinstance(pool, dict) and pool.get("connector", "ssh") == "ssh" and \
        pool.get("connection", "ssh") == "ssh"
    return pool_ssh or (isinstance(wlb, dict) and wlb.get("connection", "ssh") == "ssh")


@contextlib.contextmanager
def _looking_at(file: Path, where: PathT, report: Report) -> Iterator[None]:
    """A path the OS cannot even look at (a name too long for it, a folder it may not
    enter) is that field's error, said in the OS's words: never a crash."""
    try:
        yield
    except OSError as err:
        report.error(where, f"{file}: {err.strerror or err}")


def _check_ssh(ssh: Data, path: PathT, base: Path, report: Report) -> None:
    for key in ("identity_file", "known_hosts"):
        if not isinstance(ssh.get(key), str):
            continue
        where = (*path, key)
        file = local_path(ssh[key], base)
        with _looking_at(file, where, report):
            _check_ssh_file(ssh, key, file, where, report)


def _check_ssh_file(ssh: Data, key: str, file: Path, where: PathT, report: Report) -> None:
    if file.exists():
        problem = _unreadable(file)
        if problem:
            report.error(where, f"{file}: {problem}")
    elif key == "known_hosts" and ssh.get("host_key_policy") == "accept-new":
        _check_folder(file.parent, where, report, "known_hosts")
    else:
        report.warning(where, f"{file} does not exist here; the machine that runs "
                              "plan and apply needs it")


def _check_certificate(cert: Data, path: PathT, base: Path, report: Report) -> None:
    signer = cert.get("signer") is not None
    if isinstance(cert.get("signed"), str):
        file = local_path(cert["signed"], base)
        with _looking_at(file, (*path, "signed"), report):
            if signer and not file.exists():
                _check_folder(file.parent, (*path, "signed"), report, "signer's output")
            else:
                _must_read(file, (*path, "signed"), report,
                           "" if signer else "; leave `signed` out until the CA has signed "
                           "the CSR (the request stage needs no certificate)", pem=not signer)
    if isinstance(cert.get("root"), str):
        _must_read(local_path(cert["root"], base), (*path, "root"), report)
    intermediates = cert.get("intermediates")
    if isinstance(intermediates, list):
        for n, item in enumerate(intermediates):
            if isinstance(item, str):
                _must_read(local_path(item, base), (*path, "intermediates", n), report)
    if isinstance(cert.get("acme"), dict):
        _check_acme(cert["acme"], (*path, "acme"), base, report)
    request = cert.get("request")
    if isinstance(request, dict) and isinstance(request.get("csr_out"), str):
        out = local_path(request["csr_out"], base)
        where = (*path, "request", "csr_out")
        with _looking_at(out, where, report):
            if out.is_dir():
                report.error(where, f"{out} is a folder; name a file")
            else:
                _check_folder(out.parent, where, report, "CSR")


def _check_acme(acme: Data, path: PathT, base: Path, report: Report) -> None:
    for key in ("root", "ca_file"):
        if isinstance(acme.get(key), str):
            _must_read(local_path(acme[key], base), (*path, key), report)
    account = acme.get("account")
    key_file = account.get("key_file") if isinstance(account, dict) else None
    if not isinstance(key_file, str):
        return
    where = (*path, "account", "key_file")
    file = local_path(key_file, base)
    with _looking_at(file, where, report):
        if not file.exists():
            _check_folder(file.parent, where, report, "ACME account key")
            return
        problem = _unreadable(file) or secret_file_problem(file)
        if problem:
            report.error(where, f"{file}: {problem}")


def secret_file_problem(file: Path) -> str:
    """Why a file holding a secret (the ACME account key) is refused: "" when it is fine.
    Like OpenSSH with a private key: one that group or others can read is not used."""
    mode = file.stat().st_mode
    if mode & 0o077:
        return (f"group or others can read or write it (mode {mode & 0o777:04o}); "
                f"`chmod 600 {file}`, and make a new account key if others may have read it")
    return ""


def _must_read(file: Path, where: PathT, report: Report, advice: str = "", *,
               pem: bool = True) -> None:
    """``pem``: the file must hold PEM certificates (a signer's output is replaced)."""
    with _looking_at(file, where, report):
        problem = "not found" if not file.exists() else _unreadable(file)
        if problem:
            report.error(where, f"{file}: {problem}{advice}")
        elif pem:
            problem = _not_certificates(file)
            if problem:
                report.error(where, f"{file}: {problem}")


def _not_certificates(file: Path) -> str:
    # Imported here: certs brings cryptography's x509 (~40 ms), which a spec that names
    # no certificate file (self-signed, a fleet's usual) never needs to validate.
    from wlbplan import certs

    try:
        certs.parse_pem_bundle(read_file(file, PEM))
    except OSError as err:
        return f"cannot be read: {err.strerror or err}"
    except WlbplanError as err:  # TooLarge names the cap; VerifyError says what is wrong
        return str(err)
    return ""


def _unreadable(file: Path) -> str:
    if not file.is_file():
        return "not a regular file"
    if not os.access(file, os.R_OK):
        return "not readable"
    return ""


def _check_folder(folder: Path, where: PathT, report: Report, what: str) -> None:
    """The folder a file will be written to: it may be created, unless something in its
    way is not a folder (or it cannot be written)."""
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        report.error(where, f"the {what} cannot be written under {folder}: {probe} is not a "
                            "folder")
    elif probe == folder and not os.access(folder, os.W_OK | os.X_OK):
        report.error(where, f"the {what} cannot be written in {folder}: not writable")
