"""What an operator does by hand when an undo fails: one sentence per kind of undo record,
with the exact commands (built from quoted parts, logins never included)."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from urllib.parse import urlsplit

from wlbplan.actions.base import Context, UndoRecord
from wlbplan.core.steps.pool import API_CA_CALLS, CA_COMMANDS, api, initialize_wlb_call
from wlbplan.model.text import shell_word


def _where(ctx: Context) -> str:
    """Where the pool's commands are run: a pool reached through XenAPI may have no shell
    on its coordinator at all, so its operator runs xe from their own machine (-s/-u/-pwf,
    the same account wlbplan used) or makes the API call, as the plan showed the step."""
    if not api(ctx.target):
        return "on the coordinator"
    creds = ctx.target.pool.credentials
    password = f"${creds.password_env}" if creds else "the XenAPI account's password"
    return (f"from any machine with the xe CLI, as the XenAPI account wlbplan used "
            f"(PASSWORD_FILE: a file holding {password})")


def _xe(ctx: Context, *args: str, logins: tuple[str, ...] = ()) -> str:
    """An xe command as the operator types it: on the coordinator, or for a XenAPI pool
    with the pool's address and the account's login named, never included."""
    if not api(ctx.target):
        return f"`{' '.join((shlex.join((ctx.target.pool.xe, *args)), *logins))}`"
    parts = urlsplit(ctx.target.pool.api_url)
    creds = ctx.target.pool.credentials
    user = f'"${creds.username_env}"' if creds else "USER"
    remote = shlex.join(("xe", "-s", parts.hostname or ctx.target.pool.coordinator,
                         "-p", str(parts.port or 443)))
    words = (remote, "-u", user, "-pwf", "PASSWORD_FILE", shlex.join(args), *logins)
    return f"`{' '.join(words)}`"


def _call(ctx: Context, text: str) -> str:
    """The XenAPI call the plan showed, for an operator with another client."""
    return f" (the XenAPI call: {text})" if api(ctx.target) else ""


def _commands(r: UndoRecord) -> tuple[str, str, str, str]:
    """xe's and XenAPI's install and uninstall for the record's pool (1.249 has only the
    older names)."""
    kind = str(r.get("ca_commands", "current"))
    xe, calls = CA_COMMANDS[kind], API_CA_CALLS[kind]
    return xe.install, xe.uninstall, calls.install, calls.uninstall


def _on_appliance(ctx: Context) -> str:
    return f"restart stunnel with `{ctx.target.wlb.restart}`"


def _uninstall_ca(ctx: Context, r: UndoRecord) -> str:
    _, uninstall, _, call = _commands(r)
    name = str(r["name"])
    return (f"{_where(ctx)}, remove the CA certificate {name}: "
            f"{_xe(ctx, uninstall, 'name=' + name)}, then {_xe(ctx, 'pool-certificate-sync')}"
            f"{_call(ctx, f'{call}({shell_word(name)}), then pool.certificate_sync()')}")


def _install_ca(ctx: Context, r: UndoRecord) -> str:
    install, _, call, _ = _commands(r)
    name = str(r["name"])
    return (f"{_where(ctx)}, install the CA certificate {name} again (its PEM is "
            "this step's undo record in the journal): save it as a file named "
            f"{name}, run {_xe(ctx, install, 'filename=FILE')}, "
            f"then {_xe(ctx, 'pool-certificate-sync')}"
            f"{_call(ctx, f'{call}({shell_word(name)}, PEM), then pool.certificate_sync()')}")


def _sync(ctx: Context, r: UndoRecord) -> str:
    return (f"{_where(ctx)}, run {_xe(ctx, 'pool-certificate-sync')}"
            f"{_call(ctx, 'pool.certificate_sync()')}")


def _set_verify(ctx: Context, r: UndoRecord) -> str:
    value = str(r["value"]).lower()
    uuid = str(r["uuid"])
    return (f"{_where(ctx)}, run "
            f"{_xe(ctx, 'pool-param-set', 'uuid=' + uuid, 'wlb-verify-cert=' + value)}"
            f"{_call(ctx, f'pool.set_wlb_verify_cert(<pool {uuid}>, {value})')}")


def _reconnect(ctx: Context, r: UndoRecord) -> str:
    env: dict[str, str] = r.get("env", {})
    logins = tuple(f'{name}="${var}"' for name, var in sorted(env.items()))
    command = _xe(ctx, "pool-initialize-wlb", f"wlb_url={r['url']}", logins=logins)
    # Only a XenAPI pool's sentence names the call, which takes every login: an SSH
    # pool's record with fewer (another wlbplan's) still gets its xe command.
    call = _call(ctx, initialize_wlb_call(str(r["url"]), env)) if api(ctx.target) else ""
    return (f"reconnect the pool to WLB at {r['url']} as it was: {_where(ctx)}, "
            f"{command}{call} "
            "(the logins as in those environment variables; "
            "if the appliance refuses that address, reconnect it to an address it accepts)")


def _restore(ctx: Context, r: UndoRecord) -> str:
    return (f"on the appliance, put {r['backup_key']} back as {r['key']} and "
            f"{r['backup_cert']} as {r['cert']}, each copied beside it with `cp -p` (mode "
            f"and owner kept) and renamed onto it with `mv`, then {_on_appliance(ctx)}")


def _restart(ctx: Context, r: UndoRecord) -> str:
    return f"on the appliance, {_on_appliance(ctx)}"


def _unfresh(ctx: Context, r: UndoRecord) -> str:
    if r.get("replace"):
        return f"on the appliance, move {r['path']}.wlbplan-old back to {r['path']}"
    return f"on the appliance, remove {r['path']}"


def _remove_backups(ctx: Context, r: UndoRecord) -> str:
    backups = ", ".join(backup for _, backup in r["pairs"])
    return f"on the appliance, remove the backups {backups} once nothing needs them"


def _local_remove(ctx: Context, r: UndoRecord) -> str:
    return f"here, remove {r['path']}"


def _local_restore(ctx: Context, r: UndoRecord) -> str:
    return (f"here, put back {r['path']} as it was (its content is this step's undo record "
            "in the journal)")


def _put_back(ctx: Context, r: UndoRecord) -> str:
    if not r.get("mode"):
        return "nothing: the file was not there before"
    return (f"on the appliance, put back {r['path']} (mode {r['mode']}; its content is this "
            "step's undo record in the journal)")


def _acme_clear(ctx: Context, r: UndoRecord) -> str:
    records = ", ".join(f"_acme-challenge.{n.removeprefix('*.')}" for n in r["names"])
    return (f"remove the challenge TXT record(s) {records} from DNS (the spec's "
            "acme.challenge.clear hook does it)")


_BY_KIND: dict[str, Callable[[Context, UndoRecord], str]] = {
    "pool.uninstall_ca": _uninstall_ca,
    "pool.install_ca": _install_ca,
    "pool.certificate_sync": _sync,
    "pool.set_verify": _set_verify,
    "pool.reconnect": _reconnect,
    "appliance.restore": _restore,
    "appliance.restart": _restart,
    "appliance.unfresh": _unfresh,
    "appliance.remove_backups": _remove_backups,
    "local.remove": _local_remove,
    "local.restore": _local_restore,
    "appliance.put_back": _put_back,
    "acme.clear": _acme_clear,
}


def explained_kinds() -> set[str]:
    return set(_BY_KIND)


def by_hand(ctx: Context, record: UndoRecord) -> str:
    """How to restore by hand what ``record``'s undo would have restored."""
    explain = _BY_KIND.get(str(record.get("kind", "")))
    if explain is None:
        return "restore what this step changed (its undo record is in the journal)"
    try:
        return explain(ctx, record)
    # A record from another wlbplan, or one no wlbplan wrote: [["x"]] as pairs was a
    # ValueError that ended a rollback with a traceback.
    except (LookupError, TypeError, AttributeError, ValueError):
        return "restore what this step changed (its undo record is in the journal)"
