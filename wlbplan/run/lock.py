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
from typing import Protocol, runtime_checkable

from wlbplan.connectors.base import Runner
from wlbplan.connectors.xenapi import XenapiPool
from wlbplan.errors import Interrupted, LockError
from wlbplan.model.command import Command, script
from wlbplan.model.lock import LOCK_FILE, UNREADABLE, LockInfo, lock_path, parse_lock
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
    """The lock as a file on the coordinator, published whole by ``ln`` (_ACQUIRE)."""

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
                         stdin=json.dumps(asdict(info)).encode())
        made = self.runner.run(command)
        if made.exit_code == _UNSAFE:
            raise LockError(
                f"{self.target.name}: refusing to take the apply lock on {self.runner.host}: "
                f"{made.stderr.strip()}. Fix the folder's owner and mode (chown, "
                "chmod go-w) or set pool.state_dir to a private folder")
        return made.ok

    def read(self) -> LockInfo | None:
        result = self.runner.run(Command(("cat", "--", lock_path(self.target))))
        return parse_lock(result.stdout, self.target.name) if result.ok else None

    def remove(self, lock_id: str) -> bool:
        if lock_id == UNREADABLE:
            return self.runner.run(Command(("rm", "-f", "--", lock_path(self.target)))).ok
        return self.runner.run(script(_RELEASE, lock_path(self.target), lock_id)).ok


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
