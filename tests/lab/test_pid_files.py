"""The lab signals only the daemons it started, never whatever process a pid file names.

A pid file goes stale after a reboot, or when its daemon died and the pid was reused;
`lab down` (often run as root) must then leave that process alone. Each impostor here is
a process this test starts and stops by its own pid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from wlbplan.lab import control, stunnel
from wlbplan.lab.procs import alive

pytestmark = pytest.mark.lab

WLBPLAN = [sys.executable, "-m", "wlbplan"]
Start = Callable[..., int]


def lab_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*WLBPLAN, "lab", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def impostor() -> Iterator[Start]:
    """Start an unrelated process; every one still alive at teardown is killed by pid."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*argv: str) -> int:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        started.append(proc)
        return proc.pid

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


@pytest.fixture
def lab_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "lab"
    yield path
    control.down(path)


def _plant(pid_file: Path, pid: int) -> None:
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{pid}\n")


def test_a_stale_pid_file_never_gets_its_process_signalled(lab_dir: Path,
                                                           impostor: Start) -> None:
    lab = control.up(lab_dir, hosts=1)
    layout = lab.layout("pool1")
    control.down(lab_dir)
    sleeper = impostor("sleep", "300")
    _plant(layout.stunnel_pid, sleeper)
    _plant(lab.ssh.pid_file, sleeper)  # sshd's pid file is judged the same way

    status = lab_cli("status", "--dir", str(lab_dir))
    assert status.returncode == 0, status.stderr
    assert f"pid {sleeper}" not in status.stdout
    assert "DOWN" in status.stdout
    assert control.pids(lab) == {}

    down = lab_cli("down", "--dir", str(lab_dir))
    assert down.returncode == 0, down.stderr
    assert "nothing was running" in down.stdout
    assert alive(sleeper)

    # The appliance's restart command stops "its" stunnel by the same pid file first.
    _plant(layout.stunnel_pid, sleeper)
    restarted = stunnel.restart(layout)
    assert restarted.returncode == 0, restarted.stderr
    assert alive(sleeper)
    assert stunnel.pid(layout) not in (None, sleeper)
    control.down(lab_dir)
    assert alive(sleeper)

    # `lab up` refuses a running lab; a stale pid file is no running lab.
    _plant(layout.stunnel_pid, sleeper)
    up = lab_cli("up", "--dir", str(lab_dir), "--hosts", "1")
    assert up.returncode == 0, up.stderr
    assert alive(sleeper)
    assert set(control.pids(control.load(lab_dir))) == {"pool1/stunnel"}


def test_a_process_with_the_labs_config_in_its_arguments_is_not_the_daemon(
        lab_dir: Path, impostor: Start) -> None:
    """Another executable started with the same arguments (the config path) is not it."""
    lab = control.up(lab_dir, hosts=1)
    layout = lab.layout("pool1")
    control.down(lab_dir)
    other = impostor("sh", "-c", "exec sleep 300", str(layout.stunnel_conf))
    time.sleep(0.1)  # let `sh` exec `sleep`: same pid, another executable
    _plant(layout.stunnel_pid, other)
    assert control.pids(lab) == {}
    assert control.down(lab_dir) == {}
    assert alive(other)


def test_a_pid_file_older_than_its_process_is_stale(lab_dir: Path) -> None:
    """The right executable and config, but started after the pid file was written: the
    pid was reused (here: the lab's own stunnel, its pid file dated back an hour)."""
    lab = control.up(lab_dir, hosts=1)
    layout = lab.layout("pool1")
    pid = control.pids(lab)["pool1/stunnel"]
    hour_ago = time.time() - 3600
    os.utime(layout.stunnel_pid, (hour_ago, hour_ago))
    try:
        assert control.pids(lab) == {}
        assert control.down(lab_dir) == {}
        assert alive(pid)
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGTERM)


def test_pid_files_that_are_not_plain_pids_are_stale(lab_dir: Path, impostor: Start) -> None:
    lab = control.up(lab_dir, hosts=1)
    layout = lab.layout("pool1")
    control.down(lab_dir)
    sleeper = impostor("sleep", "300")
    target = layout.stunnel_pid.with_name("elsewhere.pid")
    target.write_text(f"{sleeper}\n")
    layout.stunnel_pid.symlink_to(target)
    assert control.pids(lab) == {}
    layout.stunnel_pid.unlink()
    for text in ("", "-1", "1", "0x10", f"{sleeper} {sleeper}", "9" * 40):
        layout.stunnel_pid.write_text(text)
        assert control.pids(lab) == {}, text
    assert control.down(lab_dir) == {}
    assert alive(sleeper)
