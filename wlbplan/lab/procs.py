"""Start and stop the lab's daemons by pid file, never by name, and never by pid alone."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wlbplan.errors import LabError
from wlbplan.run.pids import alive


def free_port() -> int:
    """A port free on 127.0.0.1 right now (the lab only ever binds loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise LabError(f"timed out after {timeout:.0f}s waiting for {what}")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# The pid file is written after the daemon started; clock steps and /proc/stat's whole
# seconds make a process look at most this much younger than it is.
_CLOCK_SLACK_S = 2.0
_PID_FILE_MAX = 64


@dataclass(frozen=True)
class Daemon:
    """A daemon the lab started, and what the process its pid file names must be for the
    lab to count it as its own.

    A pid alone proves nothing: after a reboot, or once the daemon died and its pid was
    reused, the pid file names an unrelated process (and the lab may run as root). So a
    process is this daemon only when it runs ``binary``, was started with ``args`` (the
    arguments naming its configuration under the lab folder) and started before the pid
    file was written. Anything else makes the pid file stale.
    """

    pid_file: Path
    binary: str | None
    args: tuple[str, ...]


def read_pid(pid_file: Path) -> int | None:
    """The pid a pid file holds; None when missing, not a plain file, or not a pid."""
    try:
        fd = os.open(pid_file, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        text = os.read(fd, _PID_FILE_MAX).decode("ascii", "replace").strip()
    finally:
        os.close(fd)
    return int(text) if text.isdigit() and 1 < int(text) < 2**22 + 1 else None


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise OSError("no btime in /proc/stat")


def started_at(pid: int) -> float:
    """When process ``pid`` started, in seconds since the epoch (/proc/PID/stat field 22)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return _boot_time() + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def _has_args(argv: list[str], wanted: tuple[str, ...]) -> bool:
    """``wanted`` in a row in ``argv``, or inside a title a daemon wrote over its argv
    (sshd: ``sshd: /usr/sbin/sshd -f CONFIG -E LOG [listener] …``)."""
    n = len(wanted)
    if any(tuple(argv[i:i + n]) == wanted for i in range(len(argv) - n + 1)):
        return True
    needle = " ".join(wanted)
    return any(f" {needle} " in f" {arg} " for arg in argv if " " in arg)


def is_daemon(daemon: Daemon, pid: int) -> bool:
    """Is process ``pid`` this daemon (its executable, arguments and start time)?"""
    if daemon.binary is None:
        return False
    try:
        exe = os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)")
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        started = started_at(pid)
        written = daemon.pid_file.stat().st_mtime
    except (OSError, ValueError, IndexError):
        return False  # gone, or not ours to read: never ours to signal
    if exe != os.path.realpath(daemon.binary):
        return False
    argv = [os.fsdecode(a) for a in raw.split(b"\0") if a]
    return _has_args(argv, daemon.args) and started <= written + _CLOCK_SLACK_S


def running_pid(daemon: Daemon) -> int | None:
    """The daemon's pid when it runs; None when it does not or its pid file is stale."""
    pid = read_pid(daemon.pid_file)
    if pid is None or not alive(pid) or not is_daemon(daemon, pid):
        return None
    return pid


class _Handle:
    """A process pinned by a pidfd where the kernel offers one: a pid reused after the
    check can then never be signalled."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.fd: int | None = None
        with contextlib.suppress(AttributeError, OSError):
            self.fd = os.pidfd_open(pid)

    def signal(self, sig: int) -> None:
        if self.fd is not None:
            signal.pidfd_send_signal(self.fd, sig)
        else:
            os.kill(self.pid, sig)

    def gone(self) -> bool:
        try:
            self.signal(0)
        except ProcessLookupError:
            return True
        return not alive(self.pid)  # a zombie keeps its pid, so this cannot be another's

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)


def stop(daemon: Daemon, timeout: float = 5.0) -> int | None:
    """SIGTERM the daemon, then SIGKILL if it lingers; returns its pid. A stale pid file
    (see :class:`Daemon`) is removed and nothing is signalled."""
    pid = read_pid(daemon.pid_file)
    handle = _Handle(pid) if pid is not None else None
    try:
        # Checked after the pidfd is open: the process checked is the one signalled.
        if handle is None or handle.gone() or not is_daemon(daemon, handle.pid):
            daemon.pid_file.unlink(missing_ok=True)
            return None
        with contextlib.suppress(ProcessLookupError):
            handle.signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while not handle.gone() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not handle.gone():
            with contextlib.suppress(ProcessLookupError):
                handle.signal(signal.SIGKILL)
    finally:
        if handle is not None:
            handle.close()
    daemon.pid_file.unlink(missing_ok=True)
    return pid
