"""Pick the connector for one host from plain values (the spec layer maps its fields here)."""

from __future__ import annotations

from dataclasses import replace

from wlbplan.connectors.base import Runner
from wlbplan.connectors.local import LocalRunner
from wlbplan.connectors.ssh import SshRunner, SshTarget

CONNECTION_KINDS = ("local", "ssh")


def runner_for(kind: str, host: str, ssh: SshTarget | None = None) -> Runner:
    """A Runner for ``host``.

    ``local``: commands run on this machine; ``host`` only labels it in messages.
    ``ssh``: ``ssh`` carries the connection settings (port, user, identity file,
    known_hosts, host key policy, timeout); its ``host`` is replaced by ``host``, so one
    SshTarget of defaults serves every host of a spec. Nothing connects until first use.
    """
    if kind == "local":
        return LocalRunner(f"local:{host}" if host else "local")
    if kind == "ssh":
        if ssh is None:
            raise ValueError(f"connection ssh to {host!r} needs SSH settings")
        return SshRunner(ssh if ssh.host == host else replace(ssh, host=host))
    raise ValueError(f"connection must be one of {', '.join(CONNECTION_KINDS)}, not {kind!r}")
