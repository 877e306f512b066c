"""A real OpenSSH sshd on 127.0.0.1 with its own host key, client key and known_hosts.

Nothing under /etc/ssh is read or written: the configuration, keys and pid file live in
the lab's ``ssh/`` folder. The only system path touched is sshd's compiled-in
privilege-separation directory (/run/sshd), created when missing, as the openssh-server
package's own service unit would.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from wlbplan.errors import LabError
from wlbplan.lab import procs
from wlbplan.lab.pki import write_private
from wlbplan.lab.procs import Daemon, port_open, running_pid, wait_for

PRIVSEP_DIR = Path("/run/sshd")

# 100 concurrent wlbplan sessions (fleet runs) must be accepted: MaxStartups bounds
# unauthenticated connections, MaxSessions the channels multiplexed on one connection.
_TUNING = ["MaxStartups 256:30:512", "MaxSessions 256", "LoginGraceTime 30"]
# sshd runs each command through the login user's shell, and bash then reads that user's
# ~/.bashrc when it is a top-level shell: on a developer's machine, pyenv or conda set-up,
# which cost every lab command 0.3 s and more (a dom0's root has the stock, light one).
# SHLVL=1 makes the login shell a nested one, which reads no rc file.
_NO_USER_RC = ["SetEnv SHLVL=1"]


@dataclass(frozen=True)
class SshLayout:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "sshd_config"

    @property
    def host_key(self) -> Path:
        return self.root / "ssh_host_ed25519_key"

    @property
    def client_key(self) -> Path:
        return self.root / "id_ed25519"

    @property
    def authorized_keys(self) -> Path:
        return self.root / "authorized_keys"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    @property
    def pid_file(self) -> Path:
        return self.root / "sshd.pid"

    @property
    def log(self) -> Path:
        return self.root / "sshd.log"


def _installed() -> str | None:
    return shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)


def sshd_binary() -> str:
    found = _installed()
    if not found:
        raise LabError(
            "sshd is not installed; install it with `apt-get install openssh-server` "
            "(make demo / make test do this when run as root)"
        )
    return found


def _keypair(path: Path) -> str:
    """Write an OpenSSH ed25519 private key (0600) and return its public line."""
    key = ed25519.Ed25519PrivateKey.generate()
    write_private(
        path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        ),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()
    path.with_name(path.name + ".pub").write_text(public + "\n")
    return public


def login_user() -> str:
    return getpass.getuser()


# ERROR keeps the log quiet; VERBOSE (`lab up --ssh-log`) adds a few lines per SSH
# connection: each login and each session (command or SFTP), which sshd_log counts.
LOG_LEVELS = ("ERROR", "VERBOSE")


def prepare(layout: SshLayout, port: int, log_level: str = "ERROR") -> None:
    if log_level not in LOG_LEVELS:
        raise LabError(f"sshd log level must be one of {', '.join(LOG_LEVELS)}, not "
                       f"{log_level!r}")
    layout.root.mkdir(parents=True, exist_ok=True)
    layout.root.chmod(0o700)
    host_public = _keypair(layout.host_key)
    client_public = _keypair(layout.client_key)
    layout.authorized_keys.write_text(client_public + " wlbplan-lab\n")
    layout.authorized_keys.chmod(0o600)
    layout.known_hosts.write_text(f"[127.0.0.1]:{port} {host_public}\n")
    layout.config.write_text(
        "\n".join(
            [
                "# wlbplan lab sshd: loopback only, keys only, its own files",
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {layout.host_key}",
                f"PidFile {layout.pid_file}",
                f"AuthorizedKeysFile {layout.authorized_keys}",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "UsePAM no",
                # The lab folder may sit under a world-writable parent such as /tmp.
                "StrictModes no",
                "Subsystem sftp internal-sftp",
                f"LogLevel {log_level}",
                *_TUNING,
                *_NO_USER_RC,
                "",
            ]
        )
    )


def start(layout: SshLayout, port: int) -> int:
    binary = sshd_binary()
    if os.geteuid() == 0 and not PRIVSEP_DIR.is_dir():
        PRIVSEP_DIR.mkdir(mode=0o755, parents=True)
    check = subprocess.run([binary, "-t", "-f", str(layout.config)], capture_output=True, text=True)
    if check.returncode != 0:
        raise LabError(f"sshd rejected the lab configuration: {check.stderr.strip()}")
    result = subprocess.run(
        [binary, "-f", str(layout.config), "-E", str(layout.log)], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise LabError(f"sshd failed to start (exit {result.returncode}): {result.stderr.strip()}")
    wait_for(lambda: running_pid(daemon(layout)) and port_open(port), 10, "sshd")
    pid = running_pid(daemon(layout))
    if pid is None:
        raise LabError(f"sshd exited right after start; see {layout.log}")
    return pid


def daemon(layout: SshLayout) -> Daemon:
    """The lab's sshd: started as ``sshd -f CONFIG`` (its title keeps those words)."""
    return Daemon(layout.pid_file, _installed(), ("-f", str(layout.config)))


def pid(layout: SshLayout) -> int | None:
    return running_pid(daemon(layout))


def stop(layout: SshLayout) -> int | None:
    return procs.stop(daemon(layout))
