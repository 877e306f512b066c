"""What ``lab.json`` records about a lab: its folder, xapi mode, hosts, targets and ports."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wlbplan.errors import LabError
from wlbplan.lab import sshd
from wlbplan.lab.layout import SPEC_FILE, STATE_FILE, TargetLayout


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


def to_json(lab: Lab) -> str:
    return json.dumps(
        {
            "format": 1,
            "xapi": lab.xapi,
            "hosts": lab.hosts,
            "ssh_port": lab.ssh_port,
            "resolve": lab.resolve,
            "targets": [vars(t) for t in lab.targets],
        },
        indent=2,
    )


def load(lab_dir: Path) -> Lab:
    path = lab_dir / STATE_FILE
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise LabError(f"no lab in {lab_dir} (run `wlbplan lab up --dir {lab_dir}`)") from None
    except NotADirectoryError:
        raise LabError(f"{lab_dir} is a file, not a lab folder: give --dir the folder "
                       "`wlbplan lab up` made") from None
    except ValueError as err:
        raise LabError(f"{path} is not a lab state file: {err}") from None
    except OSError as err:
        raise LabError(f"cannot read {path}: {err.strerror or err}") from None
    return Lab(
        dir=lab_dir.resolve(),
        xapi=data["xapi"],
        hosts=data["hosts"],
        ssh_port=data.get("ssh_port"),
        resolve=dict(data.get("resolve", {})),
        targets=tuple(LabTarget(**t) for t in data["targets"]),
    )
