"""The local connector: commands run as subprocesses of wlbplan, files are written in place.

Used by the lab and by targets whose connection is ``local`` (wlbplan running on the
coordinator or the appliance itself). It behaves like the SSH connector as far as the
Runner seam can tell: argv is never handed to a shell, stdin is at EOF unless given,
and a missing program is exit 127 as a remote shell would report it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

from wlbplan.connectors import stop
from wlbplan.connectors.timeouts import check_timeout, timed_out
from wlbplan.errors import Interrupted, RemoteCommandError
from wlbplan.limits import OUTPUT, TooLarge, read_capped, read_file
from wlbplan.model.command import Command, CommandResult

# How long to wait for output to drain after a timed-out command's group was killed;
# a grandchild that escaped the group (setsid) must not hang wlbplan.
_DRAIN_AFTER_KILL = 5.0


class LocalRunner:
    """Runs commands on this machine. ``name`` labels it in messages (``local`` by default).

    ``command_timeout``: how long a command may run when ``run`` is given no timeout
    (None: unbounded, for library callers; sessions always give the spec's).
    """

    def __init__(self, name: str = "local", *, command_timeout: float | None = None) -> None:
        self._name = name
        self._round_trips = 0
        self._command_timeout = check_timeout(command_timeout)

    @property
    def host(self) -> str:
        return self._name

    @property
    def round_trips(self) -> int:
        """Commands run so far (one process each), for callers that budget round trips."""
        return self._round_trips

    def run(self, command: Command, *, timeout: float | None = None) -> CommandResult:
        stop.check(self.host)
        limit = self._command_timeout if timeout is None else timeout
        self._round_trips += 1
        try:
            proc = subprocess.Popen(
                command.argv,
                stdin=subprocess.DEVNULL if command.stdin is None else subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                # Its own process group, so a timeout can kill the whole tree, and a ^C
                # aimed at wlbplan is handled by wlbplan (rollback), as over SSH.
                start_new_session=True,
            )
        except OSError as exc:
            return _spawn_failure(command, exc)
        with stop.stoppable(lambda: _signal_group(proc)):
            stdout, stderr = self._communicate(proc, command, limit)
        if stop.stopping():
            raise Interrupted(f"stopped: `{command.display()}` on {self.host} was ended")
        return CommandResult(command.display(), proc.returncode, _text(stdout), _text(stderr))

    def _communicate(
        self, proc: subprocess.Popen[bytes], command: Command, timeout: float | None
    ) -> tuple[bytes, bytes]:
        """``communicate`` with each stream capped: a command that prints without end is
        killed at the cap, never held in memory whole."""
        source = f"the output of `{command.brief()}` on {self.host}"
        streams = [_Drain(proc, pipe, source) for pipe in (proc.stdout, proc.stderr) if pipe]
        if proc.stdin is not None:
            threading.Thread(target=_feed, args=(proc.stdin, command.stdin or b""),
                             daemon=True).start()
        deadline = None if timeout is None else time.monotonic() + timeout
        for drain in streams:
            drain.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if any(d.is_alive() for d in streams):
            _kill_group(proc, streams)
            raise timed_out(self.host, command, timeout, "it was killed")
        proc.wait()
        for drain in streams:
            if drain.error is not None:
                raise drain.error
        return streams[0].data, streams[1].data

    def put(self, data: bytes, remote_path: str, *, mode: int = 0o600) -> None:
        stop.check(self.host)
        target = Path(remote_path)
        tmp = target.with_name(f".{target.name}.wlbplan-{secrets.token_hex(6)}")
        try:
            fd = _create(tmp, mode)
        except OSError as exc:
            raise self._write_error(remote_path, exc) from None
        try:
            _write_all(fd, data)
            os.replace(tmp, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise self._write_error(remote_path, exc) from None

    def _write_error(self, path: str, exc: OSError) -> RemoteCommandError:
        return RemoteCommandError(f"cannot write {path} on {self.host}: {exc.strerror or exc}")

    def get(self, remote_path: str) -> bytes:
        stop.check(self.host)
        try:
            return read_file(remote_path, OUTPUT)
        except OSError as exc:
            raise RemoteCommandError(
                f"cannot read {remote_path} on {self.host}: {exc.strerror or exc}"
            ) from None

    def close(self) -> None:
        """Nothing stays open between commands."""

    def __enter__(self) -> LocalRunner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _spawn_failure(command: Command, exc: OSError) -> CommandResult:
    """Report an unstartable program the way sh does, so both connectors agree."""
    code = 127 if exc.errno == errno.ENOENT else 126
    return CommandResult(command.display(), code, "", f"{command.argv[0]}: {exc.strerror}\n")


class _Drain(threading.Thread):
    """Reads one of a command's pipes to EOF, at most the output cap; past the cap the
    command's process group is killed."""

    def __init__(self, proc: subprocess.Popen[bytes], pipe: IO[bytes], source: str) -> None:
        super().__init__(daemon=True)
        self.proc, self.pipe, self.source = proc, pipe, source
        self.data = b""
        self.error: TooLarge | None = None
        self.start()

    def run(self) -> None:
        try:
            self.data = read_capped(self.pipe.read, OUTPUT, self.source)
        except TooLarge as err:
            self.error = err
            _signal_group(self.proc)
        except (OSError, ValueError):  # closed under us by a kill: what was read is lost
            pass
        finally:
            with contextlib.suppress(OSError):
                self.pipe.close()


def _feed(pipe: IO[bytes], data: bytes) -> None:
    with contextlib.suppress(OSError):  # the command exited without reading it all
        pipe.write(data)
    with contextlib.suppress(OSError):
        pipe.close()


def _signal_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the command's process group (its own session), without waiting."""
    # A reaped leader's pid is not reused while its group still has members.
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def _kill_group(proc: subprocess.Popen[bytes], streams: list[_Drain]) -> None:
    _signal_group(proc)
    # A grandchild that escaped the group (setsid) may hold the pipes: wait a little for
    # them, never for ever.
    until = time.monotonic() + _DRAIN_AFTER_KILL
    for drain in streams:
        drain.join(max(0.0, until - time.monotonic()))
    proc.kill()
    proc.wait()


def _create(path: Path, mode: int) -> int:
    """Create ``path`` (which must not exist) with ``mode`` from its first instant.

    O_EXCL|O_NOFOLLOW: never write through a planted file or symlink. The umask can only
    have narrowed the mode at creation; fchmod then sets it exactly, never looser. The
    descriptor stays writable whatever ``mode`` says (e.g. 0400).
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)
    except OSError:
        os.close(fd)
        os.unlink(path)
        raise
    return fd


def _write_all(fd: int, data: bytes) -> None:
    """Write, flush to disk and close, so the rename never publishes a partial file."""
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
