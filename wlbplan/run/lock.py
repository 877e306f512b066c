"""The apply lock on the coordinator: one file published atomically, whole, with its id,
owner, pid and time, so that two applies never run on one pool at once."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict

from wlbplan.connectors.base import Runner
from wlbplan.errors import Interrupted, LockError
from wlbplan.model.command import Command, script
from wlbplan.model.lock import LOCK_FILE, UNREADABLE, LockInfo, lock_path, parse_lock
from wlbplan.model.spec import Target
from wlbplan.run.pids import alive

__all__ = ["LOCK_FILE", "UNREADABLE", "acquire", "force_unlock", "held_message", "lock_path",
           "new_lock", "owner_alive", "read_lock", "release"]
_POLL = 0.5

# $1 = folder, $2 = lock file; the lock's JSON arrives on stdin. The record is written
# to a private temporary file first, then published by `ln`: link(2) is the atomic
# test-and-set (it fails when the name exists), and the lock is never seen before its
# record is whole (a lock read half-written would name no owner, and offer force-unlock
# of a live lock). The folder must be this user's (or root's) and writable by no one
# else, as the journals' are (StrictModes): anyone who can write there can fake or
# remove a lock. Exit 3 says so.
_ACQUIRE = (
    'umask 077; mkdir -p -m 0700 -- "$1" || exit 1; '
    'if [ -L "$1" ] || [ ! -d "$1" ]; then echo "$1 is not a plain folder" >&2; exit 3; fi; '
    'if [ ! -O "$1" ] && [ "$(stat -c %u -- "$1")" != 0 ]; then '
    '  echo "$1 is owned by uid $(stat -c %u -- "$1"), not by $(id -un) or root" >&2; exit 3; '
    'fi; '
    'case $(stat -c %a -- "$1") in *[2367]?|*[2367]) '
    '  echo "$1 is writable by group or others (mode $(stat -c %a -- "$1"))" >&2; exit 3;; '
    'esac; '
    't=$(mktemp -- "$2.XXXXXX") || exit 1; '
    'cat > "$t" && ln -T -- "$t" "$2"; made=$?; rm -f -- "$t"; exit $made'
)
_UNSAFE = 3
# $1 = lock file, $2 = id: remove it only when it is still ours.
_RELEASE = 'grep -q -F -- "\\"$2\\"" "$1" 2>/dev/null && rm -f -- "$1"'


def new_lock(target: Target) -> LockInfo:
    return LockInfo(
        id=str(uuid.uuid4()),
        owner=f"{getpass.getuser()}@{socket.gethostname()}",
        pid=os.getpid(),
        created=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        target=target.name,
    )


def read_lock(runner: Runner, target: Target) -> LockInfo | None:
    """The lock on the pool, read alone (apply, rollback, force-unlock; an inspection
    reads it in its one script instead)."""
    result = runner.run(Command(("cat", "--", lock_path(target))))
    if not result.ok:
        return None
    return parse_lock(result.stdout, target.name)


def acquire(runner: Runner, target: Target, timeout: float = 0.0,
            info: LockInfo | None = None, *, cancel: threading.Event | None = None,
            waiting: Callable[[LockInfo | None], None] | None = None) -> LockInfo:
    """Take the pool's lock, waiting up to ``timeout`` seconds for another apply.

    ``cancel`` set (the operator's stop) ends the wait at once with Interrupted;
    ``waiting`` is told once, with the holder, when the lock is found taken.
    """
    if not (math.isfinite(timeout) and timeout >= 0):
        raise LockError(f"the lock timeout must be a finite number of seconds, not {timeout}")
    stopped = cancel or threading.Event()
    mine = info or new_lock(target)
    folder = str(target.pool.state_dir)
    command = script(_ACQUIRE, folder, lock_path(target),
                     stdin=json.dumps(asdict(mine)).encode())
    deadline = time.monotonic() + timeout
    told = False
    while True:
        if stopped.is_set():
            raise Interrupted(f"{target.name}: stopped while waiting for the pool's lock; "
                              "nothing was changed")
        made = runner.run(command)
        if made.ok:
            return mine
        if made.exit_code == _UNSAFE:
            raise LockError(
                f"{target.name}: refusing to take the apply lock on {runner.host}: "
                f"{made.stderr.strip()}. Fix the folder's owner and mode (chown, "
                "chmod go-w) or set pool.state_dir to a private folder")
        holder = read_lock(runner, target)
        if holder is None and time.monotonic() < deadline:
            stopped.wait(_POLL / 10)  # released just now, or not creatable: try again soon
            continue
        if time.monotonic() >= deadline:
            raise LockError(_held_message(target, holder, runner.host))
        if waiting is not None and not told:
            waiting(holder)
            told = True
        stopped.wait(min(_POLL, max(0.0, deadline - time.monotonic())))


def _held_message(target: Target, holder: LockInfo | None, host: str) -> str:
    if holder is None:
        return f"{target.name}: could not create the lock {lock_path(target)} on {host}"
    if holder.unreadable:
        return held_message(target, holder, host, "nothing was changed")
    return (
        f"{target.name}: another apply is running on this pool: {holder.describe()}. "
        f"Wait for it (--lock-timeout), or if it is dead and you are sure, run "
        f"`{target.command('force-unlock', holder.id)}`"
    )


def held_message(target: Target, holder: LockInfo, host: str, outcome: str) -> str:
    """Why a pool locked by ``holder`` (not this run's lock) is refused, and what to do."""
    if holder.unreadable:
        return (
            f"{target.name}: the pool's lock file {lock_path(target)} on {host} is not a lock "
            f"record wlbplan writes (cut short, damaged or written by something else), so "
            f"wlbplan cannot tell which apply holds it; {outcome}. If no apply is running "
            f"on this pool, remove it with `{target.command('force-unlock', UNREADABLE)}`")
    return (f"{target.name}: the pool is locked by another apply ({holder.describe()}); "
            f"{outcome}")


def release(runner: Runner, target: Target, lock_id: str) -> bool:
    """Remove the lock if it is still ``lock_id``; True when it was removed."""
    return runner.run(script(_RELEASE, lock_path(target), lock_id)).ok


def force_unlock(runner: Runner, target: Target, lock_id: str) -> LockInfo:
    holder = read_lock(runner, target)
    if holder is None:
        raise LockError(f"{target.name}: the pool is not locked ({lock_path(target)})")
    if holder.id != lock_id:
        # The id is the proof that the caller looked at this very lock: never hand it out.
        raise LockError(
            f"{target.name}: {lock_id!r} is not the id of the lock on this pool (held by "
            f"{holder.owner}, pid {holder.pid}, since {holder.created}); force-unlock needs "
            "the exact id, as `wlbplan audit` or the refused apply showed it"
        )
    removed = (runner.run(Command(("rm", "-f", "--", lock_path(target)))).ok
               if holder.unreadable else release(runner, target, lock_id))
    if not removed:
        raise LockError(f"{target.name}: could not remove {lock_path(target)}")
    return holder


def owner_alive(info: LockInfo) -> bool | None:
    """Does the process that took this lock still run? None when it ran on another machine
    (a pid means nothing elsewhere)."""
    if info.unreadable or info.owner.rpartition("@")[2] != socket.gethostname():
        return None
    return alive(info.pid)
