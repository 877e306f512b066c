"""Host keys as the spec sets them (issue 10, "Host keys"), over the lab's real sshd.

Strict by default; an unknown or a changed key is refused with the offered fingerprint
(and the recorded one), and the spec line to change; ``accept-new`` only when the spec
says so, recording a key once and refusing a changed one after; a refusal never writes
known_hosts (byte for byte, mtime too). The connector-level cases (revoked keys, races,
malformed lines) are in test_ssh.py.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import paramiko
import pytest

from wlbplan.connectors.ssh_hostkeys import _Strict, mismatch_message
from wlbplan.connectors.ssh_target import SshTarget
from wlbplan.errors import ConnectError
from wlbplan.lab import sshd
from wlbplan.lab.procs import free_port
from wlbplan.model.command import Command
from wlbplan.run.sessions import open_sessions
from wlbplan.spec import load_spec

if TYPE_CHECKING:  # the fixture's type, for readers; conftest is not importable
    from conftest import Sshd

pytestmark = pytest.mark.ssh


def fingerprint_of(public_line: str) -> str:
    """OpenSSH's SHA256 fingerprint of an ``ssh-TYPE BASE64`` line, computed independently."""
    blob = base64.b64decode(public_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def host_public_line(layout: sshd.SshLayout) -> str:
    return layout.host_key.with_name(layout.host_key.name + ".pub").read_text().strip()


def write_spec(path: Path, *, port: int, identity: Path, known_hosts: Path | None,
               policy: str | None) -> dict[str, int]:
    """A one-target spec over SSH to 127.0.0.1; returns the line of each ssh setting.

    known_hosts sits in defaults.ssh, the policy in the target's own ssh block: the
    message must name each where it is written."""
    lines = ["version: 1", "defaults:", "  ssh:", f"    user: {sshd.login_user()}",
             f"    port: {port}", f"    identity_file: {identity}"]
    if known_hosts is not None:
        lines.append(f"    known_hosts: {known_hosts}")
    lines += ["targets:", "  - name: t1", "    pool: {coordinator: 127.0.0.1}",
              "    wlb: {address: wlb.example.com, ssh_host: 127.0.0.1}",
              "    certificate: {source: self-signed}"]
    if policy is not None:
        lines += ["    ssh:", f"      host_key_policy: {policy}"]
    path.write_text("\n".join(lines) + "\n")
    return {text.split(":")[0].strip(): number
            for number, text in enumerate(lines, start=1) if ":" in text}


def connect(spec_path: Path) -> None:
    """One command on the target's pool, as plan and apply open it."""
    spec = load_spec(spec_path, check_files=False)
    with open_sessions(spec, spec.targets[0]) as sessions:
        sessions.pool.run(Command(("true",)))


def refusal(spec_path: Path) -> str:
    with pytest.raises(ConnectError) as caught:
        connect(spec_path)
    return str(caught.value)


def snapshot(path: Path) -> tuple[bytes, int] | None:
    """The file's bytes and mtime: a refusal must change neither (nor create it)."""
    return (path.read_bytes(), path.stat().st_mtime_ns) if path.exists() else None


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME whose ~/.ssh/known_hosts trusts nothing (the default known_hosts)."""
    folder = tmp_path / "home"
    (folder / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(folder))
    return folder


def test_strict_is_the_default_and_an_unknown_key_is_refused_naming_the_spec_lines(
    sshd_server: Sshd, tmp_path: Path, home: Path
) -> None:
    """No host_key_policy in the spec: strict. No known_hosts: ~/.ssh/known_hosts, which
    stays absent; the message says where in the spec to add both."""
    spec = tmp_path / "spec.yaml"
    at = write_spec(spec, port=sshd_server.port, identity=sshd_server.layout.client_key,
                    known_hosts=None, policy=None)
    message = refusal(spec)
    assert "is unknown" in message
    assert fingerprint_of(sshd_server.host_public_line) in message
    assert "does not set ssh.known_hosts or ssh.host_key_policy" in message
    assert f"add them under ssh: at {spec}:{at['ssh']}" in message
    assert not (home / ".ssh" / "known_hosts").exists()


@pytest.mark.parametrize("before", ["missing", "other-hosts"])
def test_an_unknown_key_is_refused_with_its_fingerprint_and_the_lines_that_set_the_policy(
    sshd_server: Sshd, tmp_path: Path, before: str
) -> None:
    known_hosts = tmp_path / "known_hosts"
    if before == "other-hosts":
        known_hosts.write_text(f"[127.0.0.1]:1 {sshd_server.host_public_line}\n# mine\n")
    spec = tmp_path / "spec.yaml"
    at = write_spec(spec, port=sshd_server.port, identity=sshd_server.layout.client_key,
                    known_hosts=known_hosts, policy="strict")
    was = snapshot(known_hosts)
    message = refusal(spec)
    assert f"[127.0.0.1]:{sshd_server.port} is not in {known_hosts}" in message
    assert f"the server offered {sshd_server.host_public_line.split()[0]} " \
           f"{fingerprint_of(sshd_server.host_public_line)}" in message
    assert (f"The spec sets ssh.known_hosts at {spec}:{at['known_hosts']} and "
            f"ssh.host_key_policy at {spec}:{at['host_key_policy']}") in message
    assert snapshot(known_hosts) == was  # never added behind the operator's back


@pytest.mark.parametrize("policy", ["strict", "accept-new"])
def test_a_changed_key_is_refused_with_both_fingerprints_and_the_known_hosts_line(
    sshd_server: Sshd, tmp_path: Path, policy: str
) -> None:
    impostor = host_public_line(_other_host_key(tmp_path / "other"))
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{sshd_server.port} {impostor}\n")
    spec = tmp_path / "spec.yaml"
    at = write_spec(spec, port=sshd_server.port, identity=sshd_server.layout.client_key,
                    known_hosts=known_hosts, policy=policy)
    was = snapshot(known_hosts)
    message = refusal(spec)
    assert "HOST KEY MISMATCH" in message
    assert f"records ssh-ed25519 {fingerprint_of(impostor)}" in message  # expected
    assert f"offered ssh-ed25519 {fingerprint_of(sshd_server.host_public_line)}" in message
    assert f"The spec sets ssh.known_hosts at {spec}:{at['known_hosts']}" in message
    assert snapshot(known_hosts) == was


def _other_host_key(folder: Path) -> sshd.SshLayout:
    layout = sshd.SshLayout(folder)
    sshd.prepare(layout, 1)
    return layout


@pytest.fixture
def reinstallable(tmp_path: Path) -> Iterator[tuple[sshd.SshLayout, int]]:
    """A second lab sshd of this test's own, whose host key can be made anew."""
    layout = sshd.SshLayout(tmp_path / "ssh2")
    port = free_port()
    sshd.prepare(layout, port)
    sshd.start(layout, port)
    try:
        yield layout, port
    finally:
        sshd.stop(layout)


def test_accept_new_records_a_key_once_then_refuses_a_changed_one(
    reinstallable: tuple[sshd.SshLayout, int], tmp_path: Path
) -> None:
    layout, port = reinstallable
    client_key = tmp_path / "id_client"
    shutil.copyfile(layout.client_key, client_key)
    client_key.chmod(0o600)
    known_hosts = tmp_path / "fresh" / "known_hosts"
    spec = tmp_path / "spec.yaml"
    at = write_spec(spec, port=port, identity=client_key, known_hosts=known_hosts,
                    policy="accept-new")
    first = host_public_line(layout)
    connect(spec)
    recorded = snapshot(known_hosts)
    assert known_hosts.read_text() == f"[127.0.0.1]:{port} {first}\n"
    connect(spec)
    assert snapshot(known_hosts) == recorded  # recorded once: the second run only reads

    # The host is reinstalled: a new host key on the same address (the old client key
    # is authorized again, so only the host key differs).
    sshd.stop(layout)
    authorized = layout.authorized_keys.read_text()
    sshd.prepare(layout, port)
    layout.authorized_keys.write_text(authorized)
    sshd.start(layout, port)
    message = refusal(spec)
    assert "HOST KEY MISMATCH" in message
    assert f"records ssh-ed25519 {fingerprint_of(first)}" in message
    assert f"offered ssh-ed25519 {fingerprint_of(host_public_line(layout))}" in message
    assert f"The spec sets ssh.known_hosts at {spec}:{at['known_hosts']}" in message
    assert snapshot(known_hosts) == recorded


def test_the_cli_shows_the_refusal_with_the_spec_line_and_exits_1(
    sshd_server: Sshd, tmp_path: Path
) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    spec = tmp_path / "spec.yaml"
    at = write_spec(spec, port=sshd_server.port, identity=sshd_server.layout.client_key,
                    known_hosts=known_hosts, policy=None)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NO_COLOR": "1",
           "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "wlbplan", "plan", str(spec)],
                            capture_output=True, text=True, timeout=60, env=env, check=False)
    said = result.stdout + result.stderr
    assert result.returncode == 1, said
    assert fingerprint_of(sshd_server.host_public_line) in said
    assert f"ssh.known_hosts at {spec}:{at['known_hosts']}" in said
    assert f"does not set ssh.host_key_policy (its default applies); add it under ssh: " \
           f"at {spec}:{at['ssh']}" in said
    assert known_hosts.read_bytes() == b""


def test_host_text_in_a_refusal_is_shown_escaped(tmp_path: Path) -> None:
    """Names in the message are escaped as all host text is (model.text.visible): a
    line break or a bidi control in them cannot forge or reorder lines."""
    target = SshTarget(host="wlb\u202eevil\x1b[2J", port=2222, known_hosts=tmp_path / "kh\nx",
                       spec_lines=(("ssh", "spec\x1b.yaml:3"),))
    key = paramiko.Ed25519Key.from_private_key_file(str(_other_host_key(tmp_path / "a").host_key))
    other = paramiko.Ed25519Key.from_private_key_file(
        str(_other_host_key(tmp_path / "b").host_key))
    with pytest.raises(ConnectError) as caught:
        _Strict(target, frozenset()).missing_host_key(
            paramiko.SSHClient(), f"[{target.host}]:2222", key)
    for message in (str(caught.value), mismatch_message(target, key, other)):
        assert message.isprintable(), message
        assert "wlb\\u202eevil\\x1b[2J" in message
        assert "spec\\x1b.yaml:3" in message
