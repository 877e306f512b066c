"""Pick the connector for one host from plain values (the spec layer maps its fields here)."""

from __future__ import annotations

from dataclasses import replace

from wlbplan.connectors.base import Runner
from wlbplan.connectors.local import LocalRunner
from wlbplan.connectors.ssh import SshRunner, SshTarget

CONNECTION_KINDS = ("local", "ssh")


def runner_for(kind: str, host: str, ssh: SshTarget | None = None, *,
               command_timeout: float | None = None) -> Runner:
    """A Runner for ``host``.

    ``local``: commands run on this machine; ``host`` only labels it in messages.
    ``ssh``: ``ssh`` carries the connection settings (port, user, identity file,
    known_hosts, host key policy, timeouts); its ``host`` is replaced by ``host``, so one
    SshTarget of defaults serves every host of a spec. Nothing connects until first use.
    ``command_timeout`` (when given) bounds every command that names no timeout itself.
    """
    if kind == "local":
        return LocalRunner(f"local:{host}" if host else "local", command_timeout=command_timeout)
    if kind == "ssh":
        if ssh is None:
            raise ValueError(f"connection ssh to {host!r} needs SSH settings")
        limit = ssh.command_timeout if command_timeout is None else command_timeout
        return SshRunner(replace(ssh, host=host, command_timeout=limit))
    raise ValueError(f"connection must be one of {', '.join(CONNECTION_KINDS)}, not {kind!r}")
