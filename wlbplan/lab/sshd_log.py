"""What the lab's sshd logged about logins and sessions (``lab up --ssh --ssh-log``):
SSH connections and the remote commands run over each, counted, not guessed.

At LogLevel VERBOSE, OpenSSH (9.x) writes, for one TCP connection from client port P:

    Connection from 127.0.0.1 port P on 127.0.0.1 port S rdomain ""
    Accepted publickey for USER from 127.0.0.1 port P ssh2: ED25519 SHA256:…
    Starting session: command for USER from 127.0.0.1 port P id N      (one exec)
    Starting session: subsystem 'sftp' for USER from 127.0.0.1 port P id N

A connection that never logs in (the lab's own port probe, a client that gives up) has
no ``Accepted`` line and is not counted. Every lab host is 127.0.0.1 on one sshd, so a
connection is told apart by its client port: one wlbplan connection per host contacted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_LOGIN = re.compile(r"^Accepted \S+ for \S+ from \S+ port (?P<port>\d+) ")
_SESSION = re.compile(
    r"^Starting session: (?P<kind>.+?) for \S+ from \S+ port (?P<port>\d+) id \d+$")


@dataclass(frozen=True)
class Connection:
    """One logged-in SSH connection, by its client port."""

    port: int
    commands: int = 0
    sftp: int = 0


def size(log: Path) -> int:
    """Where the log ends now: count from here to see what one run did."""
    return log.stat().st_size if log.exists() else 0


def connections(log: Path, since: int = 0) -> list[Connection]:
    """Every connection that logged in after byte ``since`` of ``log``, in log order."""
    with log.open("rb") as handle:
        handle.seek(since)
        text = handle.read().decode("utf-8", "replace")
    found: list[Connection] = []
    latest: dict[int, int] = {}  # client port -> its connection in ``found`` (ports recur)
    for line in text.splitlines():
        login = _LOGIN.match(line)
        if login:
            latest[int(login["port"])] = len(found)
            found.append(Connection(int(login["port"])))
            continue
        session = _SESSION.match(line)
        where = latest.get(int(session["port"])) if session else None
        if session is None or where is None:
            continue
        seen = found[where]
        if session["kind"] == "command":
            found[where] = Connection(seen.port, seen.commands + 1, seen.sftp)
        elif session["kind"].startswith("subsystem"):
            found[where] = Connection(seen.port, seen.commands, seen.sftp + 1)
    return found
