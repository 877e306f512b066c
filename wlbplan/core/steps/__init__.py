"""The step catalogue: each step says what it runs (quoted parts) and how it is undone."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

On = Literal["appliance", "pool", "local"]

# Placeholder, in shown commands, for the folder `mktemp -d` creates on the remote side.
TMP = "$WLBPLAN_TMP"


@dataclass(frozen=True)
class Step:
    """One ordered, reviewable action. ``commands``/``undo`` are the shown (masked) forms;
    ``params`` holds what apply needs to run it (public data only: no key material)."""

    action: str
    on: On
    summary: str
    commands: tuple[str, ...]
    undo: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)
