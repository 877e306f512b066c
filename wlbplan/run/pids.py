"""Is a process still running? (A zombie is not: it only waits to be reaped.)"""

from __future__ import annotations

import os
from pathlib import Path

# Linux's largest pid (PID_MAX_LIMIT). 0 and negative numbers name process groups (-1:
# every process) to kill(2): none is one process, so none can be alive.
_PID_MAX = 2**22


def alive(pid: int) -> bool:
    """Whatever ``pid`` is (it comes from a journal or a lock file): only a real process
    id of a running process is alive."""
    if type(pid) is not int or not 0 < pid <= _PID_MAX:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, but there
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"
