"""Where and how to reach one host over SSH: a value, checked when made."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from wlbplan.connectors.timeouts import check_timeout
from wlbplan.model.names import join_host_port, ssh_user_problem

HostKeyPolicy = Literal["strict", "accept-new"]
HOST_KEY_POLICIES: tuple[HostKeyPolicy, ...] = ("strict", "accept-new")


@dataclass(frozen=True)
class SshTarget:
    """Where and how to connect. Paths may start with ``~`` (expanded at connect time)."""

    host: str
    port: int = 22
    user: str = "root"
    identity_file: Path | None = None
    """The one key to log in with; None: OpenSSH's default key files and the agent."""
    known_hosts: Path = Path("~/.ssh/known_hosts")
    host_key_policy: HostKeyPolicy = "strict"
    connect_timeout: float = 10.0
    command_timeout: float | None = None
    """How long a command may run when ``run`` is given no timeout (None: unbounded)."""
    spec_lines: tuple[tuple[str, str], ...] = ()
    """Where the spec writes this connection's settings, ``FILE:LINE`` by setting
    (``ssh.known_hosts``, ``ssh.host_key_policy``; ``ssh`` or ``""``: where to add
    them): a refused host key names the line to change. Empty when not from a spec."""

    def __post_init__(self) -> None:
        # Accept str paths from plain callers; the field types stay honest.
        if self.identity_file is not None:
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
        if not (math.isfinite(self.connect_timeout) and self.connect_timeout > 0):
            raise ValueError("connect_timeout must be positive")
        check_timeout(self.command_timeout)

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
