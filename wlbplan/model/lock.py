"""The apply lock's record, as written on the coordinator and read back by apply and audit."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LockInfo:
    id: str
    owner: str
    pid: int
    created: str
    target: str

    def describe(self) -> str:
        return f"lock {self.id} held by {self.owner} (pid {self.pid}) since {self.created}"
