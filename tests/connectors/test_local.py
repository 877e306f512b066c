"""LocalRunner: argv without a shell, stdin, timeouts, and atomic writes with exact modes."""

from __future__ import annotations

import hashlib
import os
import stat
import time
import traceback
from pathlib import Path

import pytest

from wlbplan.connectors.factory import runner_for
from wlbplan.connectors.local import LocalRunner
from wlbplan.errors import CommandTimeout, RemoteCommandError
from wlbplan.lab.procs import alive
from wlbplan.limits import OUTPUT, TooLarge
from wlbplan.model.command import MASK, Command, script

BINARY = bytes(range(256)) * 64


@pytest.fixture
def runner() -> LocalRunner:
    return LocalRunner()


def test_arguments_reach_the_program_verbatim_and_nothing_is_executed(
    runner: LocalRunner, nasty_args: list[str], tmp_path: Path
) -> None:
    result = runner.run(Command(("printf", "%s\\0", *nasty_args)))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split("\0")[:-1] == nasty_args
    assert not (tmp_path / "pwned").exists()


def test_exit_code_stdout_and_stderr_are_returned(runner: LocalRunner) -> None:
    result = runner.run(script("echo out; echo err >&2; exit 3"))
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert not result.ok
    assert result.command == "sh -c 'echo out; echo err >&2; exit 3'"


def test_a_missing_program_is_exit_127_like_a_shell(runner: LocalRunner) -> None:
    result = runner.run(Command(("wlbplan-no-such-program", "x")))
    assert result.exit_code == 127
    assert "wlbplan-no-such-program" in result.stderr


def test_a_non_executable_program_is_exit_126(runner: LocalRunner, tmp_path: Path) -> None:
    program = tmp_path / "not-executable"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o644)
    assert runner.run(Command((str(program),))).exit_code == 126


def test_stdin_is_passed_byte_exact(runner: LocalRunner) -> None:
    result = runner.run(Command(("sha256sum",), stdin=BINARY))
    assert result.stdout.split()[0] == hashlib.sha256(BINARY).hexdigest()
    text = "é ü 漢字\nline two\n"
    assert runner.run(Command(("cat",), stdin=text.encode())).stdout == text


def test_without_stdin_a_reading_command_sees_eof(runner: LocalRunner) -> None:
    result = runner.run(Command(("cat",)), timeout=10)
    assert (result.exit_code, result.stdout) == (0, "")


def test_timeout_kills_the_whole_process_group_and_masks_secrets(
    runner: LocalRunner, tmp_path: Path
) -> None:
    secret = "s3cret-Token"
    pid_file = tmp_path / "child.pid"
    command = Command(
        ("sh", "-c", 'sleep 30 & echo $! > "$1"; wait', "sh", str(pid_file), secret),
        secrets=(secret,),
    )
    started = time.monotonic()
    with pytest.raises(CommandTimeout) as caught:
        runner.run(command, timeout=0.5)
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert "local is unreachable" in message
    assert "did not finish within 0.5s" in message
    assert MASK in message
    whole = "".join(traceback.format_exception(caught.value))
    assert secret not in whole
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(child), "the grandchild outlived the timeout"


def test_displayed_command_masks_secrets(runner: LocalRunner) -> None:
    result = runner.run(Command(("echo", "--password", "hunter2"), secrets=("hunter2",)))
    assert result.command == f"echo --password {MASK}"
    assert result.stdout == "--password hunter2\n"  # the program itself received it


@pytest.mark.parametrize("mode", [0o600, 0o644, 0o400])
def test_put_get_round_trip_with_exact_mode(runner: LocalRunner, tmp_path: Path, mode: int) -> None:
    path = tmp_path / "server.key"
    runner.put(BINARY, str(path), mode=mode)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert runner.get(str(path)) == BINARY
    assert sorted(os.listdir(tmp_path)) == ["server.key"]


@pytest.mark.parametrize(("umask", "mode"), [(0o077, 0o644), (0o000, 0o600)])
def test_put_mode_ignores_the_umask(
    runner: LocalRunner, tmp_path: Path, umask: int, mode: int
) -> None:
    old = os.umask(umask)
    try:
        runner.put(b"x", str(tmp_path / "f"), mode=mode)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == mode


def test_put_replaces_atomically_and_never_with_a_looser_mode(
    runner: LocalRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "server.key"
    path.write_bytes(b"old")
    path.chmod(0o644)
    seen: list[tuple[int, bytes]] = []
    real_replace = os.replace

    def spy(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        seen.append((stat.S_IMODE(os.stat(src).st_mode), Path(src).read_bytes()))
        assert path.read_bytes() == b"old"  # the target is untouched until the rename
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    runner.put(b"new secret", str(path), mode=0o600)
    assert seen == [(0o600, b"new secret")]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == b"new secret"


def test_put_replaces_a_symlink_instead_of_writing_through_it(
    runner: LocalRunner, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(b"keep me")
    link = tmp_path / "server.pem"
    link.symlink_to(elsewhere)
    runner.put(b"cert", str(link), mode=0o644)
    assert not link.is_symlink()
    assert link.read_bytes() == b"cert"
    assert elsewhere.read_bytes() == b"keep me"


def test_put_into_a_missing_directory_fails_clearly(runner: LocalRunner, tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "f"
    with pytest.raises(RemoteCommandError, match=r"cannot write .*/no/such/dir/f on local"):
        runner.put(b"x", str(missing))


def test_get_of_a_missing_file_fails_clearly(runner: LocalRunner, tmp_path: Path) -> None:
    with pytest.raises(RemoteCommandError, match=r"cannot read .*nothing-here on local"):
        runner.get(str(tmp_path / "nothing-here"))


def test_round_trips_count_commands_and_context_manager_works() -> None:
    with LocalRunner("local:lab") as runner:
        runner.run(Command(("true",)))
        runner.run(Command(("false",)))
        assert runner.round_trips == 2
        assert runner.host == "local:lab"


def test_factory_builds_a_local_runner() -> None:
    runner = runner_for("local", "xs-east-01")
    assert isinstance(runner, LocalRunner)
    assert runner.host == "local:xs-east-01"
    with pytest.raises(ValueError, match="connection must be one of local, ssh"):
        runner_for("telnet", "xs-east-01")


def test_a_failed_put_leaves_no_temporary_file_behind(runner: LocalRunner, tmp_path: Path) -> None:
    (tmp_path / "a-directory").mkdir()
    with pytest.raises(RemoteCommandError, match=r"cannot write .*a-directory"):
        runner.put(b"x", str(tmp_path / "a-directory"))
    assert sorted(os.listdir(tmp_path)) == ["a-directory"]


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_endless_output_stops_at_the_cap_and_names_it(runner: LocalRunner, stream: str) -> None:
    redirect = "" if stream == "stdout" else " >&2"
    started = time.monotonic()
    with pytest.raises(TooLarge) as caught:
        runner.run(script(f"yes wlbplan{redirect}"), timeout=60)
    assert time.monotonic() - started < 20
    assert f"{OUTPUT}" in str(caught.value)
    assert "yes wlbplan" in str(caught.value)


def test_output_just_under_the_cap_is_returned_whole(runner: LocalRunner) -> None:
    result = runner.run(Command(("head", "-c", str(OUTPUT.size), "/dev/zero")))
    assert result.ok
    assert len(result.stdout) == OUTPUT.size


def test_get_of_an_endless_file_stops_at_the_cap(runner: LocalRunner) -> None:
    with pytest.raises(TooLarge, match="/dev/zero"):
        runner.get("/dev/zero")
