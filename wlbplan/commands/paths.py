"""Local files a command will write, checked before any host is touched: an inspection of
a whole fleet must not end in a crash because the report's folder is missing."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from wlbplan.errors import WlbplanError


def check_destination(path: Path, what: str) -> None:
    """Prove that ``path`` can be written, the way the write itself will do it: open an
    existing file for appending (nothing truncated), or create and remove a new one."""
    if path.is_dir():
        raise WlbplanError(f"cannot write the {what} to {path}: it is a folder; name a file")
    parent = path.parent
    if not parent.is_dir():
        raise WlbplanError(f"cannot write the {what} to {path}: the folder {parent} does not "
                           "exist; create it first or name another file")
    try:
        if path.exists():
            with open(path, "ab"):
                pass
        else:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    except OSError as err:
        raise WlbplanError(f"cannot write the {what} to {path}: "
                           f"{err.strerror or err}") from None
