"""What an inspection reads only to check it, never to plan against it: how the
coordinator resolves WLB's name, and the appliance's leftover files with their ages.

Kept apart from ``Observed`` (as the apply lock is): ages and resolver answers move from
one look to the next while nothing a plan changes has moved, and a plan's digest of the
facts must not move with them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NameLookup:
    """``getent hosts NAME`` on the coordinator: the addresses it answered, or ``found``
    False when the resolver said the name does not exist (getent's exit 2)."""

    name: str
    found: bool
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Leftover:
    """A file wlbplan or the procedure leaves behind on the appliance, and its age by the
    appliance's own clock (whole days since it was last written)."""

    path: str
    kind: str
    """``backup`` (``*_orig``), ``set aside`` (``*.wlbplan-old``) or ``pending key``."""
    age_days: int


@dataclass(frozen=True)
class ApplianceChecks:
    """What the appliance's one command also read: its leftovers, and the addresses it
    has (``hostname -I``; empty when it could not say)."""

    leftovers: tuple[Leftover, ...] = ()
    addresses: tuple[str, ...] = ()
