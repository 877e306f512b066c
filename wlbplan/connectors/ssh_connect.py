"""Opening one SSH connection: fabric with its permissive defaults turned off, and every
way a connect can fail turned into one actionable ConnectError.

Credentials: the spec's ``identity_file`` and nothing else when it is set (no agent, no
``~/.ssh/id_*``); when it is unset, what OpenSSH would offer by default: the ssh-agent's
keys, then ``~/.ssh/id_rsa``, ``id_ecdsa``, ``id_ed25519``. Never ssh_config (which could
redirect host, port, user, keys or add a ProxyCommand), nor fabric/invoke config files.
"""

from __future__ import annotations

import errno
import logging
import socket
from pathlib import Path
from typing import Any

import paramiko
from fabric import Config, Connection
from paramiko.pkey import UnknownKeyType
from paramiko.ssh_exception import (
    AuthenticationException,
    BadHostKeyException,
    NoValidConnectionsError,
    PasswordRequiredException,
    SSHException,
)

from wlbplan.connectors import stop, timeouts
from wlbplan.connectors.ssh_hostkeys import fingerprint, install_host_keys, mismatch_message
from wlbplan.connectors.ssh_target import SshTarget
from wlbplan.errors import ConnectError, Interrupted

# paramiko's transport thread logs every failed handshake with its traceback; with no
# logging set up, Python prints those on stderr. The failure reaches the operator once,
# as the ConnectError below, so paramiko's own records go nowhere unless an application
# routes them itself.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

# paramiko reports handshake timeouts as plain SSHExceptions; these are their texts.
_TIMEOUT_MARKERS = ("Error reading SSH protocol banner", "No existing session", "timed out")


def open_connection(target: SshTarget, runner_class: type) -> Any:
    """A connected fabric.Connection whose ``run`` uses ``runner_class``."""
    given = target.identity_file
    identity = _load_identity(target, given) if given is not None else None
    conn = _fabric_connection(target, identity, runner_class)
    install_host_keys(conn.client, target)
    try:
        # A stop closes the half-open client: the handshake ends at once.
        with stop.stoppable(conn.client.close):
            conn.open()
    except BaseException as exc:
        # paramiko leaves the transport thread running after a failed connect.
        conn.client.close()
        if isinstance(exc, ConnectError) or not isinstance(exc, Exception):
            raise
        if stop.stopping():
            raise Interrupted(f"stopped while connecting to {target.address}") from None
        raise _connect_error(target, identity, exc) from exc
    return conn


def _fabric_connection(target: SshTarget, identity: paramiko.PKey | None,
                       runner_class: type) -> Any:
    timeout = target.connect_timeout
    # The spec's key alone, or (none given) OpenSSH's defaults: the agent, ~/.ssh/id_*.
    keys: dict[str, Any] = (
        {"pkey": identity, "look_for_keys": False, "allow_agent": False}
        if identity is not None else {"look_for_keys": True, "allow_agent": True}
    )
    config = Config(
        overrides={
            "load_ssh_configs": False,
            "forward_agent": False,
            "runners": {"remote": runner_class},
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
            **keys,
            # Given here, not as connect_timeout=: fabric int()s that (0.5 → no timeout).
            "timeout": timeout,
            "banner_timeout": timeout,
            "auth_timeout": timeout,
            "channel_timeout": timeout,
        },
    )


def _load_identity(target: SshTarget, given: Path) -> paramiko.PKey:
    path = given.expanduser()
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


_DEFAULT_KEYS = "the ssh-agent's keys (SSH_AUTH_SOCK) and ~/.ssh/id_rsa, id_ecdsa, id_ed25519"


def _connect_error(target: SshTarget, identity: paramiko.PKey | None,
                   exc: Exception) -> ConnectError:
    where = target.address
    if isinstance(exc, BadHostKeyException):
        return ConnectError(mismatch_message(target, exc.expected_key, exc.key))
    given = target.identity_file
    if isinstance(exc, AuthenticationException) and identity is not None and given:
        return ConnectError(
            f"SSH authentication failed for user {target.user!r} at {where}: the server "
            f"refused the key {given.expanduser()} ({fingerprint(identity)}). "
            f"Check that its public key is in {target.user}'s authorized_keys on "
            f"{target.host}. wlbplan offers only this key (no agent, no ~/.ssh keys)."
        )
    if identity is None and (isinstance(exc, AuthenticationException) or
                             "No authentication methods available" in str(exc)):
        return ConnectError(
            f"SSH authentication failed for user {target.user!r} at {where}: the spec sets "
            f"no ssh.identity_file, and {_DEFAULT_KEYS} offered none the server accepts "
            "(or none exist). Set ssh.identity_file to the key whose public half is in "
            f"{target.user}'s authorized_keys on {target.host}."
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
            "port); check address and port. " + timeouts.MORE_TIME
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
