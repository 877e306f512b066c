"""The Runner seam shared by the local (subprocess) and SSH (fabric) connectors.

The values that cross it (``Command``, ``CommandResult``) live in ``wlbplan.model.command``
so that the pure core can build commands without importing any connector.
"""

from __future__ import annotations

import math
from typing import Protocol

from wlbplan.errors import CommandTimeout
from wlbplan.model.command import Command, CommandResult


def check_timeout(seconds: float | None, what: str = "command_timeout") -> float | None:
    """A timeout is a positive, finite number of seconds (or None: no bound)."""
    if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"{what} must be a positive, finite number of seconds, not {seconds}")
    return seconds


def timed_out(host: str, command: Command, seconds: float | None, fate: str) -> CommandTimeout:
    """One message for a command that outran its timeout, on either connector: the host
    is reported unreachable (it no longer answers in time), the command masked."""
    within = f"{seconds:g}s" if seconds is not None else "its timeout"
    return CommandTimeout(
        f"{host} is unreachable: `{command.display()}` did not finish within {within} and "
        f"{fate}. If the host is only slow, raise defaults.command_timeout in the spec."
    )


class Runner(Protocol):
    """Runs commands and moves files on one host; local and SSH implement it alike."""

    @property
    def host(self) -> str:
        """Where commands run, for messages (``local`` or ``user@host:port``)."""
        ...

    def run(self, command: Command, *, timeout: float | None = None) -> CommandResult:
        """Run ``command``; a non-zero exit is a result, not an exception. ``timeout``
        (default: the runner's command timeout) over is CommandTimeout; a stop asked for
        (connectors.stop) is Interrupted."""
        ...

    def put(self, data: bytes, remote_path: str, *, mode: int = 0o600) -> None:
        """Write ``data`` to ``remote_path`` created with ``mode``."""
        ...

    def get(self, remote_path: str) -> bytes:
        ...

    def close(self) -> None:
        ...
