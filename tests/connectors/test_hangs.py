"""Commands that never end: every command on a host is bounded (the runner's command
timeout, when the caller names none), and a stop (Ctrl-C) ends what is in flight on both
connectors at once — local process groups killed, SSH connections closed — and refuses
what would start after it."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from test_ssh import other_identity, with_

from wlbplan.connectors import stop
from wlbplan.connectors.base import Runner
from wlbplan.connectors.factory import runner_for
from wlbplan.connectors.local import LocalRunner
from wlbplan.connectors.ssh import SshRunner, SshTarget
from wlbplan.errors import CommandTimeout, ConnectError, Interrupted
from wlbplan.lab.procs import alive
from wlbplan.model.command import Command, CommandResult, script

if TYPE_CHECKING:
    from conftest import Sshd


def _hang(pid_file: Path) -> Command:
    """A command that never ends, with a grandchild that would outlive a careless kill.
    The file gets the shell's pid and the grandchild's."""
    return script('sleep 3600 & echo $$ $! > "$1"; wait', str(pid_file))


@pytest.fixture
def leftovers() -> Iterator[list[Path]]:
    """Pid files of hanging commands: over SSH the remote processes outlive the channel
    (the lab's sshd cannot signal sessions), so the test ends them itself, by pid."""
    files: list[Path] = []
    yield files
    for pid_file in files:
        if pid_file.exists():
            for pid in pid_file.read_text().split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)


def _gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not alive(pid)


def _grandchild(pid_file: Path, within: float = 10.0) -> int:
    deadline = time.monotonic() + within
    while not (pid_file.exists() and len(pid_file.read_text().split()) == 2):
        assert time.monotonic() < deadline, "the command never started"
        time.sleep(0.02)
    return int(pid_file.read_text().split()[1])


@pytest.fixture
def runners(target: SshTarget) -> Iterator[Callable[[str, float | None], Runner]]:
    """Either connector, with a given command timeout; all closed afterwards."""
    made: list[Runner] = []

    def make(kind: str, command_timeout: float | None) -> Runner:
        runner: Runner = (LocalRunner(command_timeout=command_timeout) if kind == "local"
                          else SshRunner(with_(target, command_timeout=command_timeout)))
        made.append(runner)
        return runner

    yield make
    for runner in made:
        runner.close()


KINDS = [pytest.param("local"), pytest.param("ssh", marks=pytest.mark.ssh)]


@pytest.mark.parametrize("kind", KINDS)
def test_a_command_without_a_timeout_of_its_own_gets_the_runners(
        runners: Callable[[str, float | None], Runner], kind: str, tmp_path: Path,
        leftovers: list[Path]) -> None:
    leftovers.append(tmp_path / "pid")
    runner = runners(kind, 0.5)
    started = time.monotonic()
    with pytest.raises(CommandTimeout) as caught:
        runner.run(_hang(tmp_path / "pid"))
    assert time.monotonic() - started < 5
    assert isinstance(caught.value, ConnectError)  # the host counts as unreachable
    assert f"{runner.host} is unreachable" in str(caught.value)
    assert "did not finish within 0.5s" in str(caught.value)
    assert "--timeout SECONDS, or defaults.timeout" in str(caught.value)
    if kind == "local":  # over SSH the remote process is the server's to end
        assert _gone(_grandchild(tmp_path / "pid")), "the grandchild outlived the timeout"
    # A timeout given by the caller wins over the runner's, both ways.
    assert runner.run(script("sleep 1; echo late"), timeout=10).stdout == "late\n"


def test_the_factory_gives_every_runner_the_command_timeout(target: SshTarget) -> None:
    local = runner_for("local", "xs", command_timeout=7)
    assert isinstance(local, LocalRunner)
    remote = runner_for("ssh", "127.0.0.1", target, command_timeout=7)
    assert isinstance(remote, SshRunner)
    assert remote.target.command_timeout == 7
    with pytest.raises(ValueError, match="command_timeout"):
        LocalRunner(command_timeout=float("nan"))


def _run_in_thread(runner: Runner, command: Command) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def work() -> None:
        try:
            outcome.append(runner.run(command))
        except Exception as exc:  # what the worker saw is the assertion
            outcome.append(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread, outcome


@pytest.mark.parametrize("kind", KINDS)
def test_a_stop_ends_the_command_in_flight_and_refuses_the_next(
        runners: Callable[[str, float | None], Runner], kind: str, tmp_path: Path,
        leftovers: list[Path]) -> None:
    leftovers.append(tmp_path / "pid")
    runner = runners(kind, None)  # no timeout at all: only the stop can end it
    thread, outcome = _run_in_thread(runner, _hang(tmp_path / "pid"))
    grandchild = _grandchild(tmp_path / "pid")
    started = time.monotonic()
    stop.stop_all()
    thread.join(5)
    assert not thread.is_alive(), "the command outlived the stop"
    assert time.monotonic() - started < 1.5
    assert len(outcome) == 1
    assert isinstance(outcome[0], Interrupted), outcome
    if kind == "local":
        assert _gone(grandchild), "the command's process group outlived the stop"
    else:
        assert isinstance(runner, SshRunner)
        assert not runner.connected, "the SSH connection was left open"
    with pytest.raises(Interrupted):
        runner.run(Command(("true",)))
    stop.reset()
    result = runner.run(Command(("echo", "again")))
    assert isinstance(result, CommandResult)
    assert result.stdout == "again\n"



def test_a_stop_ends_an_ssh_connect_that_waits_for_a_banner(silent_port: int,
                                                            tmp_path: Path) -> None:
    target = SshTarget("127.0.0.1", port=silent_port, connect_timeout=60,
                       identity_file=other_identity(tmp_path / "id"))
    with SshRunner(target) as runner:
        thread, outcome = _run_in_thread(runner, Command(("true",)))
        time.sleep(0.5)  # in the handshake, waiting for the banner
        started = time.monotonic()
        stop.stop_all()
        thread.join(5)
        assert not thread.is_alive(), "the connect outlived the stop"
        assert time.monotonic() - started < 1.5
        assert isinstance(outcome[0], Interrupted), outcome


@pytest.mark.ssh
def test_a_stop_before_anything_started_runs_nothing(sshd_server: Sshd, target: SshTarget,
                                                     tmp_path: Path) -> None:
    stop.stop_all()
    for runner in (LocalRunner(), SshRunner(target)):
        with pytest.raises(Interrupted):
            runner.run(script('touch "$1"', str(tmp_path / "ran")))
        with pytest.raises(Interrupted):
            runner.put(b"x", str(tmp_path / "put"))
    assert not (tmp_path / "ran").exists()
    assert not (tmp_path / "put").exists()


@pytest.mark.ssh
def test_a_file_read_that_never_gets_an_answer_is_bounded_too(sshd_server: Sshd,
                                                              target: SshTarget,
                                                              tmp_path: Path) -> None:
    """SFTP is bounded like a command: opening a FIFO blocks the server's sftp-server
    until a writer comes (never), so the read never gets an answer."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with SshRunner(with_(target, command_timeout=0.5)) as runner:
        started = time.monotonic()
        with pytest.raises(CommandTimeout) as caught:
            runner.get(str(fifo))
        assert time.monotonic() - started < 5
        assert f"{runner.host} is unreachable: read {fifo} over SFTP did not finish " \
               "within 0.5s" in str(caught.value)
        # The hung connection was closed; the next command gets a new one.
        assert runner.run(Command(("echo", "back")), timeout=30).stdout == "back\n"
        assert runner.connects == 2
    with contextlib.suppress(OSError):  # let the server's sftp-server go
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
