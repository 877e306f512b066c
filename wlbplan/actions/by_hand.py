"""What an operator does by hand when an undo fails: one sentence per kind of undo record,
with the exact commands (built from quoted parts, logins never included)."""

from __future__ import annotations

import shlex
from collections.abc import Callable

from wlbplan.actions.base import Context, UndoRecord


def _xe(ctx: Context, *args: str) -> str:
    return f"`{shlex.join((ctx.target.pool.xe, *args))}`"


def _on_appliance(ctx: Context) -> str:
    return f"restart stunnel with `{ctx.target.wlb.restart}`"


def _uninstall_ca(ctx: Context, r: UndoRecord) -> str:
    return (f"on the coordinator, remove the CA certificate {r['name']}: "
            f"{_xe(ctx, 'pool-uninstall-ca-certificate', 'name=' + r['name'])}, then "
            f"{_xe(ctx, 'pool-certificate-sync')}")


def _install_ca(ctx: Context, r: UndoRecord) -> str:
    return (f"on the coordinator, install the CA certificate {r['name']} again (its PEM is "
            "this step's undo record in the journal): save it as a file named "
            f"{r['name']}, run {_xe(ctx, 'pool-install-ca-certificate', 'filename=FILE')}, "
            f"then {_xe(ctx, 'pool-certificate-sync')}")


def _sync(ctx: Context, r: UndoRecord) -> str:
    return f"on the coordinator, run {_xe(ctx, 'pool-certificate-sync')}"


def _set_verify(ctx: Context, r: UndoRecord) -> str:
    value = str(r["value"]).lower()
    return (f"on the coordinator, run "
            f"{_xe(ctx, 'pool-param-set', 'uuid=' + r['uuid'], 'wlb-verify-cert=' + value)}")


def _reconnect(ctx: Context, r: UndoRecord) -> str:
    env: dict[str, str] = r.get("env", {})
    logins = [f'{name}="${var}"' for name, var in sorted(env.items())]
    command = shlex.join((ctx.target.pool.xe, "pool-initialize-wlb", f"wlb_url={r['url']}"))
    return (f"reconnect the pool to WLB at {r['url']} as it was: on the coordinator, "
            f"`{command} {' '.join(logins)}` (the logins as in those environment variables; "
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
