"""The dns-01 challenge hooks: the spec's argv lists, each argument's placeholders
replaced on their own, run without a shell on this machine."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from wlbplan.children import run_child
from wlbplan.errors import AcmeError
from wlbplan.model.spec import ChallengeHooks
from wlbplan.model.text import visible

HOOK_TIMEOUT = 120.0


@dataclass(frozen=True)
class Record:
    """One TXT record a challenge needs: the name it proves, where, and what."""

    domain: str
    name: str
    value: str


def run(hooks: ChallengeHooks, which: str, record: Record,
        timeout: float = HOOK_TIMEOUT) -> None:
    """Run the ``set`` or ``clear`` hook for ``record``; AcmeError if it fails or takes
    longer than ``timeout`` seconds."""
    command = hooks.set if which == "set" else hooks.clear
    argv = hooks.argv(command, record.domain, record.name, record.value)
    try:
        done = run_child(argv, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as err:
        why = f"did not finish within {timeout:g}s" if isinstance(
            err, subprocess.TimeoutExpired) else (err.strerror or str(err))
        raise AcmeError(f"the challenge's {which} hook ({argv[0]}) for {record.name}: "
                        f"{visible(why)}") from None
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip()[-400:] or "no output"
        raise AcmeError(f"the challenge's {which} hook ({argv[0]}) failed for {record.name} "
                        f"(exit {done.returncode}): {visible(said)}")
