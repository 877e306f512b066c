"""Pool steps: run on the coordinator with its xe CLI (``connector: ssh``), or as calls of
the pool's XenAPI (``connector: xenapi``). The step, its parameters and its undo record
are the same; only what it shows (and ``actions`` runs) differs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from wlbplan.core.desired import Anchor
from wlbplan.core.steps import TMP, Step
from wlbplan.model.command import Command, Part, Raw, shown
from wlbplan.model.names import join_host_port
from wlbplan.model.observed import PoolFacts
from wlbplan.model.spec import Target, is_ip_literal
from wlbplan.model.text import shell_word


@dataclass(frozen=True)
class CaCommands:
    """The xe commands that install and remove a pool's CA certificates."""

    install: str
    uninstall: str


# By PoolFacts.ca_commands: xapi 1.290 added pool-install-ca-certificate and
# pool-uninstall-ca-certificate; the 1.249 line (Citrix Hypervisor 8.2) has only the
# older names, which later versions keep as deprecated aliases.
CA_COMMANDS = {
    "current": CaCommands("pool-install-ca-certificate", "pool-uninstall-ca-certificate"),
    "pre-1.290": CaCommands("pool-certificate-install", "pool-certificate-uninstall"),
}


def _xe(target: Target, *args: Part) -> str:
    return shown(target.pool.xe, *args)


def api(target: Target) -> bool:
    """Is this pool reached through its XenAPI?"""
    return target.pool.connector == "xenapi"


def _call(name: str, *args: str) -> str:
    """A XenAPI call as the plan shows it; the session is implied, values are shown as
    words (a PEM is never printed: ``<…>``)."""
    return f"{name}({', '.join(args)})"


# The same choice for XenAPI: the 1.249 line has only pool.certificate_install/_uninstall.
API_CA_CALLS = {
    "current": CaCommands("pool.install_ca_certificate", "pool.uninstall_ca_certificate"),
    "pre-1.290": CaCommands("pool.certificate_install", "pool.certificate_uninstall"),
}


def _in_tmp(option: str, name: str) -> Raw:
    """``filename="$WLBPLAN_TMP"/NAME``: the upload folder is only known when apply runs."""
    return Raw(f'{option}="{TMP}"/{shell_word(name)}')


def _upload(what: str, name: str) -> str:
    return f"upload {what} to {TMP}/{shell_word(name)} (0644)"


def bundle_path(target: Target) -> str:
    return f"{str(target.pool.trust_dir).rstrip('/')}/xapi-stunnel-ca-bundle.pem"


def install_ca(target: Target, pool: PoolFacts, anchor: Anchor) -> Step:
    name = anchor.install_name
    xe = CA_COMMANDS[pool.ca_commands]
    calls = API_CA_CALLS[pool.ca_commands]
    commands = (_call(calls.install, shell_word(name), "<the certificate above>"),) \
        if api(target) else (
            f"{TMP[1:]}=$(mktemp -d)",
            _upload(shell_word(name), name),
            _xe(target, xe.install, _in_tmp("filename", name)),
            f'rm -rf "{TMP}"',
        )
    undo = _call(calls.uninstall, shell_word(name)) if api(target) else \
        _xe(target, xe.uninstall, f"name={name}")
    return Step(
        action="pool.install_ca",
        on="pool",
        summary=f"trust {name} on every host of the pool",
        commands=commands,
        undo=(undo,),
        params={"name": name, "fingerprint": anchor.fingerprint, "pem": anchor.pem,
                "ca_commands": pool.ca_commands},
    )


def certificate_sync(target: Target) -> Step:
    command = _call("pool.certificate_sync") if api(target) else \
        _xe(target, "pool-certificate-sync")
    return Step(
        action="pool.certificate_sync",
        on="pool",
        summary="push the coordinator's CA certificates to every host",
        commands=(command,),
        undo=(command,),
    )


# xapi's stunnel client profile for WLB (stunnel.ml): TLS 1.2 with ECDHE-RSA suites only,
# so the preflight offers the same and an EC-keyed WLB certificate fails here too.
XAPI_CLIENT_CIPHERS = "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256"


def preflight_argv(target: Target, host: str, address: str, port: int,
                   legacy: bool) -> tuple[str, ...]:
    """``openssl s_client`` doing what xapi's stunnel client does with wlb-verify-cert on.

    ``checkHost`` is X509_check_host even for an IP literal (IP SANs are not consulted),
    hence ``-verify_hostname`` always. Legacy xapi (verifyPeer) only needs the leaf in
    the bundle: ``-partial_chain``, and the caller checks the leaf is there.
    """
    argv = ["openssl", "s_client", "-connect", join_host_port(address, port), "-CAfile",
            bundle_path(target), "-verify_return_error", "-showcerts", "-tls1_2",
            "-cipher", XAPI_CLIENT_CIPHERS, "-verify_hostname", host]
    if not is_ip_literal(host):
        argv += ["-servername", host]
    if legacy:
        argv.append("-partial_chain")
    return tuple(argv)


# Over XenAPI the preflight's CAfile is a file this machine writes, with the bundle the
# plan expects the pool to hold.
LOCAL_BUNDLE = "<the bundle the pool will hold, written here>"


def preflight(target: Target, pool: PoolFacts, host: str, address: str,
              bundle: tuple[str, ...] = ()) -> Step:
    """A handshake with the pool's own checks, to ``host`` (the host part of wlb-url once
    applied) at ``address`` (where it resolves): from the coordinator with its bundle, or
    over XenAPI from this machine with ``bundle`` (the PEMs the pool will trust)."""
    port = target.wlb.port
    legacy = not pool.chain_verification
    mode = "leaf-in-bundle" if legacy else "chain"
    argv = preflight_argv(target, host, address, port, legacy)
    params = {"host": host, "address": address, "port": port, "mode": mode, "uuid": pool.uuid}
    where = "the coordinator"
    if api(target):
        argv = tuple(LOCAL_BUNDLE if a == bundle_path(target) else a for a in argv)
        params["bundle"] = list(bundle)
        where = ("this machine (not the pool's network position: the confirm step after it "
                 "is the pool's own check, undone on failure), with the bundle the pool will "
                 "hold,")
    return Step(
        action="pool.preflight",
        on="pool",
        summary=f"check from {where} that WLB at {join_host_port(host, port)} passes the "
                f"pool's checks (name, {mode}) before verification is on",
        commands=(Command(argv).display(),),
        params=params,
    )


def set_verify(target: Target, pool: PoolFacts, verify: bool) -> Step:
    value, old = str(verify).lower(), str(pool.wlb_verify_cert).lower()
    if api(target):
        command = _call("pool.set_wlb_verify_cert", f"<pool {pool.uuid}>", value)
        undo = _call("pool.set_wlb_verify_cert", f"<pool {pool.uuid}>", old)
    else:
        command = _xe(target, "pool-param-set", f"uuid={pool.uuid}", f"wlb-verify-cert={value}")
        undo = _xe(target, "pool-param-set", f"uuid={pool.uuid}", f"wlb-verify-cert={old}")
    return Step(
        action="pool.set_verify",
        on="pool",
        summary=f"set wlb-verify-cert={value}",
        commands=(command,),
        undo=(undo,),
        params={"uuid": pool.uuid, "value": verify, "old": pool.wlb_verify_cert},
    )


# pool.initialize_wlb's logins after the URL, in the call's order (xapi's datamodel_pool.ml).
INITIALIZE_WLB_LOGINS = ("wlb_username", "wlb_password", "xenserver_username",
                         "xenserver_password")


def initialize_wlb_call(url: str, env: Mapping[str, str]) -> str:
    """pool.initialize_wlb as the plan and a failed undo's by-hand sentence show it: each
    login by the variable that holds it (``env``: login name -> variable)."""
    return _call("pool.initialize_wlb", shell_word(url),
                 *(f"${env[name]}" for name in INITIALIZE_WLB_LOGINS))


def reconnect(target: Target, pool: PoolFacts, url: str) -> Step:
    """pool-initialize-wlb by name; the logins come from the environment at apply time."""
    creds = target.wlb.credentials
    assert creds is not None  # desired only plans a reconnect when credentials are given
    env = {"wlb_username": creds.username_env, "wlb_password": creds.password_env,
           "xenserver_username": creds.xenserver_username_env,
           "xenserver_password": creds.xenserver_password_env}
    logins = [Raw(f'{name}="${var}"') for name, var in env.items()]
    if api(target):
        command = initialize_wlb_call(url, env)
        undo = initialize_wlb_call(pool.wlb_url, env)
    else:
        command = _xe(target, "pool-initialize-wlb", f"wlb_url={url}", *logins)
        undo = _xe(target, "pool-initialize-wlb", f"wlb_url={pool.wlb_url}", *logins)
    return Step(
        action="pool.reconnect",
        on="pool",
        summary=f"reconnect the pool to WLB by name: wlb-url {pool.wlb_url} → {url} "
                f"(logins from ${creds.username_env}, ${creds.password_env}, "
                f"${creds.xenserver_username_env}, ${creds.xenserver_password_env})",
        commands=(command,),
        undo=(undo,),
        params={"url": url, "old_url": pool.wlb_url, "env": env},
    )


def confirm(target: Target) -> Step:
    command = _call("pool.retrieve_wlb_configuration") if api(target) else \
        _xe(target, "pool-retrieve-wlb-configuration")
    return Step(
        action="pool.confirm",
        on="pool",
        summary="confirm the pool still talks to WLB",
        commands=(command,),
    )


def uninstall_ca(target: Target, pool: PoolFacts, name: str, pem: str | None,
                 fingerprint: str | None) -> Step:
    xe = CA_COMMANDS[pool.ca_commands]
    calls = API_CA_CALLS[pool.ca_commands]
    if api(target):
        undo: tuple[str, ...] = (
            _call(calls.install, shell_word(name), "<the saved certificate>"),) if pem else ()
        command = _call(calls.uninstall, shell_word(name))
    else:
        undo = (
            f"{TMP[1:]}=$(mktemp -d)",
            _upload(f"the saved {shell_word(name)}", name),
            _xe(target, xe.install, _in_tmp("filename", name)),
        ) if pem else ()
        command = _xe(target, xe.uninstall, f"name={name}")
    return Step(
        action="pool.uninstall_ca",
        on="pool",
        summary=f"remove {name}, which wlbplan installed and nothing needs now" + (
            "" if pem else "; no undo: its content is unknown to wlbplan"),
        commands=(command,),
        undo=undo,
        params={"name": name, "fingerprint": fingerprint, "pem": pem,
                "ca_commands": pool.ca_commands},
    )
