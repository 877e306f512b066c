"""Every file operation a process tree made, read from the kernel's side (strace).

``traced(argv, log)`` runs ``argv`` under ``strace -ff``: one log per process, each line
a system call with its arguments and result. ``read_trace(log)`` turns them into
``FileOp`` values, in the order they happened, each with the umask of the process that
made it (umask is per process, inherited at fork, so it is followed from the root down).

Why this and not a poller: nothing can create, chmod, rename, link or remove a file
without one of the calls traced here, and each is recorded with its mode and flags
whatever its timing. A window of a microsecond is as visible as one of a second.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CALLS = ("clone,clone3,fork,vfork,execve,umask,chdir,fchdir,"
         "open,openat,openat2,creat,mkdir,mkdirat,chmod,fchmod,fchmodat,"
         "rename,renameat,renameat2,unlink,unlinkat,rmdir,link,linkat,symlink,symlinkat,"
         "truncate,ftruncate,setxattr,lsetxattr,fsetxattr")
_WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")
_LINE = re.compile(r"^(?P<time>\d+\.\d+) (?P<call>\w+)\((?P<args>.*)\) += (?P<ret>.*)$")


def available() -> bool:
    """strace is installed and the kernel lets it trace (a container may forbid ptrace)."""
    if shutil.which("strace") is None:
        return False
    probe = subprocess.run(["strace", "-qq", "-e", "trace=none", "--", "true"],
                           capture_output=True, timeout=30, check=False)
    return probe.returncode == 0


def traced(argv: list[str], log: Path) -> list[str]:
    """``argv`` under strace: one log per process at ``log.PID``, microsecond times, every
    file descriptor shown with its path (-y). Only the calls above stop the tracee
    (--seccomp-bpf), so the run is barely slower; SIGTERM makes strace detach (-I1)."""
    return ["strace", "-ff", "-ttt", "-y", "-qq", "-I1", "--seccomp-bpf", "-s", "4096",
            "-e", "signal=none", "-e", f"trace={CALLS}", "-o", str(log), "--", *argv]


@dataclass(frozen=True)
class FileOp:
    """One change to the file system. ``kind``: create (a file opened with O_CREAT),
    write (opened for writing without O_CREAT), mkdir, chmod, rename (``path`` the old
    name, ``dest`` the new), link, symlink, unlink, rmdir, truncate. ``mode``: for
    create and mkdir the mode the kernel gave (the requested mode less the umask), for
    chmod the mode set. ``exclusive``: O_EXCL (the call fails if the path exists)."""

    time: float
    pid: int
    program: str
    kind: str
    path: str
    dest: str = ""
    mode: int | None = None
    umask: int = 0
    exclusive: bool = False
    flags: str = ""

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.path, self.dest) if self.dest else (self.path,)

    def __str__(self) -> str:
        mode = "" if self.mode is None else f" mode {self.mode:04o}"
        dest = f" -> {self.dest}" if self.dest else ""
        return (f"{self.program}[{self.pid}] {self.kind} {self.path}{dest}{mode} "
                f"(umask {self.umask:03o}{', ' + self.flags if self.flags else ''})")


# ---- parsing strace's lines ------------------------------------------------------------------

def _split(args: str) -> list[str]:
    """strace's argument list, split at the commas between arguments."""
    parts, depth, current, quoted, escaped = [], 0, [], False, False
    for ch in args:
        if quoted:
            current.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
            continue
        if ch == '"':
            quoted = True
        elif ch in "{[(<":
            depth += 1
        elif ch in "}])>":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    if current:
        parts.append("".join(current).strip())
    return parts


def _bytes(arg: str) -> bytes:
    """A quoted strace string (C escapes) as the bytes it stands for."""
    data: bytes = ast.literal_eval("b" + arg[: arg.rindex('"') + 1])
    return data


def _string(arg: str) -> str:
    return _bytes(arg).decode("utf-8", "surrogateescape")


def _decorated(arg: str) -> str:
    """``AT_FDCWD</cwd>`` or ``3</some/file>`` (-y): the path in the angle brackets."""
    return arg[arg.index("<") + 1: arg.rindex(">")] if "<" in arg else ""


def _at(dirfd: str, path: str, cwd: str = "/") -> str:
    """``path`` made absolute: against ``dirfd``'s folder, else the process's ``cwd``."""
    return os.path.normpath(path if path.startswith("/") else
                            os.path.join(_decorated(dirfd) or cwd, path))


def _mode(arg: str) -> int:
    return int(arg.split()[0], 8)


def _open(call: str, args: list[str], ret: str,
          cwd: str) -> tuple[str, str, int | None]:
    """(path, flags, requested mode) of an open/openat/openat2/creat call."""
    if call == "creat":
        return _at("", _string(args[0]), cwd), "O_WRONLY|O_CREAT|O_TRUNC", _mode(args[1])
    if call == "open":
        path, rest = _at("", _string(args[0]), cwd), args[1:]
    elif call == "openat2":
        path = _at(args[0], _string(args[1]), cwd)
        how = args[2]
        flags = re.search(r"flags=([A-Z_|0-9]+)", how)
        mode = re.search(r"mode=(0[0-7]*)", how)
        return (_decorated(ret) or path, flags.group(1) if flags else "",
                int(mode.group(1), 8) if mode else None)
    else:
        path, rest = _at(args[0], _string(args[1]), cwd), args[2:]
    flags = rest[0]
    mode = _mode(rest[1]) if len(rest) > 1 else None
    return _decorated(ret) or path, flags, mode


def _acl_mode(value: str) -> int | None:
    """The mode a ``system.posix_acl_access`` value sets (``cp -p`` sets modes this way):
    a version word, then (tag, permissions, id) entries; the mask, when present, is
    what ``stat`` shows as the group's bits."""
    raw = _bytes(value) if value.startswith('"') else b""
    if len(raw) < 4:
        return None
    shift = {0x01: 6, 0x04: 3, 0x10: 3, 0x20: 0}  # USER_OBJ, GROUP_OBJ, MASK, OTHER
    bits: dict[int, int] = {}
    for at in range(4, len(raw) - 7, 8):
        tag, perm = int.from_bytes(raw[at:at + 2], "little"), raw[at + 2]
        if tag in shift:
            bits[tag] = perm & 7
    if 0x10 in bits:
        bits[0x04] = bits.pop(0x10)
    return sum(perm << shift[tag] for tag, perm in bits.items())


def _child_pid(call: str, ret: str) -> int | None:
    if call in ("clone", "clone3", "fork", "vfork") and ret.split()[0].isdigit():
        return int(ret.split()[0])
    return None


@dataclass
class _Line:
    time: float
    call: str
    args: list[str]
    ret: str

    @property
    def ok(self) -> bool:
        return not self.ret.startswith("-1") and not self.ret.startswith("?")


def _lines(path: Path) -> Iterator[_Line]:
    for text in path.read_text(errors="surrogateescape").splitlines():
        found = _LINE.match(text)
        if found:
            yield _Line(float(found["time"]), found["call"], _split(found["args"]),
                        found["ret"])


def _ops(pid: int, line: _Line, umask: int, program: str, cwd: str) -> list[FileOp]:
    """The file operations one successful call made."""
    call, a = line.call, line.args
    base = {"time": line.time, "pid": pid, "program": program, "umask": umask}
    if call in ("open", "openat", "openat2", "creat"):
        path, flags, mode = _open(call, a, line.ret, cwd)
        parts = set(flags.split("|"))
        if not parts & set(_WRITE_FLAGS):
            return []
        if "O_CREAT" in parts:
            given = None if mode is None else mode & ~umask & 0o7777
            return [FileOp(**base, kind="create", path=path, mode=given, flags=flags,
                           exclusive="O_EXCL" in parts)]
        return [FileOp(**base, kind="write", path=path, flags=flags)]
    if call in ("mkdir", "mkdirat"):
        path = _at("", _string(a[0]), cwd) if call == "mkdir" else _at(a[0], _string(a[1]), cwd)
        mode = _mode(a[-1]) & ~umask & 0o7777
        return [FileOp(**base, kind="mkdir", path=path, mode=mode)]
    if call in ("chmod", "fchmodat"):
        path = _at("", _string(a[0]), cwd) if call == "chmod" else _at(a[0], _string(a[1]), cwd)
        return [FileOp(**base, kind="chmod", path=path,
                       mode=_mode(a[1] if call == "chmod" else a[2]))]
    if call == "fchmod":
        return [FileOp(**base, kind="chmod", path=_decorated(a[0]), mode=_mode(a[1]))]
    if call in ("setxattr", "lsetxattr", "fsetxattr") and \
            _string(a[1]) == "system.posix_acl_access":
        path = _decorated(a[0]) if call == "fsetxattr" else _at("", _string(a[0]), cwd)
        return [FileOp(**base, kind="chmod", path=path, mode=_acl_mode(a[2]))]
    if call == "rename":
        return [FileOp(**base, kind="rename", path=_at("", _string(a[0]), cwd),
                       dest=_at("", _string(a[1]), cwd))]
    if call in ("renameat", "renameat2"):
        return [FileOp(**base, kind="rename", path=_at(a[0], _string(a[1]), cwd),
                       dest=_at(a[2], _string(a[3]), cwd))]
    if call == "link":
        return [FileOp(**base, kind="link", path=_at("", _string(a[0]), cwd),
                       dest=_at("", _string(a[1]), cwd))]
    if call == "linkat":
        return [FileOp(**base, kind="link", path=_at(a[0], _string(a[1]), cwd),
                       dest=_at(a[2], _string(a[3]), cwd))]
    if call == "symlink":
        return [FileOp(**base, kind="symlink", path=_at("", _string(a[1]), cwd))]
    if call == "symlinkat":
        return [FileOp(**base, kind="symlink", path=_at(a[1], _string(a[2]), cwd))]
    if call == "unlink":
        return [FileOp(**base, kind="unlink", path=_at("", _string(a[0]), cwd))]
    if call == "unlinkat":
        kind = "rmdir" if "AT_REMOVEDIR" in a[2] else "unlink"
        return [FileOp(**base, kind=kind, path=_at(a[0], _string(a[1]), cwd))]
    if call == "rmdir":
        return [FileOp(**base, kind="rmdir", path=_at("", _string(a[0]), cwd))]
    if call == "truncate":
        return [FileOp(**base, kind="truncate", path=_at("", _string(a[0]), cwd))]
    if call == "ftruncate":
        return [FileOp(**base, kind="truncate", path=_decorated(a[0]))]
    return []


def read_trace(log: Path, umask: int, cwd: Path) -> list[FileOp]:
    """Every file operation in the logs ``log.PID``, in time order. ``umask`` and
    ``cwd``: the root process's when it started."""
    files = {int(p.name.rsplit(".", 1)[1]): p for p in log.parent.glob(log.name + ".*")
             if p.name.rsplit(".", 1)[1].isdigit()}
    lines = {pid: list(_lines(path)) for pid, path in files.items()}
    parent_of: dict[int, int] = {}
    for pid, calls in lines.items():
        for line in calls:
            child = _child_pid(line.call, line.ret)
            if child is not None:
                parent_of[child] = pid
    roots = [pid for pid in lines if pid not in parent_of]
    assert roots, f"no root process in {sorted(lines)}"
    start: dict[int, tuple[int, str]] = {pid: (umask, str(cwd)) for pid in roots}
    program: dict[int, str] = {pid: "?" for pid in roots}
    ops: list[FileOp] = []
    queue = list(roots)
    while queue:  # parents first: a child starts with its parent's umask and folder then
        pid = queue.pop(0)
        (current, folder), name = start[pid], program[pid]
        for line in lines.get(pid, []):
            if line.call == "execve" and line.ok:
                name = os.path.basename(_string(line.args[0]))
            elif line.call == "umask" and line.ok:
                current = _mode(line.args[0])
            elif line.call == "chdir" and line.ok:
                folder = _at("", _string(line.args[0]), folder)
            elif line.call == "fchdir" and line.ok:
                folder = _decorated(line.args[0]) or folder
            child = _child_pid(line.call, line.ret)
            if child is not None:
                start[child], program[child] = (current, folder), name
                queue.append(child)
            elif line.ok:
                ops.extend(_ops(pid, line, current, name, folder))
    return sorted(ops, key=lambda op: op.time)
