"""A command run on this machine (hooks, signer, openssl): in a session of its own, so a
Ctrl-C typed at wlbplan's terminal does not reach it; a timeout ends its whole tree."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wlbplan.children import run_child


def test_it_runs_in_a_session_of_its_own() -> None:
    """Before: subprocess.run left it in wlbplan's process group, where a terminal's ^C
    ended a challenge hook half-way (tests/run/test_acme_faults.py, inside the order)."""
    done = run_child([sys.executable, "-c", "import os; print(os.getsid(0), os.getpgid(0))"],
                     timeout=30)
    assert done.returncode == 0, done.stderr
    session, group = map(int, done.stdout.split())
    assert session != os.getsid(0)
    assert group != os.getpgid(0)


def test_a_timeout_ends_the_whole_tree(tmp_path: Path) -> None:
    """Not only its first process (subprocess.run kills that one alone)."""
    pid_file = tmp_path / "grandchild.pid"
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        run_child(["sh", "-c", f"sleep 30 & echo $! > {pid_file}; wait"], timeout=0.5)
    assert time.monotonic() - started < 10
    stat = Path(f"/proc/{int(pid_file.read_text())}/stat")
    # Gone, or a zombie waiting for whoever reaps orphans here: not running either way.
    assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
