"""The pool's side of each step over XenAPI: the same effects ``actions.pool`` has xe do,
as API calls in the target's one session.

Two differ in kind. The preflight cannot run on the coordinator (there is no shell): it
runs on this machine, with the bundle the pool will hold after the plan's trust steps (the
plan carries it) and xapi's own checks, so it is not from the pool's network position;
the confirm step that follows (``pool.retrieve_wlb_configuration``) is the pool's own
handshake with WLB, and a failure there rolls the apply back.
"""

from __future__ import annotations

import os
import subprocess
import tempfile

from wlbplan.actions.base import StepFailed
from wlbplan.children import run_child
from wlbplan.connectors.xenapi import XenapiSession
from wlbplan.core.steps.pool import INITIALIZE_WLB_LOGINS
from wlbplan.errors import XapiError
from wlbplan.inspect import script as facts
from wlbplan.model.names import file_name_problem
from wlbplan.model.spec import url_host

# By PoolFacts.ca_commands (1.290 added the first pair; the 1.249 line has only the second).
INSTALL = {"current": "pool.install_ca_certificate", "pre-1.290": "pool.certificate_install"}
UNINSTALL = {"current": "pool.uninstall_ca_certificate",
             "pre-1.290": "pool.certificate_uninstall"}
PREFLIGHT_TIMEOUT = 20


def _call(ca_commands: str, table: dict[str, str]) -> str:
    found = table.get(ca_commands)
    if found is None:
        raise StepFailed(f"unknown CA certificate commands {ca_commands!r}; known: "
                         + ", ".join(table))
    return found


def _safe(name: str, what: str) -> str:
    problem = file_name_problem(name)
    if problem:
        raise StepFailed(f"{what}: refusing the CA certificate name {name[:80]!r}: it "
                         f"{problem} (xapi's rule for certificate names)")
    return name


def pool_ref(session: XenapiSession, uuid: str | None = None) -> str:
    """The pool's reference (the one pool of the coordinator; ``uuid`` checked when given:
    a plan made for one pool never changes another)."""
    records = session.call("pool.get_all_records")
    if not isinstance(records, dict) or len(records) != 1:
        raise StepFailed(f"the pool's XenAPI at {session.url} lists no single pool")
    ref, record = next(iter(records.items()))
    if uuid is not None and (not isinstance(record, dict) or record.get("uuid") != uuid):
        raise StepFailed(f"the pool at {session.url} is not the one the plan was made for "
                         f"(uuid {uuid})")
    return str(ref)


def ca_names(session: XenapiSession, ca_commands: str) -> list[str]:
    if ca_commands == "pre-1.290":
        names = session.call("pool.certificate_list")
        return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []
    rows = session.call("Certificate.get_all_records")
    if not isinstance(rows, dict):
        return []
    return sorted({str(r.get("name")) for r in rows.values()
                   if isinstance(r, dict) and r.get("type") == "ca"})


def install(session: XenapiSession, ca_commands: str, name: str, pem: str) -> None:
    session.call(_call(ca_commands, INSTALL), _safe(name, "installing a CA certificate"), pem)


def uninstall(session: XenapiSession, ca_commands: str, name: str, *, missing_ok: bool) -> None:
    # The name alone: `force` exists only since 24.35 and has a default there.
    try:
        session.call(_call(ca_commands, UNINSTALL), _safe(name, "removing a CA certificate"))
    except XapiError as err:
        if not (missing_ok and err.code == "CERTIFICATE_DOES_NOT_EXIST"):
            raise


def sync(session: XenapiSession) -> None:
    session.call("pool.certificate_sync")


def set_verify(session: XenapiSession, uuid: str, value: bool) -> None:
    session.call("pool.set_wlb_verify_cert", pool_ref(session, uuid), value)


def wlb_url(session: XenapiSession, uuid: str | None) -> str:
    """The pool's wlb_url right now ("" when it has none)."""
    url = session.call("pool.get_wlb_url", pool_ref(session, uuid))
    return url if isinstance(url, str) else ""


def wlb_host(session: XenapiSession, uuid: str | None) -> str | None:
    """The host part of the pool's wlb_url right now (what xapi checks the name of)."""
    return url_host(wlb_url(session, uuid)) or None


def confirm(session: XenapiSession) -> None:
    session.call("pool.retrieve_wlb_configuration")


def initialize_wlb(session: XenapiSession, url: str, env: dict[str, str]) -> None:
    missing = [var for var in env.values() if not os.environ.get(var)]
    if missing:
        raise StepFailed("reconnecting the pool needs these environment variables set: "
                         + ", ".join(missing))
    session.call("pool.initialize_wlb", url,
                 *(os.environ[env[name]] for name in INITIALIZE_WLB_LOGINS))


def local_handshake(argv: tuple[str, ...], bundle: list[str]) -> dict[str, facts.RawFact]:
    """``openssl s_client`` on this machine with ``bundle`` as its CAfile (written to a
    private temporary file, given as ``-CAfile``'s value): the raw facts
    ``actions.pool.handshake_verdict`` judges."""
    with tempfile.TemporaryDirectory(prefix="wlbplan-preflight-") as folder:
        path = os.path.join(folder, "xapi-stunnel-ca-bundle.pem")
        text = "".join(pem if pem.endswith("\n") else pem + "\n" for pem in bundle)
        with open(path, "w") as out:
            out.write(text)
        args = list(argv)
        args[args.index("-CAfile") + 1] = path
        try:
            done = run_child(["timeout", str(PREFLIGHT_TIMEOUT), *args],
                             timeout=PREFLIGHT_TIMEOUT + 10)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise StepFailed(f"preflight: cannot run openssl on this machine: {err}") from None
    shake = facts.RawFact(output=done.stdout + done.stderr, exit_code=done.returncode)
    return {"handshake": shake,
            "bundle": facts.RawFact(output=text, exit_code=0 if bundle else 1)}

