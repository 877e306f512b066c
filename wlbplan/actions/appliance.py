"""Appliance actions: key and CSR, backups, installing the chain, restarting stunnel.

The private key is created on the appliance and only ever moved there; nothing here
reads it back. Files are replaced by rename, and restored byte-identical with their mode
and owner (``cp -p`` then rename) by the undo actions.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from wlbplan import certs
from wlbplan.actions.base import (
    Action,
    Confine,
    Context,
    StepFailed,
    UndoRecord,
    checked,
    first,
    one_of,
    typed,
)
from wlbplan.children import run_child
from wlbplan.core.steps import Step
from wlbplan.core.steps.appliance import BACKUP, csr_argv, pending_csr, pending_key
from wlbplan.errors import VerifyError, WlbplanError
from wlbplan.inspect import script as facts
from wlbplan.limits import PEM, read_file
from wlbplan.model.command import Command, script
from wlbplan.model.names import join_host_port

RESTART_WAIT = 30.0
STAGED = ".wlbplan-new"


# ---- key and CSR (request stage) -----------------------------------------------------

# $1 = path; with $2 = "replace", an existing file is kept aside as $1.wlbplan-old first;
# otherwise an existing file is an error (never overwrite a key). Then: exec "$@" (after
# shifting the two) with umask 077, so a key is never readable by others, not even briefly.
_FRESH = ('p=$1; r=$2; shift 2; '
          'if [ -e "$p" ]; then '
          '  if [ "$r" = replace ]; then mv -f -- "$p" "$p.wlbplan-old" || exit 1; '
          '  else echo "$p exists" >&2; exit 1; fi; '
          'fi; umask 077; exec "$@"')


def _fresh(ctx: Context, step: Step, argv: tuple[str, ...], what: str) -> None:
    p = step.params
    mode = "replace" if p.get("replace") else "new"
    checked(ctx.sessions.appliance, script(_FRESH, p["path"], mode, *argv), what)


def _generate_key_run(ctx: Context, step: Step) -> None:
    from wlbplan.core.steps.appliance import key_args_for

    p = step.params
    argv = ("openssl", "genpkey", *key_args_for(p["type"], p["bits"]), "-out", p["path"])
    _fresh(ctx, step, argv, f"generating the pending key {p['path']}")


def _fresh_undo_record(ctx: Context, step: Step) -> UndoRecord:
    return {"kind": "appliance.unfresh", "path": step.params["path"],
            "replace": bool(step.params.get("replace"))}


# Undo of _FRESH: put the old file back if one was kept aside, else remove the new one.
_UNFRESH = 'if [ "$2" = replace ] && [ -e "$1.wlbplan-old" ]; then ' \
    'mv -f -- "$1.wlbplan-old" "$1"; elif [ "$2" != replace ]; then rm -f -- "$1"; fi'


def _undo_unfresh(ctx: Context, record: UndoRecord) -> None:
    mode = "replace" if record["replace"] else "new"
    checked(ctx.sessions.appliance, script(_UNFRESH, record["path"], mode),
            f"undoing {record['path']}")


def _make_csr_run(ctx: Context, step: Step) -> None:
    p = step.params
    argv = csr_argv(pending_key(ctx.target), p["subject"], p["alt_names"], p["path"])
    _fresh(ctx, step, argv, f"making the CSR {p['path']}")


def _fetch_csr_run(ctx: Context, step: Step) -> None:
    data = ctx.sessions.appliance.get(step.params["remote"])
    local = Path(step.params["local"])
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_bytes(data)


def _sign_run(ctx: Context, step: Step) -> None:
    """The spec's signer, run here (argv, no shell); it must leave a certificate behind."""
    p = step.params
    # Like the CSR's folder: validate checked that it can be made.
    Path(p["cert"]).parent.mkdir(parents=True, exist_ok=True)
    result = run_child(p["argv"], timeout=300)
    if result.returncode != 0:
        said = (result.stderr or result.stdout).strip()[-500:] or "no output"
        raise StepFailed(f"the signer failed (exit {result.returncode}): {said}")
    try:
        certs.parse_pem_bundle(read_file(p["cert"], PEM))
    except (OSError, WlbplanError) as err:
        raise StepFailed(f"the signer left no usable certificate at {p['cert']}: {err}") \
            from None


def _sign_undo_record(ctx: Context, step: Step) -> UndoRecord | None:
    cert = Path(step.params["cert"])
    if not cert.exists():
        return {"kind": "local.remove", "path": str(cert)}
    # A rotation signs over the certificate in use: keep it (public) to put it back.
    try:
        return {"kind": "local.restore", "path": str(cert),
                "content": read_file(cert, PEM).decode()}
    except (OSError, UnicodeDecodeError, WlbplanError) as err:
        raise StepFailed(f"cannot keep a copy of {cert} before the signer replaces it: "
                         f"{err}") from None


def _undo_local_restore(ctx: Context, record: UndoRecord) -> None:
    Path(record["path"]).write_text(record["content"])


def _undo_local_remove(ctx: Context, record: UndoRecord) -> None:
    Path(record["path"]).unlink(missing_ok=True)


def _no_record(ctx: Context, step: Step) -> None:
    return None


# ---- backup ------------------------------------------------------------------------------

_BACKUP = 'while [ $# -gt 0 ]; do [ -e "$2" ] && { echo "$2 exists" >&2; exit 1; }; ' \
    'cp -p -- "$1" "$2" || exit 1; shift 2; done'


def _live(ctx: Context) -> tuple[str, str]:
    return str(ctx.target.wlb.paths.cert), str(ctx.target.wlb.paths.key)


def _backup_run(ctx: Context, step: Step) -> None:
    cert, key = _live(ctx)
    made = step.params["backups"]
    checked(ctx.sessions.appliance, script(_BACKUP, cert, made[0], key, made[1]),
            "backing up server.pem and server.key (an existing backup is never overwritten)")


def _backup_undo_record(ctx: Context, step: Step) -> UndoRecord:
    cert, key = _live(ctx)
    # "cleanup": kept while any undo before it failed, so a later `wlbplan rollback` can
    # still restore from these backups.
    return {"kind": "appliance.remove_backups", "cleanup": True,
            "pairs": [[cert, step.params["backups"][0]], [key, step.params["backups"][1]]]}


# A backup is removed only when it is identical to the live file it was taken from:
# never someone else's file that happened to have the name.
_REMOVE_BACKUP = 'cmp -s -- "$1" "$2" && rm -f -- "$2"; exit 0'


def _undo_remove_backups(ctx: Context, record: UndoRecord) -> None:
    for live, backup in record["pairs"]:
        ctx.sessions.appliance.run(script(_REMOVE_BACKUP, live, backup))


# ---- install the chain and the key -------------------------------------------------------

_INSTALL = 'chmod 600 -- "$3" && mv -f -- "$1" "$2" && mv -f -- "$3" "$4"'
# $1 cert $2 key $3 backup cert $4 backup key $5 pending key $6 staged chain. A live
# file is only ever replaced by a rename onto it, never moved away first: a reader (a
# stunnel starting) finds the old file or the new one, whole, at every instant. The new
# key keeps its pending name as a second link (no copy of the secret is made); each
# restore copy is made afresh, never written through an earlier run's leftover.
_RESTORE = (
    'rm -f -- "$6"; '
    'if [ -e "$2" ] && ! cmp -s -- "$2" "$4"; then '
    'rm -f -- "$5" && ln -- "$2" "$5" || exit 1; fi; '
    'rm -f -- "$2.wlbplan-restore" "$1.wlbplan-restore" && '
    'cp -p -- "$4" "$2.wlbplan-restore" && mv -f -- "$2.wlbplan-restore" "$2" && '
    'cp -p -- "$3" "$1.wlbplan-restore" && mv -f -- "$1.wlbplan-restore" "$1"'
)


def _install_run(ctx: Context, step: Step) -> None:
    cert, key = _live(ctx)
    staged = cert + STAGED
    chain = "".join(step.params["chain"]).encode()
    ctx.sessions.appliance.put(chain, staged, mode=0o644)
    if step.params.get("key_source", "pending") == "live":
        checked(ctx.sessions.appliance, Command(("mv", "-f", "--", staged, cert)),
                "installing the new chain")
        return
    checked(ctx.sessions.appliance,
            script(_INSTALL, staged, cert, pending_key(ctx.target), key),
            "installing the new chain and key")


def _install_undo_record(ctx: Context, step: Step) -> UndoRecord:
    cert, key = _live(ctx)
    backups = step.params["backups"]
    return {"kind": "appliance.restore", "cert": cert, "key": key, "backup_cert": backups[0],
            "backup_key": backups[1], "pending": pending_key(ctx.target),
            "staged": cert + STAGED, "served": served_leaf(ctx)}


def _undo_restore(ctx: Context, record: UndoRecord) -> None:
    """Put the files back, then restart so that stunnel serves them again. The restart is
    here, not in the restart step's undo: undo runs last-first, and a restart before the
    files are back would serve the new chain again."""
    r = record
    checked(ctx.sessions.appliance,
            script(_RESTORE, r["cert"], r["key"], r["backup_cert"], r["backup_key"],
                r["pending"], r["staged"]),
            "restoring server.pem and server.key from their backups")
    restart(ctx, r.get("served"))


# ---- clear the request ------------------------------------------------------------------

# $1 = CSR; prints its mode, or nothing when it is gone already.
_MODE = '[ -e "$1" ] && stat -c %a -- "$1"; exit 0'


def _clear_undo_record(ctx: Context, step: Step) -> UndoRecord:
    path = step.params["path"]
    mode = ctx.sessions.appliance.run(script(_MODE, path)).stdout.strip()
    return {"kind": "appliance.put_back", "path": path, "content": step.params["csr"],
            "mode": mode if mode.isdigit() else ""}


def _clear_run(ctx: Context, step: Step) -> None:
    checked(ctx.sessions.appliance, Command(("rm", "-f", "--", step.params["path"])),
            "removing the request's CSR")


def _undo_put_back(ctx: Context, record: UndoRecord) -> None:
    """The CSR is public: the journal may hold it. Put back only what was there."""
    if not record.get("mode"):
        return
    appliance = ctx.sessions.appliance
    if appliance.run(Command(("test", "-e", record["path"]))).ok:
        return
    appliance.put(record["content"].encode(), record["path"], mode=int(record["mode"], 8))


# ---- restart -------------------------------------------------------------------------------

def served_leaf(ctx: Context) -> str | None:
    """The fingerprint of what stunnel serves now, seen from the appliance itself."""
    wlb = ctx.target.wlb
    argv = ["timeout", "10", "openssl", "s_client", "-showcerts",
            "-connect", join_host_port("127.0.0.1", wlb.port)]
    raw = facts.parse(ctx.sessions.appliance.run(
        script(facts.build([facts.fact("served", *argv)]))).stdout)
    shake = raw.get("served")
    if shake is None:
        return None
    try:
        return certs.fingerprint(certs.parse_pem_bundle(shake.output.encode())[0])
    except VerifyError:
        return None


def restart(ctx: Context, expect: str | None) -> None:
    """Run the appliance's restart command; wait until it serves ``expect`` (or anything)."""
    result = ctx.sessions.appliance.run(Command(("sh", "-c", ctx.target.wlb.restart)),
                                        timeout=120)
    if not result.ok:
        said = (result.stderr or result.stdout).strip() or "no output"
        raise StepFailed(f"restarting stunnel (`{ctx.target.wlb.restart}`) failed on "
                         f"{ctx.sessions.appliance.host} (exit {result.exit_code}): {said}")
    deadline = time.monotonic() + RESTART_WAIT
    seen = None
    while time.monotonic() < deadline:
        seen = served_leaf(ctx)
        if seen is not None and (expect is None or seen == expect):
            return
        time.sleep(0.2)
    raise StepFailed(
        f"after the restart, port {ctx.target.wlb.port} serves "
        f"{seen or 'nothing'} instead of the certificate {expect or '(any)'} "
        f"within {RESTART_WAIT:.0f}s"
    )


def _restart_run(ctx: Context, step: Step) -> None:
    restart(ctx, step.params["fingerprint"])


def _restart_undo_record(ctx: Context, step: Step) -> None:
    # Undoing install_chain restores the files and restarts: nothing is left to do here.
    return None


def _undo_restart(ctx: Context, record: UndoRecord) -> None:
    """Journals written before the restart moved into install_chain's undo."""
    restart(ctx, None)


ACTIONS = {
    "appliance.generate_key": Action(_fresh_undo_record, _generate_key_run, _undo_unfresh),
    "appliance.make_csr": Action(_fresh_undo_record, _make_csr_run, _undo_unfresh),
    "appliance.fetch_csr": Action(_no_record, _fetch_csr_run, lambda ctx, record: None),
    "local.sign": Action(_sign_undo_record, _sign_run, _undo_local_remove),
    "appliance.backup": Action(_backup_undo_record, _backup_run, _undo_remove_backups),
    "appliance.install_chain": Action(_install_undo_record, _install_run, _undo_restore),
    "appliance.restart": Action(_restart_undo_record, _restart_run, _undo_restart),
    "appliance.clear_request": Action(_clear_undo_record, _clear_run, _undo_put_back),
}

UNDO = {
    "appliance.unfresh": _undo_unfresh,
    "local.remove": _undo_local_remove,
    "local.restore": _undo_local_restore,
    "appliance.remove_backups": _undo_remove_backups,
    "appliance.restore": _undo_restore,
    "appliance.restart": _undo_restart,
    "appliance.put_back": _undo_put_back,
}


# ---- what an undo may touch ----------------------------------------------------------------
# Only what an apply of this target can have made: its configured certificate and key,
# their backups (*_orig, *_orig.STAMP), its pending key and CSR, the staged chain, and
# the spec's signed certificate. A journal naming anything else was not written by it.

def _backups_of(live: str, path: object) -> bool:
    pattern = re.escape(live + BACKUP) + r"(\.[0-9]{8}T[0-9]{6}Z)?"
    return isinstance(path, str) and re.fullmatch(pattern, path) is not None


def _backup(record: UndoRecord, key: str, live: str) -> str | None:
    if _backups_of(live, record.get(key)):
        return None
    return f"{key} {record.get(key)!r} is not a backup of {live} this target's apply makes"


def _confine_unfresh(ctx: Context, record: UndoRecord) -> str | None:
    return first(one_of(record, "path", (pending_key(ctx.target), pending_csr(ctx.target))),
                 typed(record, "replace", bool))


def _confine_local_remove(ctx: Context, record: UndoRecord) -> str | None:
    signed = ctx.target.certificate.signed
    return one_of(record, "path", (str(signed),) if signed is not None else ())


def _confine_local_restore(ctx: Context, record: UndoRecord) -> str | None:
    return first(_confine_local_remove(ctx, record), typed(record, "content", str))


def _confine_put_back(ctx: Context, record: UndoRecord) -> str | None:
    mode = record.get("mode")
    if not (isinstance(mode, str) and (mode == "" or re.fullmatch(r"[0-7]{3,4}", mode))):
        return f"mode {mode!r} is not a file mode"
    return first(one_of(record, "path", (pending_csr(ctx.target),)),
                 typed(record, "content", str))


def _confine_remove_backups(ctx: Context, record: UndoRecord) -> str | None:
    cert, key = _live(ctx)
    pairs = record.get("pairs")
    if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2
                                              for p in pairs):
        return "pairs is not a list of [live file, backup] pairs"
    for live, backup in pairs:
        problem = first(one_of({"live": live}, "live", (cert, key)),
                        _backup({"backup": backup}, "backup", str(live)))
        if problem is not None:
            return problem
    return None


def _confine_restore(ctx: Context, record: UndoRecord) -> str | None:
    cert, key = _live(ctx)
    served = record.get("served")
    return first(one_of(record, "cert", (cert,)), one_of(record, "key", (key,)),
                 _backup(record, "backup_cert", cert), _backup(record, "backup_key", key),
                 one_of(record, "pending", (pending_key(ctx.target),)),
                 one_of(record, "staged", (cert + STAGED,)),
                 None if served is None else typed(record, "served", str))


CONFINE: dict[str, Confine] = {
    "appliance.unfresh": _confine_unfresh,
    "local.remove": _confine_local_remove,
    "local.restore": _confine_local_restore,
    "appliance.remove_backups": _confine_remove_backups,
    "appliance.restore": _confine_restore,
    "appliance.restart": lambda ctx, record: None,
    "appliance.put_back": _confine_put_back,
}
