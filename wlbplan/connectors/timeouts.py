"""Command timeouts, the same on both connectors: what a valid one is, and what running
past one means (the host no longer answers in time: it is reported unreachable)."""

from __future__ import annotations

import math

from wlbplan.errors import CommandTimeout
from wlbplan.model.command import Command
from wlbplan.model.text import clip

# What to do about a host that is only slow, in every timeout message.
MORE_TIME = ("If the host is only slow, give it more time: --timeout SECONDS, or "
             "defaults.timeout in the spec.")
# An inspection script is pages long: its head names it well enough in one message.
_SHOWN = 160


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
        f"{host} is unreachable: `{clip(command.display(), _SHOWN)}` did not finish within "
        f"{within} and "
        f"{fate}. {MORE_TIME}"
    )
