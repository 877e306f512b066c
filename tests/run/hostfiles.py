"""Helpers for the files-on-the-hosts suite: wlbplan run under strace, a watcher beside it,
and the rules every file operation on the lab's hosts must follow.

Two independent witnesses judge each apply:

- the kernel's record (``syscalls``): every create, chmod, rename, link and removal made
  by wlbplan and everything it started (the commands on the emulated hosts, the lab's
  xe and stunnel), with the mode and umask of each: complete, whatever the timing;
- a watcher process (``_watch.py``) that polls the key folder's modes and reads the live
  certificate and key over and over, as stunnel or an operator's script would.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import stat
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from applylab import PYTHON, _env
from syscalls import FileOp, read_trace, traced

HERE = Path(__file__).resolve().parent
WATCH = HERE / "_watch.py"
CHILD = HERE / "_child.py"
UMASK = 0o022  # an operator's usual umask; the hosts' commands inherit it (local connector)


# ---- wlbplan under strace ----------------------------------------------------------------

@dataclass
class Traced:
    code: int
    out: str
    err: str
    ops: list[FileOp]

    @property
    def said(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


def run_traced(folder: Path, args: list[str], *, hook: Any = None,
               env: dict[str, str] | None = None, timeout: float = 180) -> Traced:
    """``wlbplan ARGS`` (or ``_child.py HOOK ARGS``) under strace, started with ``UMASK``.

    A restart leaves stunnel's daemon running, traced too: once wlbplan has exited (its
    status written by the wrapping shell), strace is asked to detach (SIGTERM), which
    leaves the daemon running untouched."""
    folder.mkdir(parents=True, exist_ok=True)
    log, status = folder / "strace" / "trace", folder / "status"
    log.parent.mkdir(exist_ok=True)
    status.unlink(missing_ok=True)
    program = [PYTHON, str(CHILD), json.dumps(hook)] if hook is not None else \
        [PYTHON, "-m", "wlbplan"]
    wrapper = ['sh', '-c', 'umask "$1"; s=$2; shift 2; "$@"; echo $? > "$s"', "sh",
               f"{UMASK:03o}", str(status), *program, *args]
    out, err = folder / "stdout", folder / "stderr"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(traced(wrapper, log), stdout=stdout, stderr=stderr,
                                stdin=subprocess.DEVNULL, env={**_env(), **(env or {})},
                                cwd=folder)
    try:
        deadline = time.monotonic() + timeout
        while not status.exists() or not status.read_text().strip():
            assert proc.poll() is None or status.exists(), \
                f"strace ended early ({proc.returncode}): {err.read_text()}"
            assert time.monotonic() < deadline, "wlbplan did not finish"
            time.sleep(0.05)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=1)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # strace detaches from what is left
            proc.wait(timeout=30)
    return Traced(int(status.read_text()), out.read_text(), err.read_text(),
                  read_trace(log, UMASK, folder))


# ---- the watcher -----------------------------------------------------------------------

@dataclass
class Watched:
    """What the watcher saw: ``seen`` {path: {sha256: complete PEM?}}, ``missing`` {path:
    rounds it was absent}, ``loose`` {key-named entry: a mode granting group/others}."""

    rounds: int = 0
    seconds: float = 0.0
    loose: dict[str, str] = field(default_factory=dict)
    seen: dict[str, dict[str, bool]] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)


@contextlib.contextmanager
def watching(key: Path, read: Iterable[Path], folder: Path,
             pause: float = 0.001) -> Iterator[Watched]:
    folder.mkdir(parents=True, exist_ok=True)
    stop, ready, out = folder / "stop", folder / "ready", folder / "watch.json"
    for path in (stop, ready, out):
        path.unlink(missing_ok=True)
    config = {"folder": str(key.parent), "key": key.name, "read": [str(p) for p in read],
              "stop": str(stop), "ready": str(ready), "out": str(out), "pause": pause}
    proc = subprocess.Popen([PYTHON, str(WATCH), json.dumps(config)], env=_env())
    found = Watched()
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert proc.poll() is None, "the watcher ended early"
            assert time.monotonic() < deadline, "the watcher never started"
            time.sleep(0.01)
        yield found
    finally:
        stop.write_text("stop")
        try:
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    report = json.loads(out.read_text())
    found.rounds, found.seconds = report["rounds"], report["seconds"]
    found.loose, found.seen, found.missing = report["loose"], report["seen"], report["missing"]


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- what was there before -------------------------------------------------------------

Stat = tuple[int, int, int, int, int, int]  # mode, uid, gid, size, mtime_ns, inode


def stat_tree(*tops: Path) -> dict[str, Stat]:
    """{path: (mode, uid, gid, size, mtime_ns, inode)} of every entry under ``tops``; a
    folder by its mode and owner only (its size and time change with its entries, which
    are listed themselves)."""
    found: dict[str, Stat] = {}
    for top in tops:
        if not top.exists():
            continue
        for path in [top, *top.rglob("*")]:
            info = path.lstat()
            folder = stat.S_ISDIR(info.st_mode)
            found[str(path)] = (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid,
                                0 if folder else info.st_size,
                                0 if folder else info.st_mtime_ns, info.st_ino)
    return found


def changed_paths(before: dict[str, Stat], after: dict[str, Stat]) -> set[str]:
    """Paths created, removed or changed in any way (a folder whose entries changed too)."""
    return {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}


# ---- the rules -----------------------------------------------------------------------------

def under(path: str, top: Path) -> bool:
    return path == str(top) or path.startswith(str(top) + "/")


def ops_under(ops: Iterable[FileOp], top: Path) -> list[FileOp]:
    return [op for op in ops if any(under(p, top) for p in op.paths)]


def key_named(path: str, key: Path) -> bool:
    return os.path.dirname(path) == str(key.parent) and \
        os.path.basename(path).startswith(key.name)


def loose_keys(ops: Iterable[FileOp], key: Path, before: dict[str, Stat]) -> list[str]:
    """Every moment a key-named file of ``key``'s folder granted group or others anything.

    The modes of the folder's files are followed through every traced call, from their
    modes before the run: a file is created with the mode the kernel gave it (requested
    mode less the umask), chmod sets it, rename and link carry it to the new name."""
    modes: dict[str, int | None] = {p: s[0] for p, s in before.items()
                                    if os.path.dirname(p) == str(key.parent)}
    problems = []
    for op in ops:
        if op.kind == "chmod" or (op.kind == "create" and op.path not in modes):
            modes[op.path] = op.mode
        elif op.kind == "rename":
            modes[op.dest] = modes.pop(op.path, None)
        elif op.kind == "link":
            modes[op.dest] = modes.get(op.path)
        elif op.kind in ("unlink", "rmdir"):
            modes.pop(op.path, None)
        for path in op.paths:
            if path in modes and key_named(path, key):
                mode = modes[path]
                if mode is None or mode & 0o077:
                    shown = "unknown" if mode is None else f"{mode:04o}"
                    problems.append(f"{path} had mode {shown} after: {op}")
    return problems


def replaced_in_place(ops: Iterable[FileOp], live: Iterable[Path]) -> list[str]:
    """Every call that changed a live file other than by a rename onto it: a write,
    truncate or chmod of it, or its name removed or renamed away (a reader would find
    it missing)."""
    names = {str(p) for p in live}
    problems = []
    for op in ops:
        # A second name for a live file (link) leaves it as it is; any other call that
        # names it as its first path changes it, or renames it away.
        hit = op.dest in names if op.kind == "link" else op.path in names
        if hit:
            problems.append(str(op))
    return problems


def not_allowed(paths: Iterable[str], root: Path, allowed: Iterable[str]) -> list[str]:
    """The ``paths`` under ``root`` that no ``allowed`` pattern (a regular expression for
    the path relative to ``root``) names."""
    patterns = [re.compile(p) for p in allowed]
    return sorted({os.path.relpath(path, root) for path in paths if under(path, root)
                   and not any(p.fullmatch(os.path.relpath(path, root)) for p in patterns)})


def written(ops: Iterable[FileOp]) -> dict[str, FileOp]:
    """Every path a call created, changed or removed, with the first such call."""
    found: dict[str, FileOp] = {}
    for op in ops:
        for path in op.paths:
            found.setdefault(path, op)
    return found
