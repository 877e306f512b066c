"""Host keys for the SSH connector: only the spec's ``known_hosts`` file is trusted.

An unknown host is refused (``strict``, the default) or recorded on first use
(``accept-new``, only when the spec says so); a changed or ``@revoked`` key is always
refused. A refusal never writes known_hosts; it shows the offered fingerprint (and the
recorded one for a changed key) and the spec line to change. ``~/.ssh/known_hosts`` and
system files are never loaded.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import paramiko
from paramiko.hostkeys import HostKeyEntry

from wlbplan.connectors.ssh_target import SshTarget
from wlbplan.errors import ConnectError
from wlbplan.model.text import shell_word, visible


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's form: ``SHA256:`` + unpadded base64 of the key blob's SHA-256."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def read_known_hosts(
    path: Path,
) -> tuple[list[tuple[str, paramiko.PKey]], frozenset[bytes]]:
    """(name, key) pairs that may be trusted, and the blobs marked ``@revoked``.

    Parsed here rather than by paramiko's loader, which would take ``@revoked`` lines
    for host names. A missing file is empty; malformed lines are skipped, as OpenSSH
    does; ``@cert-authority`` lines are ignored (host certificates are not supported,
    so such hosts count as unknown).
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return [], frozenset()
    except OSError as exc:
        raise ConnectError(f"cannot read known_hosts file {path}: {exc.strerror}") from None
    entries: list[tuple[str, paramiko.PKey]] = []
    revoked: set[bytes] = set()
    for marker, entry in _known_hosts_entries(text):
        if marker == "@revoked":
            revoked.add(entry.key.asbytes())
        elif marker is None:
            entries.extend((name, entry.key) for name in entry.hostnames)
    # A revoked key is not trusted even where a plain line lists it.
    return [(n, k) for n, k in entries if k.asbytes() not in revoked], frozenset(revoked)


def _known_hosts_entries(text: str) -> Iterator[tuple[str | None, HostKeyEntry]]:
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        marker = None
        if line.startswith("@"):
            marker, _, line = line.partition(" ")
            line = line.strip()
        try:
            entry = HostKeyEntry.from_line(line)
        except Exception:  # any malformed line is skipped, as OpenSSH does
            entry = None
        if entry is not None and entry.key is not None:
            yield marker, entry


# One recorder at a time in this process; other processes are kept out by flock.
_RECORDING = threading.Lock()


def _record_known_host(target: SshTarget, path: Path, name: str, key: paramiko.PKey) -> None:
    """Record ``name``'s key once: under a lock the file is read again, so a line that
    another connection of this run (two targets on one host) or another wlbplan wrote
    meanwhile is used rather than written twice; a different key recorded meanwhile is
    a mismatch, a revoked one refused.

    Append one line (never rewrite the file: other tools' lines and comments stay).
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with _RECORDING:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "r+b") as handle:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released when the file is closed
            known, revoked = read_known_hosts(path)
            if key.asbytes() in revoked:
                raise ConnectError(_revoked_message(target, key))
            recorded = paramiko.HostKeys()
            for known_name, known_key in known:
                recorded.add(known_name, known_key.get_name(), known_key)
            already = recorded.lookup(name)
            if already is not None and key.get_name() in already:
                if already[key.get_name()].asbytes() == key.asbytes():
                    return
                raise ConnectError(mismatch_message(target, already[key.get_name()], key))
            line = f"{name} {key.get_name()} {key.get_base64()}\n"
            size = handle.seek(0, os.SEEK_END)
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = "\n" + line
            handle.write(line.encode())


def _revoked_message(target: SshTarget, key: paramiko.PKey) -> str:
    return (f"host key {key.get_name()} {fingerprint(key)} offered by "
            f"{visible(target.address)} is marked @revoked in {_known_hosts(target)}; "
            f"refusing to connect.{_in_spec(target, 'ssh.known_hosts')}")


def _known_hosts(target: SshTarget) -> str:
    return visible(str(target.known_hosts.expanduser()))


def _command(*argv: str) -> str:
    """A command to paste, each word quoted (and escaped where unprintable)."""
    return " ".join(shell_word(word) for word in argv)


def _in_spec(target: SshTarget, *settings: str) -> str:
    """Where the spec writes ``settings`` for this target, or where to add them: the
    lines a refusal asks to change. Empty when the target was not made from a spec."""
    lines = dict(target.spec_lines)
    if not lines:
        return ""
    written = [f"{name} at {visible(lines[name])}" for name in settings if name in lines]
    unwritten = [name for name in settings if name not in lines]
    said = [f"The spec sets {' and '.join(written)}"] if written else []
    if unwritten:
        where = lines.get("ssh") or lines.get("")
        one = len(unwritten) == 1
        default = "its default applies" if one else "their defaults apply"
        said.append(f"{'it' if written else 'the spec'} does not set "
                    f"{' or '.join(unwritten)} ({default})"
                    + (f"; add {'it' if one else 'them'} under ssh: at {visible(where)}"
                       if where else ""))
    text = ", and ".join(said)
    return f" {text[0].upper()}{text[1:]}."


class _HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Called by paramiko only for hosts without a known key; raising refuses."""

    def __init__(self, target: SshTarget, revoked: frozenset[bytes]) -> None:
        self.target = target
        self.revoked = revoked

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        if key.asbytes() in self.revoked:
            raise ConnectError(_revoked_message(self.target, key))
        self.unknown(client, hostname, key)

    def unknown(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise NotImplementedError


class _Strict(_HostKeyPolicy):
    def unknown(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        """Refuse, and never write known_hosts: adding a key is the operator's act."""
        target = self.target
        keyscan = _command("ssh-keyscan", "-p", str(target.port), target.host)
        add = f"{keyscan} >> {shell_word(str(target.known_hosts.expanduser()))}"
        raise ConnectError(
            f"host key of {visible(target.address)} is unknown: {visible(hostname)} is not "
            f"in {_known_hosts(target)} (the server offered {key.get_name()} "
            f"{fingerprint(key)}), and wlbplan reads no other known_hosts file. After "
            f"checking that fingerprint out of band, add it with `{add}`, or set "
            "host_key_policy: accept-new to record it on first connection."
            + _in_spec(target, "ssh.known_hosts", "ssh.host_key_policy")
        )


class _AcceptNew(_HostKeyPolicy):
    def unknown(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        known_hosts = self.target.known_hosts.expanduser()
        try:
            _record_known_host(self.target, known_hosts, hostname, key)
        except OSError as exc:
            # Unrecorded, the next run would trust whatever key it is offered again.
            raise ConnectError(
                f"cannot record the new host key of {visible(self.target.address)} in "
                f"{_known_hosts(self.target)} ({exc.strerror}); refusing to connect with "
                f"host_key_policy accept-new.{_in_spec(self.target, 'ssh.known_hosts')}"
            ) from None
        client.get_host_keys().add(hostname, key.get_name(), key)


def install_host_keys(client: paramiko.SSHClient, target: SshTarget) -> None:
    """Trust exactly the spec's known_hosts, with the target's policy for unknown hosts.

    Only this host's own lines are given to the client: the ones paramiko would look up
    for it (by name, hashed or not) out of the whole file, which is the same trust. The
    file is parsed once for every connection of the run (a fleet's file has a line per
    host, and each connection would otherwise parse all of them and add each to the
    client, whose ``add`` is linear: quadratic in the fleet's size)."""
    known, revoked = _parsed_known_hosts(target.known_hosts.expanduser())
    host_keys = client.get_host_keys()
    for key_type, key in (known.lookup(target.known_hosts_name) or {}).items():
        host_keys.add(target.known_hosts_name, key_type, key)
    policy_class = _AcceptNew if target.host_key_policy == "accept-new" else _Strict
    client.set_missing_host_key_policy(policy_class(target, revoked))


_PARSED: dict[Path, tuple[tuple[int, int, int, int], paramiko.HostKeys, frozenset[bytes]]] = {}
_PARSED_LOCK = threading.Lock()


def _parsed_known_hosts(path: Path) -> tuple[paramiko.HostKeys, frozenset[bytes]]:
    """``read_known_hosts`` as a lookup table, parsed again only when the file changed
    (its inode, size or time: accept-new appends to it during a run)."""
    try:
        info = path.stat()
        state = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    except FileNotFoundError:
        state = (0, 0, -1, 0)
    except OSError as exc:
        raise ConnectError(f"cannot read known_hosts file {path}: {exc.strerror}") from None
    with _PARSED_LOCK:
        cached = _PARSED.get(path)
        if cached is not None and cached[0] == state:
            return cached[1], cached[2]
    entries, revoked = read_known_hosts(path)
    table = paramiko.HostKeys()
    for name, key in entries:
        # HostKeys.add scans every entry for one to replace: fine once per file.
        table.add(name, key.get_name(), key)
    with _PARSED_LOCK:
        _PARSED[path] = (state, table, revoked)
    return table, revoked


def mismatch_message(target: SshTarget, expected: paramiko.PKey, offered: paramiko.PKey) -> str:
    remove = _command("ssh-keygen", "-R", target.known_hosts_name, "-f",
                      str(target.known_hosts.expanduser()))
    return (
        f"HOST KEY MISMATCH for {visible(target.address)}: {_known_hosts(target)} records "
        f"{expected.get_name()} {fingerprint(expected)} for "
        f"{visible(target.known_hosts_name)}, but the server offered {offered.get_name()} "
        f"{fingerprint(offered)}. Refusing to connect: someone may be intercepting the "
        "connection, or the host was reinstalled. If the change is expected, verify the new "
        f"fingerprint out of band, then remove the old entry with `{remove}` and connect "
        f"again.{_in_spec(target, 'ssh.known_hosts')}"
    )
