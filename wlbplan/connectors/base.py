"""The Runner seam shared by the local (subprocess) and SSH (fabric) connectors.

The values that cross it (``Command``, ``CommandResult``) live in ``wlbplan.model.command``
so that the pure core can build commands without importing any connector.
"""

from __future__ import annotations

from typing import Protocol

from wlbplan.model.command import Command, CommandResult


class Runner(Protocol):
    """Runs commands and moves files on one host; local and SSH implement it alike."""

    @property
    def host(self) -> str:
        """Where commands run, for messages (``local`` or ``user@host:port``)."""
        ...

    def run(self, command: Command, *, timeout: float | None = None) -> CommandResult:
        """Run ``command``; a non-zero exit is a result, not an exception. Past ``timeout``
        (default: the runner's command timeout) it is CommandTimeout (connectors.timeouts);
        after a stop (connectors.stop) it is Interrupted."""
        ...

    def put(self, data: bytes, remote_path: str, *, mode: int = 0o600) -> None:
        """Write ``data`` to ``remote_path`` created with ``mode``."""
        ...

    def get(self, remote_path: str) -> bytes:
        ...

    def close(self) -> None:
        ...
