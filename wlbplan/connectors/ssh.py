"""The SSH connector, on fabric, with fabric's permissive defaults turned off.

wlbplan runs as root next to private keys, so the connection trusts exactly what the
spec names and nothing from the environment: host keys only from the spec's
``known_hosts`` (ssh_hostkeys), the spec's identity file as the only credential, no
ssh_config and no fabric/invoke config files (ssh_connect). One TCP connection per
host, opened on first use and reused: one ``run`` is one exec channel, files go over one
SFTP channel.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import io
import posixpath
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

import paramiko
from fabric.runners import Remote
from invoke.exceptions import CommandTimedOut, ThreadException
from paramiko.ssh_exception import SSHException

from wlbplan.connectors import stop, timeouts
from wlbplan.connectors.ssh_connect import open_connection
from wlbplan.connectors.ssh_hostkeys import fingerprint
from wlbplan.connectors.ssh_target import HOST_KEY_POLICIES, HostKeyPolicy, SshTarget
from wlbplan.errors import (
    CommandTimeout,
    ConnectError,
    Interrupted,
    RemoteCommandError,
    WlbplanError,
)
from wlbplan.limits import OUTPUT, TooLarge, read_capped, too_large
from wlbplan.model.command import Command, CommandResult

__all__ = ["HOST_KEY_POLICIES", "HostKeyPolicy", "SshRunner", "SshTarget", "fingerprint"]

_CHUNK = 32 * 1024
# How soon a dead IO thread (one that raised, e.g. output over the cap) ends the wait.
_IO_CHECK = 0.1


class SshRunner:
    """Runs commands and moves files on one host over one reused SSH connection."""

    def __init__(self, target: SshTarget) -> None:
        self._target = target
        self._conn: Any = None  # fabric.Connection, once opened
        self._lock = threading.Lock()
        self._round_trips = 0
        self._connects = 0

    @property
    def target(self) -> SshTarget:
        return self._target

    @property
    def host(self) -> str:
        return f"{self._target.user}@{self._target.address}"

    @property
    def round_trips(self) -> int:
        """Commands run so far; each is exactly one exec channel on the shared connection."""
        return self._round_trips

    @property
    def connects(self) -> int:
        """SSH connections opened so far (one per host for a whole command, unless one
        dropped): what fleet runs budget besides round trips."""
        return self._connects

    @property
    def connected(self) -> bool:
        return self._conn is not None and bool(self._conn.is_connected)

    def run(self, command: Command, *, timeout: float | None = None) -> CommandResult:
        stop.check(self.host)
        limit = self._target.command_timeout if timeout is None else timeout
        conn = self._connection()
        self._round_trips += 1
        started = time.monotonic()
        try:
            # A stop closes the whole connection: every channel on it ends at once.
            with stop.stoppable(conn.client.close):
                result = conn.run(
                    command.shell(),
                    warn=True,
                    hide=True,
                    pty=False,
                    encoding="utf-8",
                    # Always a stream: stdin is at EOF when none is given, so a command
                    # that reads stdin cannot hang, and the operator's terminal is never
                    # forwarded.
                    in_stream=io.BytesIO(command.stdin or b""),
                    timeout=limit,
                )
        except CommandTimedOut:
            # from None here and below: invoke's exceptions carry the unmasked command.
            raise self._timed_out(command, limit) from None
        except ThreadException as exc:
            if any(isinstance(w.value, TooLarge) for w in exc.exceptions):
                # The reader stopped at the cap and invoke closed the channel.
                raise too_large(OUTPUT, f"the output of `{command.brief()}` on "
                                        f"{self.host}") from None
            raise self._failed(conn, command, exc) from None
        except (SSHException, OSError, EOFError) as exc:
            raise self._failed(conn, command, exc) from None
        if result.exited == -1:
            # No exit status: invoke's timer closed the channel but, racing with it,
            # invoke did not notice (it checks the timer thread is done); or the link died.
            if limit is not None and time.monotonic() - started >= limit:
                raise self._timed_out(command, limit)
            if not conn.is_connected:
                raise self._failed(conn, command, None)
        return CommandResult(command.display(), result.exited, result.stdout, result.stderr)

    def _timed_out(self, command: Command, timeout: float | None) -> WlbplanError:
        if stop.stopping():
            return Interrupted(f"stopped: `{command.display()}` on {self.host} was ended")
        return timeouts.timed_out(self.host, command, timeout,
                         "its channel was closed (the remote process may still be running)")

    def _failed(self, conn: Any, command: Command, exc: Exception | None) -> WlbplanError:
        if stop.stopping():
            self.close()
            return Interrupted(f"stopped: `{command.display()}` on {self.host} was ended")
        # Only the exception's type is shown: invoke's texts embed the unmasked command.
        if exc is not None and conn.is_connected:
            return RemoteCommandError(
                f"`{command.display()}` on {self.host} failed in transit "
                f"({type(exc).__name__}); its outcome on the host is unknown"
            )
        self.close()
        return ConnectError(
            f"connection to {self.host} was lost while running `{command.display()}`; "
            "its outcome on the host is unknown"
        )

    def put(self, data: bytes, remote_path: str, *, mode: int = 0o600) -> None:
        stop.check(self.host)
        sftp = self._sftp()
        parent, name = posixpath.split(remote_path)
        # A private (0700) directory beside the target: the file is unreachable by
        # others while it is being written and chmod-ed, and the final rename stays on
        # the same filesystem, so it is atomic.
        stage = posixpath.join(parent, f".wlbplan-{secrets.token_hex(8)}")
        staged = posixpath.join(stage, name)
        try:
            sftp.mkdir(stage, 0o700)
        except (OSError, SSHException) as exc:
            raise self._file_error("write", remote_path, exc) from None
        try:
            _upload(sftp, staged, data, mode)
            sftp.posix_rename(staged, remote_path)
        except (OSError, SSHException) as exc:
            failure = self._file_error("write", remote_path, exc)  # first: a timeout closes
            _remove_quietly(sftp, staged)
            raise failure from None
        finally:
            _remove_quietly(sftp, stage, directory=True)

    def get(self, remote_path: str) -> bytes:
        stop.check(self.host)
        sftp = self._sftp()
        try:
            with sftp.open(remote_path, "rb") as handle:
                handle.prefetch()
                return read_capped(handle.read, OUTPUT, f"{remote_path} on {self.host}")
        except (OSError, SSHException) as exc:
            raise self._file_error("read", remote_path, exc) from None

    def _file_error(self, verb: str, path: str, exc: Exception) -> WlbplanError:
        if isinstance(exc, TimeoutError):
            # The SFTP channel waits for an answer that may never come: the host is hung.
            # Closed at once, so the cleanup after this costs nothing more.
            self.close()
            limit = self._target.command_timeout
            within = f"{limit:g}s" if limit is not None else "its timeout"
            return CommandTimeout(
                f"{self.host} is unreachable: {verb} {path} over SFTP did not finish within "
                f"{within} and the connection was closed. {timeouts.MORE_TIME}")
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return RemoteCommandError(f"cannot {verb} {path} on {self.host}: {reason}")

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            conn.client.close()  # also when half-open: fabric only closes "connected" ones

    def __enter__(self) -> SshRunner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _sftp(self) -> paramiko.SFTPClient:
        conn = self._connection()
        try:
            sftp: paramiko.SFTPClient = conn.sftp()  # memoised by fabric: one channel
        except (SSHException, OSError, EOFError) as exc:
            raise ConnectError(
                f"{self.host} refused an SFTP session ({exc}); wlbplan moves files over SFTP, "
                "so the server needs a `Subsystem sftp` line in its sshd_config"
            ) from None
        # Each file operation is bounded like a command: a read that never gets an answer
        # raises TimeoutError (see _file_error).
        channel = sftp.get_channel()
        if channel is not None:
            channel.settimeout(self._target.command_timeout)
        return sftp

    def _connection(self) -> Any:
        """The open connection, made on first use (and again if it dropped)."""
        with self._lock:
            if self._conn is not None and self._conn.is_connected:
                return self._conn
            if self._conn is not None:
                self._conn.client.close()
            self._conn = None
            self._connects += 1
            self._conn = open_connection(self._target, _Remote)
            return self._conn


# --- commands and files -------------------------------------------------------------


class _Remote(Remote):  # type: ignore[misc]  # fabric is untyped
    """fabric's runner with byte-exact stdin and output decoding.

    invoke's own stdin pump reads one byte per 10 ms tick and decodes each byte alone
    (a 4 KiB PEM would take 40 s, and non-UTF-8 bytes are mangled); its output reader
    decodes fixed 1000-byte chunks, splitting multi-byte characters at the seams.
    """

    read_chunk_size = _CHUNK

    def wait(self) -> None:
        """Until the command exits, its channel closes (the timeout's timer, a stop, a
        lost link: paramiko sets the channel's status event for each) or an IO thread
        died. invoke polls for that every 10 ms, each poll a wake-up of this thread for
        the whole command; this wakes when it happens, and every _IO_CHECK to look at
        the IO threads."""
        while not (self.process_is_finished or self.has_dead_threads):
            self.channel.status_event.wait(_IO_CHECK)

    def handle_stdin(self, input_: IO[bytes], output: object, echo: bool = False) -> None:
        try:
            while chunk := input_.read(_CHUNK):
                self._write_proc_stdin(chunk)
            self.close_proc_stdin()
        except (OSError, EOFError):
            # The command exited (or timed out) without reading all of it; its exit
            # status, not a broken pipe, is the result.
            return

    def read_proc_output(self, reader: Callable[[int], bytes]) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder(self.encoding)("replace")
        held = 0
        while data := reader(self.read_chunk_size):
            held += len(data)
            if held > OUTPUT.size:  # run() names the command; invoke closes the channel
                raise too_large(OUTPUT, "a command's output")
            if text := decoder.decode(data):
                yield text
        if tail := decoder.decode(b"", final=True):
            yield tail


def _upload(sftp: paramiko.SFTPClient, path: str, data: bytes, mode: int) -> None:
    # "wx": create exclusively; chmod through the handle before any byte is written.
    with sftp.open(path, "wx") as handle:
        handle.chmod(mode)
        handle.set_pipelined(True)
        handle.write(data)
    actual = sftp.stat(path).st_mode
    if actual is None or actual & 0o7777 != mode:
        # Some servers ignore chmod; never publish a key with the wrong mode.
        raise OSError(errno.EPERM, f"the server did not apply mode {mode:04o}")


def _remove_quietly(sftp: paramiko.SFTPClient, path: str, *, directory: bool = False) -> None:
    """Best-effort cleanup: the error that brought us here is the one worth reporting."""
    with contextlib.suppress(OSError, SSHException, EOFError):
        if directory:
            sftp.rmdir(path)
        else:
            sftp.remove(path)
