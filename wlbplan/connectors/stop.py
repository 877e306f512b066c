"""Ending every command in flight at once, for Ctrl-C or SIGTERM.

Local children run in their own sessions (a ^C aimed at wlbplan must not reach them
half-way through a step), and SSH channels do not see the signal at all; so on a stop
the runners' own work has to be ended: each runner registers what it is running (a
local process group, an SSH connection) for as long as it runs, and ``stop_all()``
kills every registered process group, closes every registered connection and makes
every runner refuse new commands. Worker threads then return at once, and wlbplan can
exit instead of waiting for a command that never ends.

Only read-only work is stopped this way; an apply's steps and their undo are never
cut short (the CLI turns the signal into a request to stop between steps instead).
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Iterator

from wlbplan.errors import Interrupted

_stopping = threading.Event()
# Reentrant: stop_all() runs in a signal handler, which may interrupt this very thread
# while it is registering something.
_lock = threading.RLock()
_inflight: dict[int, Callable[[], None]] = {}
_ids = itertools.count()


def stop_all() -> None:
    """End everything registered now, and refuse whatever would start later."""
    _stopping.set()
    with _lock:
        hooks = list(_inflight.values())
    for hook in hooks:
        with contextlib.suppress(Exception):  # best effort: the rest must still be ended
            hook()


def stopping() -> bool:
    return _stopping.is_set()


def check(host: str) -> None:
    """Refuse to start anything on ``host`` once a stop was asked for."""
    if _stopping.is_set():
        raise Interrupted(f"stopped: nothing more is run on {host}")


@contextlib.contextmanager
def stoppable(end: Callable[[], None]) -> Iterator[None]:
    """While the block runs, ``stop_all()`` calls ``end`` (which must not block)."""
    key = next(_ids)
    with _lock:
        _inflight[key] = end
    try:
        if _stopping.is_set():  # stop_all() ran just before this registered
            end()
        yield
    finally:
        with _lock:
            _inflight.pop(key, None)


def reset() -> None:
    """Accept commands again (a process that goes on after a stop: tests)."""
    _stopping.clear()
