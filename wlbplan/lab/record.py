"""What ``lab.json`` records about a lab: its folder, xapi mode, hosts, targets and ports."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wlbplan.errors import LabError
from wlbplan.lab import sshd
from wlbplan.lab.layout import SPEC_FILE, STATE_FILE, TargetLayout, wlb_fqdn
from wlbplan.lab.xe_state import XAPI_VERSIONS

XAPI_MODES = tuple(XAPI_VERSIONS)
_STATE_MAX = 1 << 20


@dataclass(frozen=True)
class LabTarget:
    name: str
    fqdn: str
    port: int
    backend_port: int
    xenapi_port: int | None = None
    """Where this pool's XenAPI listens (``lab up --xenapi``), on 127.0.0.1."""


@dataclass(frozen=True)
class AcmePorts:
    directory: int
    management: int
    dns: int
    dns_management: int
    eab: bool = False

    @staticmethod
    def pick(eab: bool) -> AcmePorts:
        from wlbplan.lab.procs import free_port

        return AcmePorts(free_port(), free_port(), free_port(), free_port(), eab)

    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{self.directory}/dir"


@dataclass(frozen=True)
class Lab:
    """What ``lab.json`` records: enough to find, check and stop everything."""

    dir: Path
    xapi: str
    hosts: int
    targets: tuple[LabTarget, ...]
    ssh_port: int | None = None
    resolve: dict[str, str] = field(default_factory=dict)
    acme: AcmePorts | None = None
    """The ports of the lab's ACME CA (Pebble), when ``lab up --acme`` started one."""

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

    @property
    def xenapi(self) -> bool:
        """Does this lab serve XenAPI (``lab up --xenapi``)?"""
        return self.targets[0].xenapi_port is not None

    @property
    def acme_dir(self) -> Path:
        return self.dir / "acme"


def to_json(lab: Lab) -> str:
    return json.dumps(
        {
            "format": 1,
            "xapi": lab.xapi,
            "hosts": lab.hosts,
            "ssh_port": lab.ssh_port,
            "resolve": lab.resolve,
            "targets": [vars(t) for t in lab.targets],
            **({"acme": vars(lab.acme)} if lab.acme is not None else {}),
        },
        indent=2,
    )


def load(lab_dir: Path) -> Lab:
    """The lab recorded in ``lab_dir``; every value checked (the file is untrusted)."""
    path = lab_dir / STATE_FILE
    try:
        with path.open("rb") as handle:
            text = handle.read(_STATE_MAX + 1)
        if len(text) > _STATE_MAX:
            raise ValueError(f"larger than {_STATE_MAX} bytes")
        data: Any = json.loads(text)
    except FileNotFoundError:
        raise LabError(f"no lab in {lab_dir} (run `wlbplan lab up --dir {lab_dir}`)") from None
    except NotADirectoryError:
        raise LabError(f"{lab_dir} is a file, not a lab folder: give --dir the folder "
                       "`wlbplan lab up` made") from None
    except ValueError as err:
        raise LabError(f"{path} is not a lab state file: {err}") from None
    except OSError as err:
        raise LabError(f"cannot read {path}: {err.strerror or err}") from None
    try:
        return _lab(lab_dir.resolve(), data)
    except (KeyError, TypeError, ValueError) as err:
        raise LabError(f"{path} is not a lab state file: {err}") from None


def _port(value: Any) -> int:
    if type(value) is not int or not 0 < value < 65536:
        raise ValueError(f"{value!r} is not a port")
    return value


def _lab(folder: Path, data: Any) -> Lab:
    """Names, addresses and paths are never taken from the file: they are re-derived from
    each target's position (pool1 at wlb1.lab.test …) and must be what the file says."""
    if not isinstance(data, dict) or data.get("format") != 1:
        raise ValueError("not format 1")
    if data["xapi"] not in XAPI_MODES:
        raise ValueError(f"unknown xapi mode {data['xapi']!r}")
    hosts = data["hosts"]
    if type(hosts) is not int or not 0 < hosts <= 64:
        raise ValueError(f"{hosts!r} hosts")
    targets = []
    for index, item in enumerate(data["targets"], 1):
        xenapi_port = item.get("xenapi_port")
        target = LabTarget(name=f"pool{index}", fqdn=wlb_fqdn(index), port=_port(item["port"]),
                           backend_port=_port(item["backend_port"]),
                           xenapi_port=None if xenapi_port is None else _port(xenapi_port))
        if (item["name"], item["fqdn"]) != (target.name, target.fqdn) or \
                set(item) - {"xenapi_port"} != {"name", "fqdn", "port", "backend_port"}:
            raise ValueError(f"target {index} is not {target.name} at {target.fqdn}")
        targets.append(target)
    if not targets:
        raise ValueError("no targets")
    ssh_port = data.get("ssh_port")
    resolve = {t.fqdn: "127.0.0.1" for t in targets}
    if data.get("resolve", resolve) != resolve:
        raise ValueError("its resolve map is not the lab's")
    return Lab(dir=folder, xapi=data["xapi"], hosts=hosts, targets=tuple(targets),
               ssh_port=None if ssh_port is None else _port(ssh_port), resolve=resolve,
               acme=_acme(data["acme"]) if "acme" in data else None)


def _acme(data: Any) -> AcmePorts:
    if not isinstance(data, dict) or set(data) != {"directory", "management", "dns",
                                                   "dns_management", "eab"}:
        raise ValueError("its acme ports are not the lab's")
    if type(data["eab"]) is not bool:
        raise ValueError("acme.eab is not true or false")
    return AcmePorts(_port(data["directory"]), _port(data["management"]), _port(data["dns"]),
                     _port(data["dns_management"]), data["eab"])
