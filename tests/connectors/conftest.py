"""Fixtures for the connector tests: nasty arguments, and a real sshd on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from wlbplan.connectors import stop
from wlbplan.connectors.ssh import SshRunner, SshTarget
from wlbplan.errors import LabError
from wlbplan.lab import sshd
from wlbplan.lab.procs import alive, free_port


@pytest.fixture(autouse=True)
def _no_stop_left_over() -> Iterator[None]:
    """A test that stops every runner must not leave the next one's runners refusing."""
    yield
    stop.reset()


@pytest.fixture
def nasty_args(tmp_path: Path) -> list[str]:
    """Arguments a shell would act on if they were ever interpolated unquoted.

    Each one that could run something would create ``tmp_path / "pwned"``.
    """
    canary = tmp_path / "pwned"
    return [
        "two words",
        "it's",
        'say "hi"',
        f"$(touch {canary})",
        f"`touch {canary}`",
        f"; touch {canary}",
        f"&& touch {canary}",
        f"| touch {canary}",
        f"\ntouch {canary}\n",
        "line1\nline2",
        "$HOME ~ * ? [a] {a,b}",
        "back\\slash",
        "tab\there",
        "-n",
        "",
        "é ü 漢字 🙂",
        "> redirected",
    ]


@dataclass(frozen=True)
class Sshd:
    layout: sshd.SshLayout
    port: int
    pid: int

    @property
    def host_public_line(self) -> str:
        """``ssh-ed25519 AAAA…`` of the server's host key."""
        return (
            self.layout.host_key.with_name(self.layout.host_key.name + ".pub").read_text().strip()
        )


def _sshd_available() -> bool:
    try:
        sshd.sshd_binary()
    except LabError:
        return False
    return True


def _stop(pid: int, layout: sshd.SshLayout) -> None:
    """Stop the sshd we started, by its pid; SIGKILL if it lingers."""
    if alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    layout.pid_file.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def sshd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """One real sshd on 127.0.0.1 for the session, with its own keys and known_hosts."""
    if not _sshd_available():
        pytest.skip(
            "openssh-server is not installed (/usr/sbin/sshd missing); "
            "install it with `apt-get install openssh-server`"
        )
    layout = sshd.SshLayout(tmp_path_factory.mktemp("sshd") / "ssh")
    port = free_port()
    sshd.prepare(layout, port)
    pid: int | None = None
    try:
        pid = sshd.start(layout, port)
        yield Sshd(layout, port, pid)
    finally:
        if pid is not None:
            _stop(pid, layout)
        else:
            sshd.stop(layout)  # start() failed half-way: fall back to its pid file


@pytest.fixture
def target(sshd_server: Sshd, tmp_path: Path) -> SshTarget:
    """Strict settings for the lab sshd, with this test's own copy of known_hosts."""
    known_hosts = tmp_path / "known_hosts"
    shutil.copyfile(sshd_server.layout.known_hosts, known_hosts)
    return SshTarget(
        host="127.0.0.1",
        port=sshd_server.port,
        user=sshd.login_user(),
        identity_file=sshd_server.layout.client_key,
        known_hosts=known_hosts,
        host_key_policy="strict",
        connect_timeout=5,
    )


@pytest.fixture
def ssh_runner(target: SshTarget) -> Iterator[SshRunner]:
    with SshRunner(target) as runner:
        yield runner


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word (no SSH banner)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]
