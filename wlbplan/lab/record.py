"""What ``lab.json`` records about a lab: its folder, xapi mode, hosts, targets and ports."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from wlbplan.errors import LabError
from wlbplan.lab import sshd
from wlbplan.lab.layout import SPEC_FILE, TargetLayout


@dataclass(frozen=True)
class LabTarget:
    name: str
    fqdn: str
    port: int
    backend_port: int


@dataclass(frozen=True)
class Lab:
    """What ``lab.json`` records: enough to find, check and stop everything."""

    dir: Path
    xapi: str
    hosts: int
    targets: tuple[LabTarget, ...]
    ssh_port: int | None = None
    resolve: dict[str, str] = field(default_factory=dict)

    def layout(self, name: str) -> TargetLayout:
        return TargetLayout(self.dir / name)

    def target(self, name: str | None) -> LabTarget:
        if name is None:
            return self.targets[0]
        for target in self.targets:
            if target.name == name:
                return target
        known = ", ".join(t.name for t in self.targets)
        raise LabError(f"no target {name!r} in the lab at {self.dir} (it has {known})")

    @property
    def ssh(self) -> sshd.SshLayout:
        return sshd.SshLayout(self.dir / "ssh")

    @property
    def spec_path(self) -> Path:
        return self.dir / SPEC_FILE
