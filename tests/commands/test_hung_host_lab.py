"""A host that never answers, and an operator who presses Ctrl-C, on a real lab.

- A pool whose ``xe`` hangs costs at most ``defaults.command_timeout``: `plan`, `audit`
  and `apply` report that host unreachable (exit 1, or audit's WLB-TARGET-UNREACHABLE)
  and the other target is still inspected (and applied), over the local and the SSH
  connector.
- SIGINT/SIGTERM stop `inspect`, `plan` and `audit` within about a second (exit 130),
  killing the commands' process groups (nothing is left running), and an apply waiting
  for another apply's lock stops waiting at once. Non-finite lock timeouts are refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from wlbplan.lab import control, xe_state
from wlbplan.run.pids import alive

pytestmark = pytest.mark.lab

HUNG = "pool1"
FINE = "pool2"


def _env() -> dict[str, str]:
    return {"NO_COLOR": "1", "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}


def wlbplan(*args: str | Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wlbplan", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=_env(),
                          stdin=subprocess.DEVNULL, check=False)


def hanging_xe(folder: Path) -> tuple[Path, Path]:
    """An ``xe`` that never returns, and the file where it lists its pids (its own and a
    grandchild's: both must end with the command)."""
    pids = folder / "xe-pids"
    xe = folder / "xe-hangs"
    xe.write_text("#!/bin/sh\n"
                  f'echo $$ >> "{pids}"\n'
                  "sleep 3600 &\n"
                  f'echo $! >> "{pids}"\n'
                  "wait\n")
    xe.chmod(0o755)
    return xe, pids


def spec_with(lab: control.Lab, folder: Path, xe: Path, **defaults: Any) -> Path:
    data = yaml.safe_load(lab.spec_path.read_text())
    data["targets"][0]["pool"]["xe"] = str(xe)
    if defaults:
        data.setdefault("defaults", {}).update(defaults)
    spec = folder / "spec.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    return spec


def listed_pids(pids: Path) -> list[int]:
    return [int(p) for p in pids.read_text().split()] if pids.exists() else []


def wait_for_pids(pids: Path, count: int, proc: subprocess.Popen[str],
                  timeout: float = 60) -> list[int]:
    deadline = time.monotonic() + timeout
    while len(listed_pids(pids)) < count:
        assert proc.poll() is None, f"wlbplan ended early: {proc.communicate()}"
        assert time.monotonic() < deadline, "the hanging xe never started"
        time.sleep(0.05)
    return listed_pids(pids)


def survivors(pids: list[int], grace: float = 2.0) -> list[int]:
    deadline = time.monotonic() + grace
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module", params=["local", "ssh"])
def two_pools(request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[control.Lab]:
    folder = tmp_path_factory.mktemp(f"hung-{request.param}") / "lab"
    lab = control.up(folder, targets=2, hosts=1, ssh=request.param == "ssh")
    try:
        yield lab
    finally:
        control.down(lab.dir)


@pytest.fixture
def hung(two_pools: control.Lab, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A spec whose first pool's xe hangs (command_timeout 6 s); its pids killed after."""
    xe, pids = hanging_xe(tmp_path)
    try:
        yield spec_with(two_pools, tmp_path, xe, command_timeout=6), pids
    finally:
        kill_all(listed_pids(pids))


def _unreachable(stderr: str) -> None:
    assert "Traceback" not in stderr
    assert re.search(rf"\b{HUNG}( \(unreachable\))?: .* is unreachable: .* did not finish "
                     r"within 6s", stderr), stderr
    # Progress lines ("pool2: ok (1.20s) [2/2, 1 failed]") aside, nothing about FINE.
    said = "\n".join(line for line in stderr.splitlines()
                     if not re.match(r"pool\d+: (ok|FAILED) \(", line))
    assert not re.search(rf"\b{FINE}( \(unreachable\))?: ", said), \
        "the other target was not inspected"


@pytest.mark.parametrize("command", ["inspect", "plan"])
def test_a_hung_xe_is_that_host_unreachable(hung: tuple[Path, Path], command: str) -> None:
    spec, _ = hung
    started = time.monotonic()
    result = wlbplan(command, spec)
    assert time.monotonic() - started < 45
    assert result.returncode == 1, result.stdout + result.stderr
    _unreachable(result.stderr)


def test_audit_reports_the_hung_target_and_the_other_one(hung: tuple[Path, Path]) -> None:
    spec, _ = hung
    started = time.monotonic()
    result = wlbplan("audit", spec, "--format", "json")
    assert time.monotonic() - started < 45
    assert result.returncode == 1, result.stdout + result.stderr
    document = json.loads(result.stdout)
    rules = {t["name"]: {f["rule_id"]: f for f in t["findings"]}
             for t in document["targets"]}
    assert "WLB-TARGET-UNREACHABLE" in rules[HUNG]
    assert "did not finish within 6s" in rules[HUNG]["WLB-TARGET-UNREACHABLE"]["message"]
    assert "WLB-TARGET-UNREACHABLE" not in rules[FINE]
    assert rules[FINE], "the other target was not audited"


def test_apply_reports_the_hung_host_and_applies_the_other(
        hung: tuple[Path, Path], two_pools: control.Lab) -> None:
    if two_pools.ssh_port is not None:
        pytest.skip("over SSH, tests/commands/test_fleet_lab.py applies a fleet past a hung xe")
    spec, _ = hung
    # FINE's steps must finish within the timeout too, on a loaded machine: more time.
    data = yaml.safe_load(spec.read_text())
    data["defaults"]["command_timeout"] = 10
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    hung_before = xe_state.load(two_pools.layout(HUNG).pool_state)
    started = time.monotonic()
    result = wlbplan("apply", spec, "--auto-approve")
    assert time.monotonic() - started < 60
    assert result.returncode == 1, result.stdout + result.stderr
    err = result.stderr
    assert "Traceback" not in err
    assert re.search(rf"^{HUNG}: not applied: it could not be inspected", err, re.MULTILINE)
    assert re.search(r"^  cause: .* is unreachable: .* did not finish within 10s", err,
                     re.MULTILINE), err
    assert re.search(rf"^{FINE}: applied \(", err, re.MULTILINE), err
    assert xe_state.load(two_pools.layout(HUNG).pool_state) == hung_before
    assert xe_state.load(two_pools.layout(FINE).pool_state)["pool"]["wlb-verify-cert"]


# ---- Ctrl-C -------------------------------------------------------------------------------

@pytest.fixture
def local_pools(tmp_path_factory: pytest.TempPathFactory) -> Iterator[control.Lab]:
    lab = control.up(tmp_path_factory.mktemp("stop") / "lab", targets=2, hosts=1)
    try:
        yield lab
    finally:
        control.down(lab.dir)


@pytest.mark.parametrize(("command", "sig"), [("plan", signal.SIGINT),
                                              ("inspect", signal.SIGINT),
                                              ("audit", signal.SIGINT),
                                              ("plan", signal.SIGTERM)])
def test_a_stop_ends_a_read_only_command_and_its_children(
        local_pools: control.Lab, tmp_path: Path, command: str, sig: int) -> None:
    xe, pids = hanging_xe(tmp_path)
    spec = spec_with(local_pools, tmp_path, xe)  # the default command timeout: minutes
    proc = subprocess.Popen([sys.executable, "-m", "wlbplan", command, str(spec)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(), stdin=subprocess.DEVNULL)
    try:
        children = wait_for_pids(pids, 2, proc)
        time.sleep(0.3)  # the other target's inspection is under way or done
        started = time.monotonic()
        proc.send_signal(sig)
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail(f"`wlbplan {command}` ignored the signal")
        took = time.monotonic() - started
        assert proc.returncode == 130, err
        assert took < 2.0, f"stopping took {took:.1f}s"
        assert "Interrupted." in err
        assert "Traceback" not in err
        assert not survivors(children), "a command's process outlived wlbplan"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        kill_all(listed_pids(pids))


def test_a_stop_ends_an_apply_waiting_for_the_lock(local_pools: control.Lab,
                                                   tmp_path: Path) -> None:
    state = xe_state.coordinator(local_pools.layout(HUNG)).root / "var" / "lib" / "wlbplan"
    state.mkdir(parents=True, exist_ok=True)
    lock = state / "apply.lock"
    theirs = {"id": str(uuid.uuid4()), "owner": "someone@elsewhere", "pid": 1,
              "created": "2024-01-01T00:00:00Z", "target": HUNG}
    lock.write_text(json.dumps(theirs))
    err_file = tmp_path / "stderr"
    with err_file.open("w") as err_out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wlbplan", "apply", str(local_pools.spec_path),
             "--target", HUNG, "--auto-approve", "--lock-timeout", "600",
             "--state-dir", str(tmp_path / "journals")],
            stdout=subprocess.DEVNULL, stderr=err_out, text=True, env=_env(),
            stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while "waiting" not in err_file.read_text():
            assert proc.poll() is None, err_file.read_text()
            assert time.monotonic() < deadline, "the apply never started waiting"
            time.sleep(0.05)
        assert theirs["id"] in err_file.read_text()
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        # The wait ends at once: the target's progress line says so. What follows is not
        # the wait: the summary inspects the target again to say its state now (xe calls,
        # which a loaded machine makes slow), so the exit is not what is timed.
        ended = re.compile(rf"^{HUNG}: FAILED \(", re.MULTILINE)
        while not ended.search(err_file.read_text()):
            if time.monotonic() - started > 10:
                pytest.fail("the apply kept waiting for the lock after Ctrl-C")
            assert proc.poll() is None, err_file.read_text()
            time.sleep(0.02)
        stopped_waiting = time.monotonic() - started
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("the apply did not exit after it stopped waiting")
        err = err_file.read_text()
        assert proc.returncode == 130, err
        assert stopped_waiting < 2.0, f"stopping the wait took {stopped_waiting:.1f}s"
        assert "Traceback" not in err
        assert "nothing was changed" in err
        assert json.loads(lock.read_text()) == theirs, "someone else's lock was touched"
        assert not (tmp_path / "journals" / HUNG / "journal.jsonl").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "NaN", "infinity"])
def test_a_lock_timeout_must_be_a_finite_number_of_seconds(tmp_path: Path, value: str) -> None:
    result = wlbplan("apply", tmp_path / "missing.yaml", "--lock-timeout", value)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "--lock-timeout" in result.stderr
    assert "Traceback" not in result.stderr
