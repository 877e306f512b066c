"""A fleet over SSH (issue 9): ten targets on the lab's real sshd, five of them broken in
the ways a fleet meets (login refused, nothing listening, a host that accepts TCP and
never answers, a host whose command hangs, a host key changed between two runs).

`plan`, `audit` and `apply` each finish every healthy target, report each broken one
(exit 1), bound each hung host by the timeout (the spec's ``defaults.timeout``, then the
command line's ``--timeout``), and keep stdout for the requested format alone; the
progress goes to stderr (plain lines here, a bar on a terminal). The lab's sshd logs
every login and session (``lab up --ssh-log``): inspection is counted there, not guessed,
at one SSH connection and one remote command per host.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from wlbplan.lab import control, sshd_log, xe_state
from wlbplan.lab.procs import free_port

pytestmark = pytest.mark.lab

TARGETS = 10
# Long enough for a healthy host's inspection on a loaded 2-core machine, short enough
# that the hung ones cost little: they run alongside the healthy ones.
TIMEOUT = 10
# The lab's hosts share this machine's 2 cores: each pool's inspection costs ~2 s of CPU
# (its emulated xe), so 16 at once would take ~16 s each. 4 at once keeps each command
# well within TIMEOUT and the whole run as short (the work is bound by CPU, not waits).
PARALLELISM = "4"
SLACK = 4  # what a timed-out target may take beyond TIMEOUT (closing, parsing, load)
AUTH_REFUSED, REFUSED_PORT, SILENT, HUNG_XE, KEY_CHANGED = (
    "pool2", "pool4", "pool5", "pool7", "pool9")
BROKEN = {AUTH_REFUSED, REFUSED_PORT, SILENT, HUNG_XE}
HEALTHY = {f"pool{i}" for i in range(1, TARGETS + 1)} - BROKEN - {KEY_CHANGED}


def _env(**more: str) -> dict[str, str]:
    return {"NO_COLOR": "1", "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8", **more}


def wlbplan(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wlbplan", *map(str, args)],
                          capture_output=True, text=True, timeout=180, env=_env(),
                          stdin=subprocess.DEVNULL, check=False)


def wlbplan_on_a_terminal(*args: str | Path) -> tuple[int, str, str]:
    """``wlbplan ARGS`` with stderr on a pseudo-terminal and stdout piped: (exit status,
    stdout, what the terminal got)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "wlbplan", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL,
                            text=True, env=_env(TERM="xterm"))
    os.close(slave)
    seen: list[bytes] = []

    def drain() -> None:  # a full terminal buffer would block the child
        with contextlib.suppress(OSError):  # EIO once the child's end is closed
            while chunk := os.read(master, 65536):
                seen.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        out, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(10)
        os.close(master)
    return proc.returncode, out, b"".join(seen).decode("utf-8", "replace")


def _stranger_key(path: Path) -> Path:
    """A login key the lab's sshd does not know."""
    key = ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.OpenSSH,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    return path


def _hanging_xe(folder: Path) -> tuple[Path, Path]:
    """An ``xe`` that never returns; it lists its pids (its own, its sleep's) to kill."""
    pids = folder / "xe-pids"
    xe = folder / "xe-hangs"
    xe.write_text(f'#!/bin/sh\necho $$ >> "{pids}"\nsleep 3600 &\necho $! >> "{pids}"\nwait\n')
    xe.chmod(0o755)
    return xe, pids


@pytest.fixture(scope="module")
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word (no SSH banner)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


class Fleet:
    def __init__(self, lab: control.Lab, folder: Path, silent_port: int) -> None:
        self.lab = lab
        self.hung_xe, self.pids = _hanging_xe(folder)
        self.known_hosts = folder / "known_hosts.pool9"
        shutil.copyfile(lab.ssh.known_hosts, self.known_hosts)
        data = yaml.safe_load(lab.spec_path.read_text())
        by_name = {t["name"]: t for t in data["targets"]}
        by_name[AUTH_REFUSED]["ssh"] = {"identity_file": str(_stranger_key(folder / "id"))}
        by_name[REFUSED_PORT]["ssh"] = {"port": free_port()}
        by_name[SILENT]["ssh"] = {"port": silent_port}
        by_name[HUNG_XE]["pool"]["xe"] = str(self.hung_xe)
        by_name[KEY_CHANGED]["ssh"] = {"known_hosts": str(self.known_hosts)}
        # plan and audit: the spec's one knob. apply: --timeout over a spec that waits long.
        data["defaults"]["timeout"] = TIMEOUT
        self.spec = folder / "fleet.yaml"
        self.spec.write_text(yaml.safe_dump(data, sort_keys=False))
        data["defaults"].update(timeout=600, command_timeout=600)
        data["defaults"]["ssh"]["connect_timeout"] = 600
        self.patient_spec = folder / "patient.yaml"
        self.patient_spec.write_text(yaml.safe_dump(data, sort_keys=False))

    def change_a_host_key(self) -> None:
        """KEY_CHANGED's hosts now present another key than the one recorded for them."""
        other = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.lab.ssh_port} {other}\n")

    def logins(self, since: int) -> list[sshd_log.Connection]:
        time.sleep(0.3)  # sshd's session processes write their lines as they go
        return sshd_log.connections(self.lab.ssh.log, since)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, silent_port: int) -> Iterator[Fleet]:
    folder = tmp_path_factory.mktemp("fleet")
    lab = control.up(folder / "lab", targets=TARGETS, hosts=1, ssh=True, ssh_log=True)
    made = None
    try:
        made = Fleet(lab, folder, silent_port)
        yield made
    finally:
        control.down(lab.dir)
        if made is not None and made.pids.exists():
            for pid in map(int, made.pids.read_text().split()):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def _finished(stderr: str) -> dict[str, tuple[str, float]]:
    """The plain progress lines: each target's verdict and seconds."""
    return {m["name"]: (m["verdict"], float(m["seconds"])) for m in re.finditer(
        r"^(?P<name>pool\d+): (?P<verdict>ok|FAILED) \((?P<seconds>[\d.]+)s\) \[\d+/\d+, "
        r"\d+ failed\]$", stderr, re.MULTILINE)}


def _one_command_per_host(connections: list[sshd_log.Connection], hosts: int) -> None:
    assert len(connections) == hosts, connections
    assert [(c.commands, c.sftp) for c in connections] == [(1, 0)] * hosts, connections


# The hosts that log in: two per target but those refused before a login.
INSPECTED_HOSTS = 2 * (TARGETS - 3)  # pool2 (auth), pool4 (refused), pool5 (silent)


def test_plan_on_a_terminal_finishes_the_fleet(fleet: Fleet) -> None:
    since = sshd_log.size(fleet.lab.ssh.log)
    status, out, terminal = wlbplan_on_a_terminal("plan", fleet.spec, "--format", "json",
                                                   "--parallelism", PARALLELISM)
    assert status == 1, terminal
    plan = json.loads(out)  # stdout is the JSON document and nothing else
    assert out.endswith("}\n")
    assert "\x1b" not in out
    verdicts = {t["name"]: t["status"] for t in plan["targets"]}
    assert {n for n, v in verdicts.items() if v == "unreachable"} == BROKEN, verdicts
    assert {n for n, v in verdicts.items() if v == "planned"} == HEALTHY | {KEY_CHANGED}
    reasons = {t["name"]: t["reason"] for t in plan["targets"]}
    assert "authentication failed" in reasons[AUTH_REFUSED]
    assert "connection refused" in reasons[REFUSED_PORT]
    assert f"timed out after {TIMEOUT}s connecting" in reasons[SILENT]
    assert f"did not finish within {TIMEOUT}s" in reasons[HUNG_XE]
    # The bar, redrawn on the terminal: counts, failures, the slowest target running.
    assert re.search(rf"plan .*{TARGETS}/{TARGETS} .*4 failed", terminal), terminal[-2000:]
    assert "slowest: pool" in terminal
    assert "Traceback" not in terminal
    _one_command_per_host(fleet.logins(since), INSPECTED_HOSTS)


def test_audit_finishes_the_fleet_and_each_hung_host_costs_the_timeout(fleet: Fleet) -> None:
    since = sshd_log.size(fleet.lab.ssh.log)
    result = wlbplan("audit", fleet.spec, "--format", "json", "--parallelism", PARALLELISM)
    assert result.returncode == 1, result.stderr
    audit = json.loads(result.stdout)
    rules = {t["name"]: {f["rule_id"] for f in t["findings"]} for t in audit["targets"]}
    assert {n for n, r in rules.items() if "WLB-TARGET-UNREACHABLE" in r} == BROKEN
    assert all(rules[n] for n in HEALTHY), "a healthy target was not audited"
    # One plain line per finished target, and the hung ones cost the timeout, no more.
    finished = _finished(result.stderr)
    assert {n for n, (v, _) in finished.items() if v == "FAILED"} == BROKEN, result.stderr
    assert set(finished) == {f"pool{i}" for i in range(1, TARGETS + 1)}
    for hung in (SILENT, HUNG_XE):
        assert TIMEOUT - 0.5 <= finished[hung][1] <= TIMEOUT + SLACK, finished
    assert f"audit: {TARGETS} targets, 6 ok, 4 failed" in result.stderr
    assert "Traceback" not in result.stderr
    # The lock and stunnel.conf came in the inspection's one command.
    _one_command_per_host(fleet.logins(since), INSPECTED_HOSTS)


def test_apply_goes_on_past_a_target_that_broke_since(fleet: Fleet) -> None:
    fleet.change_a_host_key()
    before = {n: xe_state.load(fleet.lab.layout(n).pool_state) for n in BROKEN | {KEY_CHANGED}}
    since = sshd_log.size(fleet.lab.ssh.log)
    started = time.monotonic()
    result = wlbplan("apply", fleet.patient_spec, "--auto-approve", "--timeout", str(TIMEOUT),
                     "--parallelism", PARALLELISM)
    took = time.monotonic() - started
    assert result.returncode == 1, result.stdout + result.stderr
    err = result.stderr
    for name in sorted(HEALTHY):
        assert f"\n{name}: applied (" in err, err
        assert xe_state.load(fleet.lab.layout(name).pool_state)["pool"]["wlb-verify-cert"]
    for name in sorted(BROKEN | {KEY_CHANGED}):
        assert f"\n{name}: not applied: it could not be inspected" in err, err
        assert xe_state.load(fleet.lab.layout(name).pool_state) == before[name]
    assert re.search(r"HOST KEY|host key", err), err
    assert f"Apply: {len(HEALTHY)} applied, 0 unchanged, 0 rolled back, 0 rollback " \
           f"incomplete, 0 not started, {len(BROKEN) + 1} unreachable." in err
    _serial_within_a_pool_parallel_across(err)
    # --timeout bounded the hung hosts (the spec alone would have waited 600 s).
    assert took < 120, took
    assert f"did not finish within {TIMEOUT}s" in err
    # One SSH connection per host for the whole apply: the one that inspected it runs
    # its steps (the healthy pools, and HUNG_XE's two hosts, which log in then hang).
    connections = fleet.logins(since)
    assert len(connections) == 2 * (len(HEALTHY) + 1), connections
    assert sum(c.sftp for c in connections) >= len(HEALTHY)  # the steps used them too


def _serial_within_a_pool_parallel_across(err: str) -> None:
    """From the step lines (``pool3.02.pool.x: …`` starts it, ``…: done`` ends it): each
    pool's steps one after the other, in order; several pools' steps at the same time."""
    spans: dict[str, list[int]] = {}
    for number, line in enumerate(err.splitlines()):
        step = re.match(r"(pool\d+)\.(\d\d)\.[\w.]+: (done)?", line)
        if step is None:
            continue
        events = spans.setdefault(step[1], [])
        events.append(number)
        index = int(step[2])
        expected = (len(events) + 1) // 2  # start 1, done 1, start 2, done 2, …
        assert index == expected, line
        assert bool(step[3]) == (len(events) % 2 == 0), line
    assert set(spans) == HEALTHY, spans
    first_done = min(events[-1] for events in spans.values())
    assert sum(events[0] < first_done for events in spans.values()) > 1, \
        "no pool began before another had finished"
