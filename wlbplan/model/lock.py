"""The apply lock's record, as written on the coordinator and read back by apply and audit."""

from __future__ import annotations

from dataclasses import dataclass

from wlbplan.model.text import visible


@dataclass(frozen=True)
class LockInfo:
    id: str
    owner: str
    pid: int
    created: str
    target: str

    def describe(self) -> str:
        """One line, though the record is the coordinator's file: whoever can write it
        chooses these fields."""
        return visible(f"lock {self.id} held by {self.owner} (pid {self.pid}) "
                       f"since {self.created}")
