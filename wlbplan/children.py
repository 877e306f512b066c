"""A command run on this machine rather than on a host: the spec's challenge hooks and
signer, the preflight's and the checks' openssl. One way to run them all.

Each runs in a session of its own, as the local connector runs its commands: a Ctrl-C
typed at wlbplan's terminal reaches wlbplan alone, which stops between steps and rolls
back, instead of ending a hook half-way through (a DNS record half-published, a failure
that would hide the interruption). A timeout, or anything else that ends the wait, ends
the command's whole process tree, not just its first process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence


def run_child(argv: Sequence[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
    """``argv`` (no shell), stdin empty, output captured as text; raises what
    ``subprocess.run`` raises (OSError, TimeoutExpired), the process group ended first."""
    with subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except BaseException:
            _end_group(proc)
            proc.communicate()
            raise
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)


def _end_group(proc: subprocess.Popen[str]) -> None:
    # The group's id is the child's pid (start_new_session); it may be gone already.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
