"""The SSH connector, on fabric, with fabric's permissive defaults turned off.

wlbplan runs as root next to private keys, so the connection trusts exactly what the
spec names and nothing from the environment:

- host keys come only from the spec's ``known_hosts`` file (fabric's ``AutoAddPolicy``
  is replaced; ``~/.ssh/known_hosts`` and system files are never loaded); an unknown
  host is refused (``strict``) or recorded on first use (``accept-new``); a changed or
  ``@revoked`` key is always refused;
- the only credential is the spec's identity file: no ssh-agent, no ``~/.ssh/id_*``,
  no ssh_config (which could redirect host, port, user, keys or add a ProxyCommand),
  no fabric/invoke config files;
- one TCP connection per host, opened on first use and reused: one ``run`` is one exec
  channel, files go over one SFTP channel.
"""

from __future__ import annotations

import base64
import codecs
import contextlib
import errno
import hashlib
import io
import os
import posixpath
import secrets
import shlex
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import paramiko
from fabric import Config, Connection
from fabric.runners import Remote
from invoke.exceptions import CommandTimedOut, ThreadException
from paramiko.hostkeys import HostKeyEntry
from paramiko.pkey import UnknownKeyType
from paramiko.ssh_exception import (
    AuthenticationException,
    BadHostKeyException,
    NoValidConnectionsError,
    PasswordRequiredException,
    SSHException,
)

from wlbplan.errors import ConnectError, RemoteCommandError, WlbplanError
from wlbplan.limits import OUTPUT, TooLarge, read_capped, too_large
from wlbplan.model.command import Command, CommandResult
from wlbplan.model.names import join_host_port, ssh_user_problem

HostKeyPolicy = Literal["strict", "accept-new"]
HOST_KEY_POLICIES: tuple[HostKeyPolicy, ...] = ("strict", "accept-new")

_CHUNK = 32 * 1024
# paramiko reports handshake timeouts as plain SSHExceptions; these are their texts.
_TIMEOUT_MARKERS = ("Error reading SSH protocol banner", "No existing session", "timed out")


@dataclass(frozen=True)
class SshTarget:
    """Where and how to connect. Paths may start with ``~`` (expanded at connect time)."""

    host: str
    port: int = 22
    user: str = "root"
    identity_file: Path = Path("~/.ssh/id_ed25519")
    known_hosts: Path = Path("~/.ssh/known_hosts")
    host_key_policy: HostKeyPolicy = "strict"
    connect_timeout: float = 10.0

    def __post_init__(self) -> None:
        # Accept str paths from plain callers; the field types stay honest.
        object.__setattr__(self, "identity_file", Path(self.identity_file))
        object.__setattr__(self, "known_hosts", Path(self.known_hosts))
        _check_host(self.host)
        if not 0 < self.port < 65536:
            raise ValueError(f"SSH port must be 1-65535, not {self.port}")
        problem = ssh_user_problem(self.user)
        if problem:
            raise ValueError(f"invalid SSH user name {self.user!r}: it {problem}")
        if self.host_key_policy not in HOST_KEY_POLICIES:
            raise ValueError(
                f"host_key_policy must be strict or accept-new, not {self.host_key_policy!r}"
            )
        if self.connect_timeout <= 0:
            raise ValueError("connect_timeout must be positive")

    @property
    def address(self) -> str:
        """``host:port`` as people read it (IPv6 literals in brackets)."""
        return join_host_port(self.host, self.port)

    @property
    def known_hosts_name(self) -> str:
        """The name OpenSSH (and paramiko) file this host's key under."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


def _check_host(host: str) -> None:
    # fabric parses "user@host:port" shorthand out of the host string; a host that
    # looks like shorthand would silently change user or port, so refuse it.
    bad = not host or host.startswith("-") or any(ch.isspace() or ch in "@/" for ch in host)
    if bad or host.count(":") == 1:
        raise ValueError(f"invalid SSH host {host!r}: give a name or an address, port separately")


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's form: ``SHA256:`` + unpadded base64 of the key blob's SHA-256."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class SshRunner:
    """Runs commands and moves files on one host over one reused SSH connection."""

    def __init__(self, target: SshTarget) -> None:
        self._target = target
        self._conn: Any = None  # fabric.Connection, once opened
        self._lock = threading.Lock()
        self._round_trips = 0

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
    def connected(self) -> bool:
        return self._conn is not None and bool(self._conn.is_connected)

    def run(self, command: Command, *, timeout: float | None = None) -> CommandResult:
        conn = self._connection()
        self._round_trips += 1
        started = time.monotonic()
        try:
            result = conn.run(
                command.shell(),
                warn=True,
                hide=True,
                pty=False,
                encoding="utf-8",
                # Always a stream: stdin is at EOF when none is given, so a command that
                # reads stdin cannot hang, and the operator's terminal is never forwarded.
                in_stream=io.BytesIO(command.stdin or b""),
                timeout=timeout,
            )
        except CommandTimedOut:
            # from None here and below: invoke's exceptions carry the unmasked command.
            raise self._timed_out(command, timeout) from None
        except ThreadException as exc:
            if any(isinstance(w.value, TooLarge) for w in exc.exceptions):
                # The reader stopped at the cap and invoke closed the channel.
                raise too_large(OUTPUT, f"the output of `{command.display()}` on "
                                        f"{self.host}") from None
            raise self._failed(conn, command, exc) from None
        except (SSHException, OSError, EOFError) as exc:
            raise self._failed(conn, command, exc) from None
        if result.exited == -1:
            # No exit status: invoke's timer closed the channel but, racing with it,
            # invoke did not notice (it checks the timer thread is done); or the link died.
            if timeout is not None and time.monotonic() - started >= timeout:
                raise self._timed_out(command, timeout)
            if not conn.is_connected:
                raise self._failed(conn, command, None)
        return CommandResult(command.display(), result.exited, result.stdout, result.stderr)

    def _timed_out(self, command: Command, timeout: float | None) -> RemoteCommandError:
        return RemoteCommandError(
            f"`{command.display()}` on {self.host} did not finish within {timeout}s; "
            "its channel was closed (the remote process may still be running)"
        )

    def _failed(self, conn: Any, command: Command, exc: Exception | None) -> WlbplanError:
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
            _remove_quietly(sftp, staged)
            raise self._file_error("write", remote_path, exc) from None
        finally:
            _remove_quietly(sftp, stage, directory=True)

    def get(self, remote_path: str) -> bytes:
        sftp = self._sftp()
        try:
            with sftp.open(remote_path, "rb") as handle:
                handle.prefetch()
                return read_capped(handle.read, OUTPUT, f"{remote_path} on {self.host}")
        except (OSError, SSHException) as exc:
            raise self._file_error("read", remote_path, exc) from None

    def _file_error(self, verb: str, path: str, exc: Exception) -> RemoteCommandError:
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
        return sftp

    def _connection(self) -> Any:
        """The open connection, made on first use (and again if it dropped)."""
        with self._lock:
            if self._conn is not None and self._conn.is_connected:
                return self._conn
            if self._conn is not None:
                self._conn.client.close()
            self._conn = None
            self._conn = _open(self._target)
            return self._conn


# --- connecting ---------------------------------------------------------------------


def _open(target: SshTarget) -> Any:
    identity = _load_identity(target)
    known, revoked = _read_known_hosts(target.known_hosts.expanduser())
    conn = _fabric_connection(target, identity)
    host_keys = conn.client.get_host_keys()
    for name, key in known:
        host_keys.add(name, key.get_name(), key)
    policy_class = _AcceptNew if target.host_key_policy == "accept-new" else _Strict
    conn.client.set_missing_host_key_policy(policy_class(target, revoked))
    try:
        conn.open()
    except BaseException as exc:
        # paramiko leaves the transport thread running after a failed connect.
        conn.client.close()
        if isinstance(exc, ConnectError) or not isinstance(exc, Exception):
            raise
        raise _connect_error(target, identity, exc) from exc
    return conn


def _fabric_connection(target: SshTarget, identity: paramiko.PKey) -> Any:
    timeout = target.connect_timeout
    config = Config(
        overrides={
            "load_ssh_configs": False,
            "forward_agent": False,
            "runners": {"remote": _Remote},
        },
        # An explicit (empty) SSHConfig stops fabric reading ~/.ssh/config and
        # /etc/ssh/ssh_config; lazy stops invoke reading /etc/fabric.yaml & co.
        ssh_config=paramiko.SSHConfig(),
        lazy=True,
    )
    return Connection(
        target.host,
        user=target.user,
        port=target.port,
        config=config,
        forward_agent=False,
        connect_kwargs={
            "pkey": identity,
            "look_for_keys": False,
            "allow_agent": False,
            # Given here, not as connect_timeout=: fabric int()s that (0.5 → no timeout).
            "timeout": timeout,
            "banner_timeout": timeout,
            "auth_timeout": timeout,
            "channel_timeout": timeout,
        },
    )


def _load_identity(target: SshTarget) -> paramiko.PKey:
    path = target.identity_file.expanduser()
    who = f"{target.user}@{target.address}"
    # from None: the loaders' exceptions may hold the key file's bytes.
    try:
        return paramiko.PKey.from_path(path)
    except FileNotFoundError:
        problem = "does not exist; set ssh.identity_file in the spec"
    except OSError as exc:
        problem = f"cannot be read ({exc.strerror})"
    except (PasswordRequiredException, TypeError):
        # cryptography raises TypeError for an encrypted key loaded without password.
        problem = (
            "is passphrase-protected or unreadable as a key; wlbplan uses no agent and asks "
            "for no passphrase, so give it a dedicated unencrypted key (mode 0600)"
        )
    except (ValueError, SSHException, UnknownKeyType):
        problem = "is not a private key wlbplan can use (OpenSSH or PEM; RSA, ECDSA, Ed25519)"
    raise ConnectError(f"identity file {path} (for {who}) {problem}") from None


def _connect_error(target: SshTarget, identity: paramiko.PKey, exc: Exception) -> ConnectError:
    where = target.address
    if isinstance(exc, BadHostKeyException):
        return ConnectError(_mismatch_message(target, exc.expected_key, exc.key))
    if isinstance(exc, AuthenticationException):
        return ConnectError(
            f"SSH authentication failed for user {target.user!r} at {where}: the server "
            f"refused the key {target.identity_file.expanduser()} ({fingerprint(identity)}). "
            f"Check that its public key is in {target.user}'s authorized_keys on "
            f"{target.host}. wlbplan offers only this key (no agent, no ~/.ssh keys)."
        )
    if isinstance(exc, socket.gaierror):
        return ConnectError(
            f"cannot resolve host name {target.host!r} (DNS: {exc.strerror}); "
            "check the name in the spec or use an IP address"
        )
    if isinstance(exc, NoValidConnectionsError):
        return _no_connection(target, exc)
    if isinstance(exc, TimeoutError) or (
        isinstance(exc, SSHException) and any(m in str(exc) for m in _TIMEOUT_MARKERS)
    ):
        return ConnectError(
            f"timed out after {target.connect_timeout:g}s connecting to {where}: the host did "
            "not answer as an SSH server (down, filtered by a firewall, or not SSH on that "
            "port); check address and port, or raise connect_timeout"
        )
    if isinstance(exc, EOFError):
        return ConnectError(f"{where} closed the connection during the SSH handshake")
    if isinstance(exc, OSError):
        return ConnectError(f"cannot connect to {where}: {exc.strerror or exc}")
    return ConnectError(f"SSH handshake with {where} failed: {exc}")


def _no_connection(target: SshTarget, exc: NoValidConnectionsError) -> ConnectError:
    codes = {getattr(err, "errno", None) for err in exc.errors.values()}
    if codes == {errno.ECONNREFUSED}:
        return ConnectError(
            f"connection refused by {target.address}: nothing listens on port "
            f"{target.port}; check that sshd runs on {target.host} and that the port is right"
        )
    return ConnectError(f"{target.address} is unreachable (no route to host)")


# --- host keys ----------------------------------------------------------------------


def _read_known_hosts(
    path: Path,
) -> tuple[list[tuple[str, paramiko.PKey]], frozenset[bytes]]:
    """(name, key) pairs that may be trusted, and the blobs marked ``@revoked``.

    Parsed here rather than by paramiko's loader, which would take ``@revoked`` lines
    for host names. A missing file is empty; malformed lines are skipped, as OpenSSH
    does; ``@cert-authority`` lines are ignored (host certificates are not supported,
    so such hosts count as unknown).
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return [], frozenset()
    except OSError as exc:
        raise ConnectError(f"cannot read known_hosts file {path}: {exc.strerror}") from None
    entries: list[tuple[str, paramiko.PKey]] = []
    revoked: set[bytes] = set()
    for marker, entry in _known_hosts_entries(text):
        if marker == "@revoked":
            revoked.add(entry.key.asbytes())
        elif marker is None:
            entries.extend((name, entry.key) for name in entry.hostnames)
    # A revoked key is not trusted even where a plain line lists it.
    return [(n, k) for n, k in entries if k.asbytes() not in revoked], frozenset(revoked)


def _known_hosts_entries(text: str) -> Iterator[tuple[str | None, HostKeyEntry]]:
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        marker = None
        if line.startswith("@"):
            marker, _, line = line.partition(" ")
            line = line.strip()
        try:
            entry = HostKeyEntry.from_line(line)
        except Exception:  # any malformed line is skipped, as OpenSSH does
            entry = None
        if entry is not None and entry.key is not None:
            yield marker, entry


def _append_known_host(path: Path, name: str, key: paramiko.PKey) -> None:
    """Append one line (never rewrite the file: other tools' lines and comments stay).

    O_APPEND keeps concurrent appends from parallel runs whole.
    """
    line = f"{name} {key.get_name()} {key.get_base64()}\n"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "r+b") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = "\n" + line
        handle.write(line.encode())


class _HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Called by paramiko only for hosts without a known key; raising refuses."""

    def __init__(self, target: SshTarget, revoked: frozenset[bytes]) -> None:
        self.target = target
        self.revoked = revoked

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        if key.asbytes() in self.revoked:
            raise ConnectError(
                f"host key {key.get_name()} {fingerprint(key)} offered by {self.target.address} "
                f"is marked @revoked in {self.target.known_hosts.expanduser()}; refusing to connect"
            )
        self.unknown(client, hostname, key)

    def unknown(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise NotImplementedError


class _Strict(_HostKeyPolicy):
    def unknown(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        target = self.target
        known_hosts = target.known_hosts.expanduser()
        keyscan = shlex.join(["ssh-keyscan", "-p", str(target.port), target.host])
        raise ConnectError(
            f"host key of {target.address} is unknown: {hostname} is not in {known_hosts} "
            f"(the server offered {key.get_name()} {fingerprint(key)}), and wlbplan reads no "
            "other known_hosts file. After checking that fingerprint out of band, add it with "
            f"`{keyscan} >> {shlex.quote(str(known_hosts))}`, or set host_key_policy: "
            "accept-new to record it on first connection."
        )


class _AcceptNew(_HostKeyPolicy):
    def unknown(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        known_hosts = self.target.known_hosts.expanduser()
        try:
            _append_known_host(known_hosts, hostname, key)
        except OSError as exc:
            # Unrecorded, the next run would trust whatever key it is offered again.
            raise ConnectError(
                f"cannot record the new host key of {self.target.address} in {known_hosts} "
                f"({exc.strerror}); refusing to connect with host_key_policy accept-new"
            ) from None
        client.get_host_keys().add(hostname, key.get_name(), key)


def _mismatch_message(target: SshTarget, expected: paramiko.PKey, offered: paramiko.PKey) -> str:
    known_hosts = target.known_hosts.expanduser()
    remove = shlex.join(["ssh-keygen", "-R", target.known_hosts_name, "-f", str(known_hosts)])
    return (
        f"HOST KEY MISMATCH for {target.address}: {known_hosts} records "
        f"{expected.get_name()} {fingerprint(expected)} for {target.known_hosts_name}, but "
        f"the server offered {offered.get_name()} {fingerprint(offered)}. Refusing to "
        "connect: someone may be intercepting the connection, or the host was reinstalled. "
        "If the change is expected, verify the new fingerprint out of band, then remove the "
        f"old entry with `{remove}` and connect again."
    )


# --- commands and files -------------------------------------------------------------


class _Remote(Remote):  # type: ignore[misc]  # fabric is untyped
    """fabric's runner with byte-exact stdin and output decoding.

    invoke's own stdin pump reads one byte per 10 ms tick and decodes each byte alone
    (a 4 KiB PEM would take 40 s, and non-UTF-8 bytes are mangled); its output reader
    decodes fixed 1000-byte chunks, splitting multi-byte characters at the seams.
    """

    read_chunk_size = _CHUNK

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
    with contextlib.suppress(OSError, SSHException):
        if directory:
            sftp.rmdir(path)
        else:
            sftp.remove(path)
