"""SshRunner against a real sshd on 127.0.0.1: quoting, stdin, files, host keys, errors.

Only 127.0.0.1 is contacted; the DNS case is simulated.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import fabric
import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from wlbplan.connectors.factory import runner_for
from wlbplan.connectors.ssh import SshRunner, SshTarget
from wlbplan.errors import CommandTimeout, ConnectError, RemoteCommandError
from wlbplan.lab.pki import write_private
from wlbplan.lab.procs import free_port
from wlbplan.limits import OUTPUT, TooLarge
from wlbplan.model.command import MASK, Command, script

if TYPE_CHECKING:  # the fixture's type, for readers; conftest is not importable
    from conftest import Sshd

BINARY = bytes(range(256)) * 64


def fingerprint_of(public_line: str) -> str:
    """OpenSSH's SHA256 fingerprint of an ``ssh-TYPE BASE64`` line, computed independently."""
    blob = base64.b64decode(public_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def other_public_line(kind: str = "ed25519") -> str:
    key = (
        ed25519.Ed25519PrivateKey.generate()
        if kind == "ed25519"
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


def other_identity(path: Path) -> Path:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    write_private(path, pem)
    return path


def with_(target: SshTarget, **changes: object) -> SshTarget:
    fields = {f: getattr(target, f) for f in target.__dataclass_fields__}
    return SshTarget(**{**fields, **changes})  # type: ignore[arg-type]


def connect_error(target: SshTarget) -> str:
    with SshRunner(target) as runner, pytest.raises(ConnectError) as caught:
        runner.run(Command(("true",)))
    return str(caught.value)


# --- commands ------------------------------------------------------------------------


@pytest.mark.ssh
def test_arguments_reach_the_remote_program_verbatim_and_nothing_is_executed(
    ssh_runner: SshRunner, nasty_args: list[str], tmp_path: Path
) -> None:
    result = ssh_runner.run(Command(("printf", "%s\\0", *nasty_args)))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split("\0")[:-1] == nasty_args
    assert not (tmp_path / "pwned").exists()


@pytest.mark.ssh
def test_exit_code_stdout_and_stderr_are_returned(ssh_runner: SshRunner) -> None:
    result = ssh_runner.run(script("echo out; echo err >&2; exit 3"))
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
    missing = ssh_runner.run(Command(("wlbplan-no-such-program",)))
    assert missing.exit_code == 127
    assert "wlbplan-no-such-program" in missing.stderr


@pytest.mark.ssh
def test_stdin_is_streamed_byte_exact_and_fast(ssh_runner: SshRunner) -> None:
    big = os.urandom(1024 * 1024)
    started = time.monotonic()
    result = ssh_runner.run(Command(("sha256sum",), stdin=big), timeout=30)
    # invoke's own stdin pump moves one byte per 10 ms: this would take ~3 hours.
    assert time.monotonic() - started < 15
    assert result.stdout.split()[0] == hashlib.sha256(big).hexdigest()
    text = "é ü 漢字\nline two\n"
    assert ssh_runner.run(Command(("cat",), stdin=text.encode())).stdout == text


@pytest.mark.ssh
def test_without_stdin_a_reading_command_sees_eof(ssh_runner: SshRunner) -> None:
    result = ssh_runner.run(Command(("cat",)), timeout=10)
    assert (result.exit_code, result.stdout) == (0, "")


@pytest.mark.ssh
def test_multibyte_output_survives_read_chunk_boundaries(ssh_runner: SshRunner) -> None:
    text = "é漢🙂" * 20000  # 180 kB; characters of 2, 3 and 4 bytes straddle every chunk
    assert ssh_runner.run(Command(("cat",), stdin=text.encode())).stdout == text


@pytest.mark.ssh
def test_timeout_is_a_clear_error_with_secrets_masked_and_the_runner_survives(
    ssh_runner: SshRunner,
) -> None:
    secret = "s3cret-Token"
    command = Command(("sh", "-c", "sleep 30", "sh", secret), secrets=(secret,))
    started = time.monotonic()
    with pytest.raises(CommandTimeout) as caught:
        ssh_runner.run(command, timeout=0.5)
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert f"{ssh_runner.host} is unreachable" in message
    assert "did not finish within 0.5s" in message
    assert MASK in message
    assert secret not in "".join(traceback.format_exception(caught.value))
    assert ssh_runner.run(Command(("echo", "still here"))).stdout == "still here\n"


@pytest.mark.ssh
def test_displayed_command_masks_secrets(ssh_runner: SshRunner) -> None:
    result = ssh_runner.run(Command(("printf", "%s", "hunter2"), secrets=("hunter2",)))
    assert result.command == f"printf %s {MASK}"
    assert result.stdout == "hunter2"


@pytest.mark.ssh
def test_a_dropped_connection_is_a_connect_error_and_the_next_run_reconnects(
    ssh_runner: SshRunner,
) -> None:
    # $PPID of the remote shell is sshd's session process: killing it drops the link.
    with pytest.raises(ConnectError, match="was lost while running"):
        ssh_runner.run(script("kill -KILL $PPID; sleep 5"), timeout=20)
    assert not ssh_runner.connected
    assert ssh_runner.run(Command(("echo", "back"))).stdout == "back\n"


# --- connection reuse ----------------------------------------------------------------


@pytest.mark.ssh
def test_one_connection_is_reused_and_each_run_is_one_exec_channel(
    ssh_runner: SshRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions: list[object] = []
    real_create = fabric.Connection.create_session

    def counting(self: fabric.Connection) -> object:
        channel = real_create(self)
        sessions.append(channel)
        return channel

    monkeypatch.setattr(fabric.Connection, "create_session", counting)
    assert not ssh_runner.connected  # lazy: nothing opened before first use
    client_ports = {
        ssh_runner.run(script('echo "$SSH_CLIENT"')).stdout.split()[1] for _ in range(4)
    }
    ssh_runner.put(b"x", str(tmp_path / "f"))
    assert ssh_runner.get(str(tmp_path / "f")) == b"x"
    client_ports.add(ssh_runner.run(script('echo "$SSH_CLIENT"')).stdout.split()[1])
    assert len(client_ports) == 1, "each run must reuse the same TCP connection"
    assert len(sessions) == 5
    assert ssh_runner.round_trips == 5


@pytest.mark.ssh
def test_close_and_context_manager_close_the_connection(target: SshTarget) -> None:
    with SshRunner(target) as runner:
        runner.run(Command(("true",)))
        assert runner.connected
    assert not runner.connected
    runner.run(Command(("true",)))  # lazily reopened after close
    assert runner.connected
    runner.close()
    assert not runner.connected


# --- files ---------------------------------------------------------------------------


@pytest.mark.ssh
@pytest.mark.parametrize("mode", [0o600, 0o644, 0o400])
def test_put_get_round_trip_with_exact_mode(
    ssh_runner: SshRunner, tmp_path: Path, mode: int
) -> None:
    path = tmp_path / "server.key"
    ssh_runner.put(BINARY, str(path), mode=mode)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert ssh_runner.get(str(path)) == BINARY
    assert sorted(os.listdir(tmp_path)) == ["known_hosts", "server.key"]  # nothing left over


@pytest.mark.ssh
def test_put_never_exposes_the_file_with_a_looser_mode(
    ssh_runner: SshRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "server.key"
    path.write_bytes(b"old")
    path.chmod(0o644)
    writes: list[tuple[int, int]] = []
    renames: list[tuple[int, int, bytes]] = []
    real_write = paramiko.SFTPFile.write
    real_rename = paramiko.SFTPClient.posix_rename

    def spy_write(self: paramiko.SFTPFile, data: bytes) -> None:
        # sshd is local, so the staged file can be inspected as it is written.
        staged = next(tmp_path.glob(".wlbplan-*/server.key"))
        writes.append(
            (stat.S_IMODE(staged.stat().st_mode), stat.S_IMODE(staged.parent.stat().st_mode))
        )
        real_write(self, data)

    def spy_rename(self: paramiko.SFTPClient, old: str, new: str) -> None:
        assert path.read_bytes() == b"old"  # the target is untouched until the rename
        renames.append(
            (
                stat.S_IMODE(os.stat(old).st_mode),
                stat.S_IMODE(os.stat(os.path.dirname(old)).st_mode),
                Path(old).read_bytes(),
            )
        )
        real_rename(self, old, new)

    monkeypatch.setattr(paramiko.SFTPFile, "write", spy_write)
    monkeypatch.setattr(paramiko.SFTPClient, "posix_rename", spy_rename)
    ssh_runner.put(b"new secret", str(path), mode=0o600)
    assert writes
    assert all(w == (0o600, 0o700) for w in writes)
    assert renames == [(0o600, 0o700, b"new secret")]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == b"new secret"
    assert not list(tmp_path.glob(".wlbplan-*"))


@pytest.mark.ssh
def test_file_errors_name_the_path_and_host(ssh_runner: SshRunner, tmp_path: Path) -> None:
    host = re.escape(ssh_runner.host)
    with pytest.raises(RemoteCommandError, match=rf"cannot read .*nothing-here on {host}: No such"):
        ssh_runner.get(str(tmp_path / "nothing-here"))
    with pytest.raises(RemoteCommandError, match=rf"cannot write .*/no/such/f on {host}: No such"):
        ssh_runner.put(b"x", str(tmp_path / "no" / "such" / "f"))


# --- host keys -----------------------------------------------------------------------


@pytest.mark.ssh
def test_strict_policy_with_the_right_known_hosts_connects(ssh_runner: SshRunner) -> None:
    assert ssh_runner.target.host_key_policy == "strict"
    assert ssh_runner.run(Command(("echo", "ok"))).stdout == "ok\n"


@pytest.mark.ssh
@pytest.mark.parametrize("policy", ["strict", "accept-new"])
@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_a_changed_host_key_is_refused_naming_both_fingerprints(
    sshd_server: Sshd, target: SshTarget, policy: str, kind: str
) -> None:
    impostor = other_public_line(kind)
    line = f"[127.0.0.1]:{sshd_server.port} {impostor}\n"
    target.known_hosts.write_text(line)
    message = connect_error(with_(target, host_key_policy=policy))
    assert "HOST KEY MISMATCH" in message
    assert f"127.0.0.1:{sshd_server.port}" in message
    assert fingerprint_of(impostor) in message  # expected
    assert fingerprint_of(sshd_server.host_public_line) in message  # offered
    assert "ssh-keygen -R" in message
    assert target.known_hosts.read_text() == line  # never "fixed" behind the user's back


@pytest.mark.ssh
@pytest.mark.parametrize("state", ["empty", "missing", "other-hosts-only"])
def test_an_unknown_host_is_refused_under_strict_with_a_way_to_add_it(
    sshd_server: Sshd, target: SshTarget, state: str
) -> None:
    before: str | None = None
    if state == "missing":
        target.known_hosts.unlink()
    else:
        before = "" if state == "empty" else f"[127.0.0.1]:1 {other_public_line()}\n"
        target.known_hosts.write_text(before)
    message = connect_error(target)
    assert "unknown" in message
    assert str(target.known_hosts) in message
    assert f"ssh-keyscan -p {sshd_server.port} 127.0.0.1 >> {target.known_hosts}" in message
    assert "accept-new" in message
    assert fingerprint_of(sshd_server.host_public_line) in message
    if before is None:
        assert not target.known_hosts.exists()
    else:
        assert target.known_hosts.read_text() == before


@pytest.mark.ssh
def test_accept_new_records_an_unknown_host_then_strict_trusts_it(
    sshd_server: Sshd, target: SshTarget, tmp_path: Path
) -> None:
    known_hosts = tmp_path / "fresh" / "known_hosts"  # neither file nor folder exist yet
    with SshRunner(with_(target, known_hosts=known_hosts, host_key_policy="accept-new")) as runner:
        assert runner.run(Command(("echo", "hi"))).stdout == "hi\n"
    assert (
        known_hosts.read_text()
        == f"[127.0.0.1]:{sshd_server.port} {sshd_server.host_public_line}\n"
    )
    with SshRunner(with_(target, known_hosts=known_hosts)) as runner:
        assert runner.run(Command(("echo", "hi"))).stdout == "hi\n"


@pytest.mark.ssh
def test_accept_new_appends_without_touching_other_lines(
    sshd_server: Sshd, target: SshTarget
) -> None:
    existing = f"# my hosts\n[127.0.0.1]:1 {other_public_line()}"  # no final newline
    target.known_hosts.write_text(existing)
    with SshRunner(with_(target, host_key_policy="accept-new")) as runner:
        runner.run(Command(("true",)))
    assert target.known_hosts.read_text() == (
        f"{existing}\n[127.0.0.1]:{sshd_server.port} {sshd_server.host_public_line}\n"
    )


@pytest.mark.ssh
def test_accept_new_records_a_host_once_when_connections_race(
    sshd_server: Sshd, target: SshTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two targets on one host in one run: several connections find the host unknown at
    once (each read known_hosts before any recorded it); the key is written once."""
    from wlbplan.connectors import ssh_connect

    known_hosts = tmp_path / "fresh" / "known_hosts"
    racers = 4
    everyone_read = threading.Barrier(racers, timeout=20)
    real_install = ssh_connect.install_host_keys

    def install_then_wait(client: paramiko.SSHClient, target: SshTarget) -> None:
        real_install(client, target)
        everyone_read.wait()  # nobody connects before all have read the empty file

    monkeypatch.setattr(ssh_connect, "install_host_keys", install_then_wait)
    accept_new = with_(target, known_hosts=known_hosts, host_key_policy="accept-new")
    runners = [SshRunner(accept_new) for _ in range(racers)]
    outputs: list[str] = []

    def connect(runner: SshRunner) -> None:
        outputs.append(runner.run(Command(("echo", "hi"))).stdout)

    threads = [threading.Thread(target=connect, args=(r,)) for r in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for runner in runners:
        runner.close()
    assert outputs == ["hi\n"] * racers
    assert known_hosts.read_text() == (
        f"[127.0.0.1]:{sshd_server.port} {sshd_server.host_public_line}\n"
    )


@pytest.mark.ssh
def test_accept_new_refuses_a_key_recorded_meanwhile_that_differs(
    sshd_server: Sshd, target: SshTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another run recorded another key for this host after this one read the file."""
    from wlbplan.connectors import ssh_connect

    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    impostor = f"[127.0.0.1]:{sshd_server.port} {other_public_line()}\n"
    real_install = ssh_connect.install_host_keys

    def install_then_someone_writes(client: paramiko.SSHClient, target: SshTarget) -> None:
        real_install(client, target)
        known_hosts.write_text(impostor)

    monkeypatch.setattr(ssh_connect, "install_host_keys", install_then_someone_writes)
    message = connect_error(with_(target, known_hosts=known_hosts,
                                  host_key_policy="accept-new"))
    assert "HOST KEY MISMATCH" in message
    assert known_hosts.read_text() == impostor


@pytest.mark.ssh
@pytest.mark.parametrize("policy", ["strict", "accept-new"])
def test_a_revoked_host_key_is_refused(sshd_server: Sshd, target: SshTarget, policy: str) -> None:
    original = target.known_hosts.read_text()
    target.known_hosts.write_text(f"{original}@revoked * {sshd_server.host_public_line}\n")
    before = target.known_hosts.read_text()
    message = connect_error(with_(target, host_key_policy=policy))
    assert "@revoked" in message
    assert fingerprint_of(sshd_server.host_public_line) in message
    assert target.known_hosts.read_text() == before


@pytest.mark.ssh
def test_malformed_known_hosts_lines_are_skipped(target: SshTarget) -> None:
    good = target.known_hosts.read_text()
    target.known_hosts.write_text(f"garbage\nhost ssh-ed25519 !!!notbase64!!!\n{good}")
    with SshRunner(target) as runner:
        assert runner.run(Command(("true",))).ok


# --- nothing from the environment ----------------------------------------------------


@pytest.fixture
def hostile_home(sshd_server: Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ~/.ssh that would change port, user and key, and trusts the server, if read."""
    home = tmp_path / "home"
    dot_ssh = home / ".ssh"
    dot_ssh.mkdir(parents=True)
    (dot_ssh / "config").write_text(
        f"Host *\n  Port {free_port()}\n  User nobody\n"
        f"  IdentityFile {sshd_server.layout.client_key}\n"
        f"  ProxyCommand touch {tmp_path / 'proxy-ran'}\n"  # a local command, if read
    )
    (dot_ssh / "known_hosts").write_text(sshd_server.layout.known_hosts.read_text())
    write_private(dot_ssh / "id_ed25519", sshd_server.layout.client_key.read_bytes())
    monkeypatch.setenv("HOME", str(home))

    class NoAgent:
        def __init__(self) -> None:
            raise AssertionError("wlbplan must never ask an ssh-agent")

    monkeypatch.setattr(paramiko.client, "Agent", NoAgent)
    monkeypatch.setenv("SSH_AUTH_SOCK", str(tmp_path / "agent.sock"))
    return home


@pytest.mark.ssh
@pytest.mark.usefixtures("hostile_home")
def test_ssh_config_is_not_read(target: SshTarget, tmp_path: Path) -> None:
    with SshRunner(target) as runner:
        client, _, server_port = runner.run(script('echo "$SSH_CLIENT"')).stdout.split()
    assert (client, server_port) == ("127.0.0.1", str(target.port))
    assert not (tmp_path / "proxy-ran").exists()


@pytest.mark.ssh
@pytest.mark.usefixtures("hostile_home")
def test_user_known_hosts_is_not_read(target: SshTarget) -> None:
    target.known_hosts.write_text("")
    assert "unknown" in connect_error(target)


@pytest.mark.ssh
@pytest.mark.usefixtures("hostile_home")
def test_only_the_given_identity_is_offered(target: SshTarget, tmp_path: Path) -> None:
    wrong = other_identity(tmp_path / "wrong_key")
    message = connect_error(with_(target, identity_file=wrong))
    assert "authentication failed" in message


# --- no identity_file: OpenSSH's defaults and the agent, as documented -----------------


@pytest.fixture
def empty_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME with an empty ~/.ssh and no agent."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True, mode=0o700)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return home


@pytest.fixture
def authorized_ecdsa(sshd_server: Sshd) -> Iterator[tuple[bytes, str]]:
    """An ECDSA key the server accepts for the duration of the test: (private PEM, public)."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    authorized = sshd_server.layout.authorized_keys
    before = authorized.read_text()
    authorized.write_text(before.rstrip("\n") + f"\n{public}\n")
    try:
        yield private, public
    finally:
        authorized.write_text(before)


def _without_identity(target: SshTarget) -> SshTarget:
    return with_(target, identity_file=None)


@pytest.mark.ssh
def test_without_identity_file_the_default_key_files_are_offered(
    target: SshTarget, empty_home: Path, authorized_ecdsa: tuple[bytes, str]
) -> None:
    write_private(empty_home / ".ssh" / "id_ecdsa", authorized_ecdsa[0])
    with SshRunner(_without_identity(target)) as runner:
        assert runner.run(Command(("echo", "by default"))).stdout == "by default\n"


@pytest.fixture
def agent(sshd_server: Sshd, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A real ssh-agent (stopped by its pid) holding the lab's client key."""
    if shutil.which("ssh-agent") is None or shutil.which("ssh-add") is None:
        pytest.skip("ssh-agent/ssh-add are not installed (openssh-client)")
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert time.monotonic() < deadline, "ssh-agent did not start"
            time.sleep(0.02)
        added = subprocess.run(["ssh-add", str(sshd_server.layout.client_key)],
                               env={**os.environ, "SSH_AUTH_SOCK": str(sock)},
                               capture_output=True, text=True, timeout=10, check=False)
        assert added.returncode == 0, added.stderr
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        yield sock
    finally:
        proc.kill()
        proc.wait(10)


@pytest.mark.ssh
def test_without_identity_file_the_agent_is_offered(
    target: SshTarget, empty_home: Path, agent: Path
) -> None:
    with SshRunner(_without_identity(target)) as runner:
        assert runner.run(Command(("echo", "by agent"))).stdout == "by agent\n"


@pytest.mark.ssh
def test_without_identity_file_and_nothing_to_offer_the_error_says_what_was_tried(
    target: SshTarget, empty_home: Path
) -> None:
    message = connect_error(_without_identity(target))
    assert "no ssh.identity_file" in message
    assert "ssh-agent" in message
    assert "~/.ssh/id_rsa" in message


@pytest.mark.ssh
def test_a_spec_without_identity_file_logs_in_with_the_defaults(
    sshd_server: Sshd, target: SshTarget, empty_home: Path, authorized_ecdsa: tuple[bytes, str],
    tmp_path: Path
) -> None:
    from wlbplan.run.sessions import open_sessions
    from wlbplan.spec import load_spec

    write_private(empty_home / ".ssh" / "id_ecdsa", authorized_ecdsa[0])
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(
        "version: 1\n"
        "defaults:\n"
        f"  ssh: {{user: {target.user}, port: {target.port}, "
        f"known_hosts: {target.known_hosts}}}\n"
        "targets:\n"
        "  - name: t1\n"
        "    pool: {coordinator: 127.0.0.1}\n"
        "    wlb: {address: wlb.example.com, ssh_host: 127.0.0.1}\n"
        "    certificate: {source: self-signed}\n"
    )
    spec = load_spec(spec_path)
    with open_sessions(spec, spec.targets[0]) as sessions:
        assert sessions.pool.run(Command(("echo", "spec"))).stdout == "spec\n"


# --- connection errors ---------------------------------------------------------------


@pytest.mark.ssh
def test_a_wrong_identity_names_the_user_and_key(target: SshTarget, tmp_path: Path) -> None:
    wrong = other_identity(tmp_path / "wrong_key")
    message = connect_error(with_(target, identity_file=wrong))
    assert "authentication failed" in message
    assert repr(target.user) in message
    assert str(wrong) in message
    assert f"127.0.0.1:{target.port}" in message


def test_a_missing_identity_file_is_named(tmp_path: Path) -> None:
    target = SshTarget("127.0.0.1", port=free_port(), identity_file=tmp_path / "nope")
    message = connect_error(target)
    assert f"identity file {tmp_path / 'nope'}" in message
    assert "does not exist" in message


def test_a_closed_port_is_connection_refused(tmp_path: Path) -> None:
    port = free_port()
    target = SshTarget(
        "127.0.0.1", port=port, identity_file=other_identity(tmp_path / "id"), connect_timeout=5
    )
    message = connect_error(target)
    assert f"connection refused by 127.0.0.1:{port}" in message



def test_a_silent_server_times_out(silent_port: int, tmp_path: Path) -> None:
    target = SshTarget(
        "127.0.0.1",
        port=silent_port,
        identity_file=other_identity(tmp_path / "id"),
        connect_timeout=0.5,  # also proves sub-second timeouts are honoured
    )
    started = time.monotonic()
    message = connect_error(target)
    assert time.monotonic() - started < 5
    assert f"timed out after 0.5s connecting to 127.0.0.1:{silent_port}" in message


def test_a_silent_server_is_one_clear_error_and_no_traceback(silent_port: int,
                                                             tmp_path: Path) -> None:
    """wlbplan as operators run it: paramiko's transport thread must not print its own
    tracebacks ("Error reading SSH protocol banner") beside wlbplan's message."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\n"
        "defaults:\n"
        f"  ssh: {{port: {silent_port}, identity_file: {other_identity(tmp_path / 'id')}, "
        f"known_hosts: {tmp_path / 'known_hosts'}, connect_timeout: 1}}\n"
        "targets:\n"
        "  - name: t1\n"
        "    pool: {coordinator: 127.0.0.1}\n"
        "    wlb: {address: wlb.example.com, ssh_host: 127.0.0.1}\n"
        "    certificate: {source: self-signed}\n"
    )
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NO_COLOR": "1",
           "HOME": str(tmp_path)}
    for command in ("inspect", "plan", "audit"):
        result = subprocess.run([sys.executable, "-m", "wlbplan", command, str(spec)],
                                capture_output=True, text=True, timeout=60, env=env,
                                check=False)
        assert result.returncode == 1, result.stderr
        assert f"timed out after 1s connecting to 127.0.0.1:{silent_port}" in \
            result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        assert "Exception (client)" not in result.stderr
        assert "SSH protocol banner" not in result.stderr


def test_an_unresolvable_name_is_a_dns_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_dns(host: str, *args: object, **kwargs: object) -> object:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)  # nothing leaves this machine
    target = SshTarget("wlb.example.invalid", identity_file=other_identity(tmp_path / "id"))
    message = connect_error(target)
    assert "cannot resolve host name 'wlb.example.invalid'" in message
    assert "Name or service not known" in message


# --- values --------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["", "root@h", "h:22", "-oProxyCommand=x", "a b", "h/x"])
def test_target_rejects_host_strings_fabric_would_reinterpret(host: str) -> None:
    with pytest.raises(ValueError, match="invalid SSH host"):
        SshTarget(host)


def test_target_validates_policy_port_and_timeout() -> None:
    with pytest.raises(ValueError, match="host_key_policy"):
        SshTarget("h", host_key_policy="yolo")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="port"):
        SshTarget("h", port=0)
    with pytest.raises(ValueError, match="connect_timeout"):
        SshTarget("h", connect_timeout=0)
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="command_timeout"):
            SshTarget("h", command_timeout=bad)
    assert SshTarget("::1", port=2222).address == "[::1]:2222"
    assert SshTarget("h").known_hosts_name == "h"
    assert SshTarget("h", port=2222).known_hosts_name == "[h]:2222"


def test_factory_builds_an_ssh_runner_without_connecting() -> None:
    defaults = SshTarget("placeholder", port=2222, user="admin")
    runner = runner_for("ssh", "xs-east-01.example.com", defaults)
    assert isinstance(runner, SshRunner)
    assert runner.target.host == "xs-east-01.example.com"
    assert (runner.target.port, runner.target.user) == (2222, "admin")
    assert runner.host == "admin@xs-east-01.example.com:2222"
    assert not runner.connected
    with pytest.raises(ValueError, match="needs SSH settings"):
        runner_for("ssh", "xs-east-01.example.com")


@pytest.mark.ssh
def test_a_failed_put_leaves_no_staging_behind(ssh_runner: SshRunner, tmp_path: Path) -> None:
    (tmp_path / "a-directory").mkdir()
    with pytest.raises(RemoteCommandError, match=r"cannot write .*a-directory"):
        ssh_runner.put(b"x", str(tmp_path / "a-directory"))
    assert not list(tmp_path.glob(".wlbplan-*"))


def test_a_passphrase_protected_identity_is_named_and_explained(tmp_path: Path) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    write_private(tmp_path / "locked", pem)
    message = connect_error(
        SshTarget("127.0.0.1", port=free_port(), identity_file=tmp_path / "locked")
    )
    assert f"identity file {tmp_path / 'locked'}" in message
    assert "passphrase-protected" in message


@pytest.mark.ssh
def test_endless_output_stops_at_the_cap_and_the_runner_survives(
        ssh_runner: SshRunner) -> None:
    started = time.monotonic()
    with pytest.raises(TooLarge) as caught:
        ssh_runner.run(script("yes wlbplan"), timeout=60)
    assert time.monotonic() - started < 30
    assert str(OUTPUT) in str(caught.value)
    assert "yes wlbplan" in str(caught.value)
    assert ssh_runner.run(Command(("echo", "still here"))).stdout == "still here\n"


@pytest.mark.ssh
def test_get_of_an_endless_file_stops_at_the_cap(ssh_runner: SshRunner) -> None:
    with pytest.raises(TooLarge, match="/dev/zero"):
        ssh_runner.get("/dev/zero")


def test_a_fleets_known_hosts_is_parsed_once_and_each_client_gets_its_own_lines(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fleet's known_hosts holds a line per host: each connection used to parse all of
    them and add each to its client (whose add is linear). Parsed once per file state;
    a client holds only what paramiko would look up for its host, hashed lines too."""
    from paramiko.hostkeys import HostKeys

    from wlbplan.connectors import ssh_hostkeys

    keys = [other_public_line() for _ in range(3)]
    hashed = HostKeys.hash_host("[10.0.0.2]:2222")
    lines = [f"10.0.0.{i} {keys[0]}" for i in range(50)]
    lines += [f"{hashed} {keys[1]}", f"[10.0.0.3]:2222 {keys[2]}"]
    path = tmp_path / "known_hosts"
    path.write_text("\n".join(lines) + "\n")
    reads: list[Path] = []
    real = ssh_hostkeys.read_known_hosts
    monkeypatch.setattr(ssh_hostkeys, "read_known_hosts",
                        lambda p: reads.append(p) or real(p))

    def installed(host: str, port: int) -> dict[str, list[str]]:
        client = paramiko.SSHClient()
        ssh_hostkeys.install_host_keys(
            client, SshTarget(host, port=port, known_hosts=path))
        held = client.get_host_keys()
        return {name: [f"{k.get_name()} {k.get_base64()}" for k in held[name].values()]
                for name in held}

    assert installed("10.0.0.7", 22) == {"10.0.0.7": [keys[0]]}
    assert installed("10.0.0.2", 2222) == {"[10.0.0.2]:2222": [keys[1]]}
    assert installed("10.0.0.9", 2222) == {}
    assert reads == [path]  # once for the three connections
    with path.open("a") as more:  # accept-new appends during a run: read again
        more.write(f"[10.0.0.9]:2222 {keys[2]}\n")
    assert installed("10.0.0.9", 2222) == {"[10.0.0.9]:2222": [keys[2]]}
    assert reads == [path, path]


def test_waiting_for_a_command_wakes_when_it_ends_not_every_10_ms(
        ssh_runner: SshRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """invoke's wait looks at the channel every 10 ms for as long as a command runs, on
    every host at once in a fleet; the connector waits on the channel's status event."""
    from fabric.runners import Remote

    looks: list[float] = []
    finished = Remote.process_is_finished

    def counted(self: Remote) -> bool:
        looks.append(time.monotonic())
        return bool(finished.fget(self))  # type: ignore[attr-defined]

    monkeypatch.setattr(Remote, "process_is_finished", property(counted))
    started = time.monotonic()
    result = ssh_runner.run(Command(("sleep", "0.5")))
    assert result.ok
    assert len(looks) <= 10, len(looks)  # invoke's own wait: about 50
    assert looks[-1] - started >= 0.5
