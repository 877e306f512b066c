"""Where each lab file lives. Stdlib only: the xe emulator imports it on every call."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LAB_DOMAIN = "lab.test"
STATE_FILE = "lab.json"
SPEC_FILE = "lab.yaml"
LOGINS_FILE = "logins.env"


def wlb_fqdn(index: int) -> str:
    return f"wlb{index}.{LAB_DOMAIN}"


def host_name(index: int, host: int) -> str:
    return f"xs{index}-{host:02d}.{LAB_DOMAIN}"


@dataclass(frozen=True)
class HostLayout:
    """The fake dom0 root of one pool member: only the trust store xapi keeps."""

    root: Path

    @property
    def stunnel_dir(self) -> Path:
        return self.root / "etc" / "stunnel"

    @property
    def certs_dir(self) -> Path:
        return self.stunnel_dir / "certs"

    @property
    def crls_dir(self) -> Path:
        return self.stunnel_dir / "crls"

    @property
    def bundle(self) -> Path:
        return self.stunnel_dir / "xapi-stunnel-ca-bundle.pem"


@dataclass(frozen=True)
class TargetLayout:
    """One lab target: an appliance (fake root + real stunnel) and a pool (emulated xe)."""

    root: Path

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def bin_dir(self) -> Path:
        return self.root / "bin"

    @property
    def xe(self) -> Path:
        return self.bin_dir / "xe"

    @property
    def getent(self) -> Path:
        """The coordinator's ``getent`` (the pool's name map, as the lab's xe resolves)."""
        return self.bin_dir / "getent"

    @property
    def restart(self) -> Path:
        return self.bin_dir / "restart-stunnel"

    @property
    def appliance(self) -> Path:
        return self.root / "appliance"

    @property
    def certs_dir(self) -> Path:
        return self.appliance / "etc" / "ssl" / "certs"

    @property
    def cert(self) -> Path:
        return self.certs_dir / "server.pem"

    @property
    def key(self) -> Path:
        return self.certs_dir / "server.key"

    @property
    def stunnel_conf(self) -> Path:
        return self.appliance / "etc" / "stunnel" / "wlb.conf"

    @property
    def stunnel_pid(self) -> Path:
        return self.appliance / "run" / "stunnel.pid"

    @property
    def stunnel_log(self) -> Path:
        return self.appliance / "var" / "log" / "stunnel.log"

    @property
    def hostname_file(self) -> Path:
        return self.appliance / "etc" / "hostname"

    @property
    def wlb_accounts(self) -> Path:
        """The emulated WLB service's accounts (what pool-initialize-wlb authenticates to)."""
        return self.appliance / "etc" / "wlb" / "accounts.json"

    @property
    def faults_dir(self) -> Path:
        return self.root / "faults"

    @property
    def pool_dir(self) -> Path:
        return self.root / "pool"

    @property
    def pool_state(self) -> Path:
        return self.pool_dir / "state.json"

    def host(self, name: str) -> HostLayout:
        return HostLayout(self.pool_dir / "hosts" / name)
