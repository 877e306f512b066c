"""Pool actions: run on the coordinator with its xe CLI and its own openssl, or, for a pool
reached through XenAPI, as API calls (``actions.pool_api``) with the preflight run here."""

from __future__ import annotations

import os
import re
from typing import Any

from wlbplan import certs
from wlbplan.actions import pool_api
from wlbplan.actions.base import (
    Action,
    Confine,
    Context,
    StepFailed,
    UndoRecord,
    checked,
    first,
    remote_tmpdir,
    typed,
)
from wlbplan.connectors.xenapi import XenapiPool, XenapiSession
from wlbplan.core.steps import Step
from wlbplan.core.steps.pool import CA_COMMANDS, CaCommands, bundle_path, preflight_argv
from wlbplan.errors import VerifyError
from wlbplan.inspect import script as facts
from wlbplan.model.command import Command, script
from wlbplan.model.names import file_name_problem, join_host_port
from wlbplan.model.spec import url_host

_GONE = ("does not exist",)


def _xe(ctx: Context, *args: str) -> Command:
    return Command((ctx.target.pool.xe, *args))


def _api(ctx: Context) -> XenapiSession | None:
    """The pool's XenAPI session when it is reached that way (None: xe over a Runner)."""
    pool = ctx.sessions.pool
    return pool.session if isinstance(pool, XenapiPool) else None


def _key(xe: CaCommands) -> str:
    """The PoolFacts.ca_commands value these xe commands stand for (the same choice names
    the XenAPI calls)."""
    return next(key for key, known in CA_COMMANDS.items() if known == xe)


# ---- install / uninstall a CA certificate ----------------------------------------------


def _safe(name: str, what: str) -> str:
    """A CA certificate name from a plan file or a journal becomes a file name (the upload)
    and xapi's name: refuse one that could leave its folder before anything runs."""
    problem = file_name_problem(name)
    if problem:
        raise StepFailed(f"{what}: refusing the CA certificate name {name[:80]!r}: it "
                         f"{problem} (xapi's rule for certificate names)")
    return name


def ca_commands(params: dict[str, Any]) -> CaCommands:
    """The CA commands a step or undo record was planned with (plans and journals made
    before the choice existed used the current ones); anything else is refused."""
    found = CA_COMMANDS.get(str(params.get("ca_commands", "current")))
    if found is None:
        raise StepFailed(f"unknown CA certificate commands {params.get('ca_commands')!r}; "
                         "known: " + ", ".join(CA_COMMANDS))
    return found


def install(ctx: Context, xe: CaCommands, name: str, pem: str) -> None:
    _safe(name, "installing a CA certificate")
    api = _api(ctx)
    if api is not None:
        pool_api.install(api, _key(xe), name, pem)
        return
    runner = ctx.sessions.pool_runner
    with remote_tmpdir(runner) as folder:
        path = f"{folder}/{name}"
        runner.put(pem.encode(), path, mode=0o644)
        checked(runner, _xe(ctx, xe.install, f"filename={path}"),
                f"installing CA certificate {name}")


def uninstall(ctx: Context, xe: CaCommands, name: str, *, missing_ok: bool) -> None:
    _safe(name, "removing a CA certificate")
    api = _api(ctx)
    if api is not None:
        pool_api.uninstall(api, _key(xe), name, missing_ok=missing_ok)
        return
    result = ctx.sessions.pool_runner.run(_xe(ctx, xe.uninstall, f"name={name}"))
    if result.ok or (missing_ok and any(g in result.stderr for g in _GONE)):
        return
    said = (result.stderr or result.stdout).strip()
    raise StepFailed(f"removing CA certificate {name} failed on {ctx.sessions.pool.host}: "
                     f"{said}")


def _install_run(ctx: Context, step: Step) -> None:
    install(ctx, ca_commands(step.params), step.params["name"], step.params["pem"])


def _names(ctx: Context, xe: CaCommands) -> list[str]:
    api = _api(ctx)
    if api is not None:
        return pool_api.ca_names(api, _key(xe))
    listed = checked(ctx.sessions.pool_runner, _xe(ctx, "pool-certificate-list", "--minimal"),
                     "listing CA certificates")
    return listed.stdout.replace(",", " ").split()


def _install_undo_record(ctx: Context, step: Step) -> UndoRecord | None:
    # A name that is already there is someone's trust: installing fails, and undoing must
    # not remove it.
    if step.params["name"] in _names(ctx, ca_commands(step.params)):
        return None
    return {"kind": "pool.uninstall_ca", "name": step.params["name"],
            "ca_commands": step.params.get("ca_commands", "current")}


def _uninstall_run(ctx: Context, step: Step) -> None:
    uninstall(ctx, ca_commands(step.params), step.params["name"], missing_ok=False)


def _uninstall_undo_record(ctx: Context, step: Step) -> UndoRecord | None:
    pem = step.params.get("pem")
    if not pem:
        return None
    return {"kind": "pool.install_ca", "name": step.params["name"], "pem": pem,
            "ca_commands": step.params.get("ca_commands", "current")}


def _undo_uninstall(ctx: Context, record: UndoRecord) -> None:
    uninstall(ctx, ca_commands(record), record["name"], missing_ok=True)


def _undo_install(ctx: Context, record: UndoRecord) -> None:
    if record["name"] not in _names(ctx, ca_commands(record)):
        install(ctx, ca_commands(record), record["name"], record["pem"])


# ---- sync --------------------------------------------------------------------------------


def sync(ctx: Context) -> None:
    api = _api(ctx)
    if api is not None:
        pool_api.sync(api)
        return
    checked(ctx.sessions.pool_runner, _xe(ctx, "pool-certificate-sync"),
            "pool-certificate-sync")


def _sync_run(ctx: Context, step: Step) -> None:
    sync(ctx)


def _sync_undo_record(ctx: Context, step: Step) -> UndoRecord:
    # Installs and uninstalls distribute by themselves; a sync after undoing them makes
    # every member match the coordinator again.
    return {"kind": "pool.certificate_sync"}


def _undo_sync(ctx: Context, record: UndoRecord) -> None:
    sync(ctx)


# ---- wlb-verify-cert ---------------------------------------------------------------------


def set_verify(ctx: Context, uuid: str, value: bool) -> None:
    api = _api(ctx)
    if api is not None:
        pool_api.set_verify(api, uuid, value)
        return
    checked(ctx.sessions.pool_runner,
            _xe(ctx, "pool-param-set", f"uuid={uuid}", f"wlb-verify-cert={str(value).lower()}"),
            "setting wlb-verify-cert")


def _set_verify_run(ctx: Context, step: Step) -> None:
    set_verify(ctx, step.params["uuid"], step.params["value"])


def _set_verify_undo_record(ctx: Context, step: Step) -> UndoRecord:
    return {"kind": "pool.set_verify", "uuid": step.params["uuid"], "value": step.params["old"]}


def _undo_set_verify(ctx: Context, record: UndoRecord) -> None:
    set_verify(ctx, record["uuid"], record["value"])


# ---- preflight and confirm ----------------------------------------------------------------


_CIPHER = re.compile(r"^New, [^,]+, Cipher is (\S+)\s*$", re.M)


def handshake_verdict(raw: dict[str, facts.RawFact], legacy: bool) -> str | None:
    """None when the pool's checks pass; else the reason, in OpenSSL's words.

    A pass needs all three: s_client exited 0, the peer sent a certificate, and a cipher
    was negotiated. OpenSSL's "Verify return code: 0 (ok)" alone proves nothing: after a
    handshake that failed before any certificate came (a non-RSA WLB key against xapi's
    ECDHE-RSA suites, a version mismatch) it still says so.
    """
    shake, bundle = raw.get("handshake"), raw.get("bundle")
    if shake is None or bundle is None:
        return "the coordinator did not run the check (no output)"
    if not bundle.ok:
        return "the pool's CA bundle is missing or unreadable: the pool trusts nothing yet"
    output = shake.output
    failed = "verify error:" in output or "certificate verify failed" in output
    if failed or "Verify return code: 0 (ok)" not in output:
        if legacy and _stopped_for_the_leafs_issuer(output) \
                and _leaf_not_in(output, bundle.output):
            return certs.NOT_LOCAL_REASON
        return _openssl_reason(output)
    if "-----BEGIN CERTIFICATE-----" not in output:
        return (f"no TLS handshake: WLB sent no certificate ({_openssl_reason(output)}); "
                "a WLB key that is not RSA cannot work with xapi's ECDHE-RSA cipher suites")
    cipher = _CIPHER.search(output)
    if cipher is None or cipher.group(1) == "(NONE)":
        return f"no TLS handshake: no cipher was negotiated ({_openssl_reason(output)})"
    if not shake.ok and not _closed_after_handshake(output):
        return f"openssl s_client failed (exit {shake.exit_code}): {_openssl_reason(output)}"
    if legacy:
        return _legacy_reason(output, bundle.output)
    return None


# What s_client prints, and exits non-zero for, when the peer ends the connection after a
# complete handshake (stunnel resets it when WLB's own service behind it is down): the
# handshake itself passed, which is all the pool's checks are about.
_PEER_CLOSED = re.compile(r"^(read:errno=\d+|closed)$", re.M)
# OpenSSL's error queue lines: "80FB8F00337F0000:error:0A000410:SSL routines:func:reason:..."
_OPENSSL_ERROR = re.compile(r"^[0-9A-F]+:error:[0-9A-F]+:[^:]*:[^:]*:([^:]+)", re.M)


def _closed_after_handshake(output: str) -> bool:
    return bool(_PEER_CLOSED.search(output)) and not _OPENSSL_ERROR.search(output)


def _openssl_reason(output: str) -> str:
    for line in output.splitlines():
        if "verify error:" in line:
            # "verify error:num=62:hostname mismatch" → "hostname mismatch"
            return re.sub(r"^num=\d+:", "", line.split("verify error:", 1)[1].strip())
    for line in output.splitlines():
        if "Verify return code:" in line and "(ok)" not in line:
            return line.split("Verify return code:", 1)[1].strip()
    error = _OPENSSL_ERROR.search(output)
    if error:
        return error.group(1).strip()  # the reason only: the rest carries a thread id
    for line in output.splitlines():
        if "connect:" in line or "errno" in line or "error" in line.lower():
            return line.strip()
    return "the TLS handshake failed"


# s_client's first verification failure: "depth=0 CN = …", then "verify error:num=20:…".
_VERIFY_ERROR = re.compile(r"^depth=(\d+) [^\n]*\nverify error:num=(\d+):", re.M)
# OpenSSL's errors for an issuer it cannot find: X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT,
# _UNABLE_TO_GET_ISSUER_CERT_LOCALLY, _UNABLE_TO_VERIFY_LEAF_SIGNATURE.
_NO_ISSUER = frozenset({"2", "20", "21"})


def _stopped_for_the_leafs_issuer(output: str) -> bool:
    """Did the check stop at the leaf for want of its issuer? Under -partial_chain the leaf
    itself was then not in the bundle: legacy xapi (verifyPeer) ignores a missing issuer
    and refuses for that alone, the reason the pool gives whether or not it holds the
    issuer (over XenAPI the preflight's bundle never holds a CA wlbplan has no PEM of)."""
    first = _VERIFY_ERROR.search(output)
    return first is not None and first.group(1) == "0" and first.group(2) in _NO_ISSUER


def _leaf_not_in(served: str, bundle: str) -> bool:
    try:
        leaf = certs.parse_pem_bundle(served.encode())[0]
        trust = certs.parse_pem_bundle(bundle.encode())
    except VerifyError:
        return False  # OpenSSL's own reason then
    return not certs.locally_installed(leaf, trust)


def _legacy_reason(served: str, bundle: str) -> str | None:
    try:
        leaf = certs.parse_pem_bundle(served.encode())[0]
        trust = certs.parse_pem_bundle(bundle.encode())
    except VerifyError as err:
        return str(err)
    if certs.locally_installed(leaf, trust):
        return None
    return certs.NOT_LOCAL_REASON


def current_wlb_host(ctx: Context, uuid: str | None) -> str | None:
    """The host part of the pool's wlb-url right now (what xapi will check the name of)."""
    return url_host(current_wlb_url(ctx, uuid)) or None


def current_wlb_url(ctx: Context, uuid: str | None) -> str:
    """The pool's wlb-url right now ("" when it has none)."""
    api = _api(ctx)
    if api is not None:
        return pool_api.wlb_url(api, uuid)
    runner = ctx.sessions.pool_runner
    pool_uuid = uuid or checked(runner, _xe(ctx, "pool-list", "--minimal"),
                                "finding the pool").stdout.strip()
    if not pool_uuid:
        raise StepFailed(f"finding the pool: {ctx.target.pool.xe} pool-list printed nothing "
                         f"on {runner.host}")
    return checked(runner,
                   _xe(ctx, "pool-param-get", f"uuid={pool_uuid}", "param-name=wlb-url"),
                   "reading wlb-url").stdout.strip()


def _preflight_run(ctx: Context, step: Step) -> None:
    p = dict(step.params)
    # The pool's wlb-url now, not as planned: a pool moved to an IP meanwhile must fail here.
    now = current_wlb_host(ctx, p.get("uuid"))
    if now is not None and now != p["host"]:
        p["host"], p["address"] = now, ctx.spec.address_of(now)
    argv = preflight_argv(ctx.target, p["host"], p["address"], p["port"], p["mode"] != "chain")
    if _api(ctx) is not None:
        # No shell on the pool: here, with the bundle the plan says the pool will hold.
        bundle = p.get("bundle")
        if not isinstance(bundle, list) or not all(isinstance(b, str) for b in bundle):
            raise StepFailed("preflight: the plan carries no bundle for the pool (made by "
                             "another wlbplan?); make the plan again")
        raw = pool_api.local_handshake(argv, bundle)
        where = "from this machine with the bundle the pool will hold"
    else:
        text = facts.build([
            facts.fact("handshake", "timeout", "20", *argv),
            facts.fact("bundle", "cat", "--", bundle_path(ctx.target)),
        ])
        raw = facts.parse(ctx.sessions.pool_runner.run(script(text), timeout=60).stdout)
        where = "from the coordinator"
    reason = handshake_verdict(raw, legacy=p["mode"] != "chain")
    if reason is not None:
        raise StepFailed(
            f"preflight ({where}): WLB at {join_host_port(p['host'], p['port'])} would fail "
            f"the pool's own checks ({p['mode']}): {reason}. wlb-verify-cert was left as it "
            "is."
        )


def _missing(env: dict[str, str]) -> list[str]:
    return [var for var in env.values() if not os.environ.get(var)]


def _logins(env: dict[str, str]) -> tuple[list[str], tuple[str, ...]]:
    """``name=value`` arguments from the environment, and the secrets to mask."""
    missing = _missing(env)
    if missing:
        raise StepFailed("reconnecting the pool needs these environment variables set: "
                         + ", ".join(missing))
    args = [f"{name}={os.environ[var]}" for name, var in env.items()]
    secrets = tuple(os.environ[var] for name, var in env.items() if name.endswith("password"))
    return args, secrets


def initialize_wlb(ctx: Context, url: str, env: dict[str, str]) -> None:
    api = _api(ctx)
    if api is not None:
        pool_api.initialize_wlb(api, url, env)
        return
    args, secrets = _logins(env)
    command = Command((ctx.target.pool.xe, "pool-initialize-wlb", f"wlb_url={url}", *args),
                      secrets=secrets)
    checked(ctx.sessions.pool_runner, command, f"pool-initialize-wlb with wlb_url={url}")


def _reconnect_run(ctx: Context, step: Step) -> None:
    initialize_wlb(ctx, step.params["url"], step.params["env"])


def _reconnect_undo_record(ctx: Context, step: Step) -> UndoRecord:
    return {"kind": "pool.reconnect", "url": step.params["old_url"], "env": step.params["env"]}


def _undo_reconnect(ctx: Context, record: UndoRecord) -> None:
    # A reconnect WLB refused changed nothing (xapi stores the new settings only once WLB
    # accepted them): calling initialize_wlb again with the same refused logins could only
    # fail, and leave the rollback incomplete for nothing.
    if current_wlb_url(ctx, None) == record["url"]:
        return
    initialize_wlb(ctx, record["url"], record["env"])


def check_environment(step: Step) -> str | None:
    """Before any change: what a step will need from the environment and is missing."""
    if step.action != "pool.reconnect":
        return None
    return ", ".join(_missing(step.params["env"])) or None


def _confirm_run(ctx: Context, step: Step) -> None:
    api = _api(ctx)
    if api is not None:
        pool_api.confirm(api)
        return
    checked(ctx.sessions.pool_runner, _xe(ctx, "pool-retrieve-wlb-configuration"),
            "confirming the pool still talks to WLB (pool-retrieve-wlb-configuration)")


def _nothing(ctx: Context, step: Step) -> None:
    return None


def _no_undo(ctx: Context, record: UndoRecord) -> None:
    return None


ACTIONS = {
    "pool.install_ca": Action(_install_undo_record, _install_run, _undo_install),
    "pool.uninstall_ca": Action(_uninstall_undo_record, _uninstall_run, _undo_uninstall),
    "pool.certificate_sync": Action(_sync_undo_record, _sync_run, _undo_sync),
    "pool.set_verify": Action(_set_verify_undo_record, _set_verify_run, _undo_set_verify),
    "pool.preflight": Action(lambda ctx, step: None, _preflight_run, _no_undo),
    "pool.confirm": Action(lambda ctx, step: None, _confirm_run, _no_undo),
    "pool.reconnect": Action(_reconnect_undo_record, _reconnect_run, _undo_reconnect),
}

# Undo records name the action that reverses them.
UNDO = {
    "pool.uninstall_ca": _undo_uninstall,
    "pool.install_ca": _undo_install,
    "pool.certificate_sync": _undo_sync,
    "pool.set_verify": _undo_set_verify,
    "pool.reconnect": _undo_reconnect,
}


# ---- what an undo may touch ----------------------------------------------------------------
# wlbplan installs and removes only CA certificates of its own names (desired.Anchor),
# sets only wlb-verify-cert, and reconnects only with the spec's own login variables.

_MANAGED = re.compile(r"wlbplan-(?:wlb|leaf|intermediate|root)-[0-9a-f]{16}\.pem", re.ASCII)


def _managed_name(ctx: Context, record: UndoRecord) -> str | None:
    name = record.get("name")
    if isinstance(name, str) and _MANAGED.fullmatch(name):
        return None
    return (f"name {name!r} is not a CA certificate name wlbplan installs "
            "(wlbplan-ROLE-FINGERPRINT.pem)")


def _confine_install(ctx: Context, record: UndoRecord) -> str | None:
    return first(_managed_name(ctx, record), typed(record, "pem", str))


def _confine_set_verify(ctx: Context, record: UndoRecord) -> str | None:
    return first(typed(record, "uuid", str), typed(record, "value", bool))


def _confine_reconnect(ctx: Context, record: UndoRecord) -> str | None:
    creds = ctx.target.wlb.credentials
    env = None if creds is None else {
        "wlb_username": creds.username_env, "wlb_password": creds.password_env,
        "xenserver_username": creds.xenserver_username_env,
        "xenserver_password": creds.xenserver_password_env}
    if env is None or record.get("env") != env:
        return "env is not the spec's wlb.credentials of this target"
    return typed(record, "url", str)


CONFINE: dict[str, Confine] = {
    "pool.uninstall_ca": _managed_name,
    "pool.install_ca": _confine_install,
    "pool.certificate_sync": lambda ctx, record: None,
    "pool.set_verify": _confine_set_verify,
    "pool.reconnect": _confine_reconnect,
}
