"""The lab folder: what in it the lab made, and removing exactly that.

The folder and ``lab.json`` are untrusted (a repository may carry a ``.wlbplan-lab``): the
lab never removes a path it reads from a file, only the entries it names itself, and it
never follows a symbolic link out of the folder. A folder is a lab's when it carries the
lab's marker (or, made before markers, a ``lab.json``); ``lab up`` refuses any other
non-empty folder.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from pathlib import Path

from wlbplan.errors import LabError
from wlbplan.lab.layout import LOGINS_FILE, SPEC_FILE, STATE_FILE

MARKER = ".wlbplan-lab-folder"
MARKER_TEXT = ("This folder is a wlbplan lab; `wlbplan lab down --purge` removes what the "
               "lab made.\n")
SSH_DIR = "ssh"
ACME_DIR = "acme"
XENAPI_DIR = "xenapi"
# Target folders are pool1 … pool500 (``lab up --targets``), nothing else.
TARGET_NAME = re.compile(r"pool[1-9][0-9]{0,2}", re.ASCII)


def is_target_name(name: str) -> bool:
    return TARGET_NAME.fullmatch(name) is not None


def owned(name: str) -> bool:
    """Is ``name`` (an entry of a lab folder) one the lab makes?"""
    return (name in (STATE_FILE, SPEC_FILE, LOGINS_FILE, SSH_DIR, ACME_DIR, XENAPI_DIR, MARKER)
            or is_target_name(name))


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


def _marked(folder: Path) -> bool:
    if not _regular(folder / MARKER):
        return False
    try:
        return (folder / MARKER).read_text(errors="replace")[:1024] == MARKER_TEXT
    except OSError:
        return False


def is_lab(folder: Path) -> bool:
    return _marked(folder) or _regular(folder / STATE_FILE)


def _entries(folder: Path) -> list[str]:
    try:
        return sorted(os.listdir(folder))
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        raise LabError(f"{folder} is not a folder") from None


def claim(folder: Path) -> None:
    """Make ``folder`` a lab folder: a new or empty folder, or one a lab already marked."""
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise LabError(f"{folder} is not a folder; choose a new or empty one for the lab")
    present = _entries(folder)
    if present and not is_lab(folder):
        shown = ", ".join(present[:5]) + (", …" if len(present) > 5 else "")
        raise LabError(
            f"{folder} is not empty ({shown}) and is not a wlbplan lab; the lab only uses a "
            "new or empty folder (or one it made): choose another --dir"
        )
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / MARKER
    if not _marked(folder):
        _remove(marker)
        marker.write_text(MARKER_TEXT)


def _remove(path: Path) -> None:
    """Remove one entry; a link is removed itself, never what it points to."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        shutil.rmtree(path)  # rmtree never follows links inside the tree
    else:
        path.unlink()


def clear(folder: Path) -> None:
    """Remove what a previous lab made here (never the marker, never anything else)."""
    for name in _entries(folder):
        if owned(name) and name != MARKER:
            _remove(folder / name)


def purge(folder: Path) -> list[str]:
    """Remove what the lab made, and the folder when nothing else is left in it; returns
    the entries left in place (the lab did not make them)."""
    if not is_lab(folder):
        raise LabError(f"{folder} is not a wlbplan lab folder; not removing anything")
    clear(folder)
    left = [name for name in _entries(folder) if name != MARKER]
    if not left:
        _remove(folder / MARKER)
        folder.rmdir()
    return left
