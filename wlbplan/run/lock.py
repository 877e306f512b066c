"""The apply lock on the coordinator: one file published atomically, whole, with its id,
owner, pid and time, and the same record in the pool's other_config, so that two applies
never run on one pool at once, whichever connector each reaches it by."""

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
from typing import Protocol, runtime_checkable

from wlbplan.connectors.base import Runner
from wlbplan.connectors.xenapi import XenapiPool
from wlbplan.errors import Interrupted, LockError
from wlbplan.model.command import script
from wlbplan.model.lock import (
    LOCK_FILE,
    LOCK_KEY,
    UNREADABLE,
    LockInfo,
    lock_path,
    parse_lock,
)
from wlbplan.model.spec import Target
from wlbplan.run.lock_xenapi import XenapiLockStore
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
#
# Then, in the same command, the same record goes into the pool's other_config ($3 = xe,
# $4 = the key), where a run over XenAPI takes its lock (run/lock_xenapi.py): `xe
# pool-param-add` is xapi's add_to_other_config, one atomic test-and-set in xapi's
# database (MAP_DUPLICATE_KEY when the key is there). How runs are kept apart:
# - two runs over SSH: by link(2) on the file; the loser never touches the key;
# - a run over SSH and one over XenAPI: by the key, which both add and exactly one gets;
#   the SSH run that loses removes the file it made (exit 4: held elsewhere) and reads
#   the winner's record from the key;
# - a run that holds the key never loses it to another run: each removes only the key
#   that holds its own id (force-unlock aside, as with the file).
# A failure to add the key for another reason (xe broken) removes the file too (exit 5).
# A dead run over SSH leaves both, with one id; force-unlock over XenAPI removes the key
# alone (it has no shell), and the next run over SSH, finding the file, names that id for
# a force-unlock over SSH.
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
    'cat > "$t" && ln -T -- "$t" "$2"; made=$?; '
    'if [ $made -ne 0 ]; then rm -f -- "$t"; exit $made; fi; '
    'u=$("$3" pool-list --minimal) && '
    '"$3" pool-param-add uuid="$u" param-name=other-config "$4=$(cat -- "$t")"; took=$?; '
    'rm -f -- "$t"; [ $took -eq 0 ] && exit 0; rm -f -- "$2"; '
    '"$3" pool-param-get uuid="$u" param-name=other-config param-key="$4" >/dev/null 2>&1 '
    '&& exit 4; exit 5'
)
_UNSAFE, _HELD, _NO_KEY = 3, 4, 5
# $1 = xe, $2 = key, $3 = lock file: the file's record, else the key's (exit 1: neither).
# The file first: a run over SSH holds both with one record, so a file that differs was
# damaged or written by hand, and such a lock must be refused as unreadable, never
# passed over for the key.
_READ = ('cat -- "$3" 2>/dev/null || { u=$("$1" pool-list --minimal) && '
         '"$1" pool-param-get uuid="$u" param-name=other-config param-key="$2"; }')
# $1 = lock file, $2 = id, $3 = xe, $4 = key: remove each only when it still holds our id;
# exit 0 when one was removed.
_RELEASE = (
    'r=1; u=$("$3" pool-list --minimal) && '
    'v=$("$3" pool-param-get uuid="$u" param-name=other-config param-key="$4" 2>/dev/null) '
    '&& case $v in *"\\"$2\\""*) '
    '"$3" pool-param-remove uuid="$u" param-name=other-config param-key="$4" && r=0;; esac; '
    'grep -q -F -- "\\"$2\\"" "$1" 2>/dev/null && rm -f -- "$1" && r=0; exit $r'
)
# $1 = xe, $2 = key, $3 = lock file: force-unlock of a record no wlbplan wrote: the file
# when there is one (read() showed it), else the key.
_REMOVE_UNREADABLE = (
    'if [ -e "$3" ]; then rm -f -- "$3"; else u=$("$1" pool-list --minimal) && '
    '"$1" pool-param-remove uuid="$u" param-name=other-config param-key="$2"; fi'
)


def new_lock(target: Target) -> LockInfo:
    return LockInfo(
        id=str(uuid.uuid4()),
        owner=f"{getpass.getuser()}@{socket.gethostname()}",
        pid=os.getpid(),
        created=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        target=target.name,
    )


@runtime_checkable
class LockStore(Protocol):
    """Where a pool's lock lives: a file on the coordinator (SSH), a key of the pool's
    other_config (XenAPI, ``run.lock_xenapi``). ``create`` is the one atomic test-and-set."""

    @property
    def host(self) -> str: ...

    @property
    def where(self) -> str:
        """The lock's place, for messages."""
        ...

    def create(self, info: LockInfo) -> bool:
        """Take the lock: True when made, False when one is there (LockError when the
        place is unsafe)."""
        ...

    def read(self) -> LockInfo | None: ...

    def remove(self, lock_id: str) -> bool:
        """Remove the lock if it is still ``lock_id`` (an unreadable one for UNREADABLE)."""
        ...


class FileLockStore:
    """The lock as a file on the coordinator, published whole by ``ln``, and as the key
    of the pool's other_config a run over XenAPI takes (_ACQUIRE)."""

    def __init__(self, runner: Runner, target: Target) -> None:
        self.runner = runner
        self.target = target

    @property
    def host(self) -> str:
        return self.runner.host

    @property
    def where(self) -> str:
        return lock_path(self.target)

    def create(self, info: LockInfo) -> bool:
        command = script(_ACQUIRE, str(self.target.pool.state_dir), lock_path(self.target),
                         self.target.pool.xe, LOCK_KEY,
                         stdin=json.dumps(asdict(info)).encode())
        made = self.runner.run(command)
        if made.exit_code == _UNSAFE:
            raise LockError(
                f"{self.target.name}: refusing to take the apply lock on {self.runner.host}: "
                f"{made.stderr.strip()}. Fix the folder's owner and mode (chown, "
                "chmod go-w) or set pool.state_dir to a private folder")
        if made.exit_code == _NO_KEY:
            raise LockError(
                f"{self.target.name}: could not add the apply lock to the pool's "
                f"other_config with {self.target.pool.xe} on {self.runner.host}: "
                f"{made.stderr.strip()[:400]}; nothing was changed")
        return made.ok

    def read(self) -> LockInfo | None:
        result = self.runner.run(script(_READ, self.target.pool.xe, LOCK_KEY,
                                        lock_path(self.target)))
        return parse_lock(result.stdout, self.target.name) if result.ok else None

    def remove(self, lock_id: str) -> bool:
        if lock_id == UNREADABLE:
            return self.runner.run(script(_REMOVE_UNREADABLE, self.target.pool.xe, LOCK_KEY,
                                          lock_path(self.target))).ok
        return self.runner.run(script(_RELEASE, lock_path(self.target), lock_id,
                                      self.target.pool.xe, LOCK_KEY)).ok


Place = Runner | XenapiPool | LockStore
"""Where a lock is: a Runner (SSH, local: a file), a XenapiPool (other_config), a store."""


def store_of(where: Place, target: Target) -> LockStore:
    """The lock store of a pool reached by ``where``."""
    if isinstance(where, LockStore):
        return where
    if isinstance(where, XenapiPool):
        return XenapiLockStore(where.session, target)
    return FileLockStore(where, target)


def read_lock(where: Place, target: Target) -> LockInfo | None:
    """The lock on the pool, read alone (apply, rollback, force-unlock; an inspection
    reads it with the facts instead)."""
    return store_of(where, target).read()


def acquire(where: Place, target: Target, timeout: float = 0.0,
            info: LockInfo | None = None, *, cancel: threading.Event | None = None,
            waiting: Callable[[LockInfo | None], None] | None = None) -> LockInfo:
    """Take the pool's lock, waiting up to ``timeout`` seconds for another apply.

    ``cancel`` set (the operator's stop) ends the wait at once with Interrupted;
    ``waiting`` is told once, with the holder, when the lock is found taken.
    """
    if not (math.isfinite(timeout) and timeout >= 0):
        raise LockError(f"the lock timeout must be a finite number of seconds, not {timeout}")
    store = store_of(where, target)
    stopped = cancel or threading.Event()
    mine = info or new_lock(target)
    deadline = time.monotonic() + timeout
    told = False
    while True:
        if stopped.is_set():
            raise Interrupted(f"{target.name}: stopped while waiting for the pool's lock; "
                              "nothing was changed")
        if store.create(mine):
            return mine
        holder = store.read()
        if holder is None and time.monotonic() < deadline:
            stopped.wait(_POLL / 10)  # released just now, or not creatable: try again soon
            continue
        if time.monotonic() >= deadline:
            raise LockError(_held_message(target, holder, store))
        if waiting is not None and not told:
            waiting(holder)
            told = True
        stopped.wait(min(_POLL, max(0.0, deadline - time.monotonic())))


def _held_message(target: Target, holder: LockInfo | None, store: LockStore) -> str:
    if holder is None:
        return f"{target.name}: could not create the lock {store.where} on {store.host}"
    if holder.unreadable:
        return held_message(target, holder, store, "nothing was changed")
    return (
        f"{target.name}: another apply is running on this pool: {holder.describe()}. "
        f"Wait for it (--lock-timeout), or if it is dead and you are sure, run "
        f"`{target.command('force-unlock', holder.id)}`"
    )


def held_message(target: Target, holder: LockInfo, where: Place,
                 outcome: str) -> str:
    """Why a pool locked by ``holder`` (not this run's lock) is refused, and what to do."""
    store = store_of(where, target)
    if holder.unreadable:
        return (
            f"{target.name}: the pool's lock {store.where} on {store.host} is not a lock "
            f"record wlbplan writes (cut short, damaged or written by something else), so "
            f"wlbplan cannot tell which apply holds it; {outcome}. If no apply is running "
            f"on this pool, remove it with `{target.command('force-unlock', UNREADABLE)}`")
    return (f"{target.name}: the pool is locked by another apply ({holder.describe()}); "
            f"{outcome}")


def release(where: Place, target: Target, lock_id: str) -> bool:
    """Remove the lock if it is still ``lock_id``; True when it was removed."""
    return store_of(where, target).remove(lock_id)


def force_unlock(where: Place, target: Target, lock_id: str) -> LockInfo:
    store = store_of(where, target)
    holder = store.read()
    if holder is None:
        raise LockError(f"{target.name}: the pool is not locked ({store.where})")
    if holder.id != lock_id:
        # The id is the proof that the caller looked at this very lock: never hand it out.
        raise LockError(
            f"{target.name}: {lock_id!r} is not the id of the lock on this pool (held by "
            f"{holder.owner}, pid {holder.pid}, since {holder.created}); force-unlock needs "
            "the exact id, as `wlbplan audit` or the refused apply showed it"
        )
    if not store.remove(lock_id):
        raise LockError(f"{target.name}: could not remove {store.where}")
    return holder


def owner_alive(info: LockInfo) -> bool | None:
    """Does the process that took this lock still run? None when it ran on another machine
    (a pid means nothing elsewhere)."""
    if info.unreadable or info.owner.rpartition("@")[2] != socket.gethostname():
        return None
    return alive(info.pid)
